"""Evaluation: seqeval entity reports, relation P/R/F1 (gold entities and end-to-end), confusions.

Entities are scored with ``seqeval`` directly (``mode="strict"``, IOB2) over the spec's word
tokens of each record. Relations are scored two ways:

* **end-to-end**: a predicted relation counts only if its label and both its spans (offsets
  and entity labels) match a gold relation;
* **gold entities**: the relation head alone, given the gold entities.
"""

from __future__ import annotations

from collections import Counter

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from .formats import record_tags

__all__ = ["confusion", "headline", "evaluate", "entity_report", "relation_scores", "format_report"]


def _tags(record: dict) -> list[str]:
    return record_tags(record)[1]


def entity_report(gold: list[dict], pred: list[dict]) -> dict:
    """seqeval's strict IOB2 report as a dict, plus the text report under ``"text"``."""
    y_true = [_tags(g) for g in gold]
    y_pred = [_tags(p) for p in pred]
    kw = dict(mode="strict", scheme=IOB2, zero_division=0, digits=4)
    report = classification_report(y_true, y_pred, output_dict=True, **kw)
    text = classification_report(y_true, y_pred, **kw)
    out = {k: {m: float(v) for m, v in d.items()} for k, d in report.items()}
    out["text"] = text
    return out


def _rel_set(record: dict) -> set[tuple]:
    ents = record.get("entities", [])
    key = [(e["start"], e["end"], e["label"]) for e in ents]
    return {(key[r["head"]], key[r["tail"]], r["label"]) for r in record.get("relations", [])}


def relation_scores(gold: list[dict], pred: list[dict]) -> dict:
    """Per-type and micro P/R/F1 of relations, matching on both spans, their labels and the type."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        gs, ps = _rel_set(g), _rel_set(p)
        for r in ps & gs:
            tp[r[2]] += 1
        for r in ps - gs:
            fp[r[2]] += 1
        for r in gs - ps:
            fn[r[2]] += 1
    out = {}
    for label in sorted(set(tp) | set(fp) | set(fn)):
        out[label] = _prf(tp[label], fp[label], fn[label])
    out["micro avg"] = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return out


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1-score": f, "support": tp + fn}


def confusion(gold: list[dict], pred: list[dict], gold_rel_pred: list[list[dict]] | None = None) -> dict:
    """Where entity and relation errors come from.

    Entities: each gold span is ``exact``, ``wrong_label`` (same span), ``partial`` (overlaps a
    prediction) or ``missed``; predictions overlapping no gold span are ``spurious``. Relations
    (given gold entities): counts of (gold label -> predicted label) over the gold pairs.
    """
    ent = {}
    spurious = Counter()
    for g, p in zip(gold, pred):
        pspans = [(e["start"], e["end"], e["label"]) for e in p.get("entities", [])]
        pset = set(pspans)
        by_span = {(s, e): lab for s, e, lab in pspans}
        for e in g.get("entities", []):
            s, t, lab = e["start"], e["end"], e["label"]
            c = ent.setdefault(lab, Counter())
            if (s, t, lab) in pset:
                c["exact"] += 1
            elif (s, t) in by_span:
                c[f"as_{by_span[(s, t)]}"] += 1
            elif any(ps < t and s < pe for ps, pe, _ in pspans):
                c["partial"] += 1
            else:
                c["missed"] += 1
        for s, t, lab in pspans:
            if not any(e["start"] < t and s < e["end"] for e in g.get("entities", [])):
                spurious[lab] += 1
    out = {"entities": {k: dict(v) for k, v in ent.items()}, "spurious_entities": dict(spurious)}
    if gold_rel_pred is not None:
        rel = Counter()
        for g, rels in zip(gold, gold_rel_pred):
            gl = {(r["head"], r["tail"]): r["label"] for r in g.get("relations", [])}
            pl = {(r["head"], r["tail"]): r["label"] for r in rels}
            for pair in set(gl) | set(pl):
                rel[f"{gl.get(pair, 'NONE')} -> {pl.get(pair, 'NONE')}"] += 1
        out["relations_gold_entities"] = dict(sorted(rel.items()))
    return out


def evaluate(extractor, gold: list[dict], progress: bool = False, gold_entities: bool = True) -> dict:
    """Full evaluation of an :class:`~marsad.model.Extractor` on gold records.

    ``gold_entities=False`` skips the second pass that scores the relation head on gold entities
    (half the time; what a per-epoch model selection needs)."""
    texts = [g["text"] for g in gold]
    pred = extractor.extract(texts, progress=progress)
    ents = entity_report(gold, pred)
    out = {
        "n_records": len(gold),
        "entities": {k: v for k, v in ents.items() if k != "text"},
        "entity_report": ents["text"],
        "relations_end_to_end": relation_scores(gold, pred),
    }
    gold_rel_pred = None
    if gold_entities:
        gold_rel_pred = extractor.predict_relations(texts, [g.get("entities", []) for g in gold])
        out["relations_gold_entities"] = relation_scores(gold, [{**g, "relations": rels} for g, rels in zip(gold, gold_rel_pred)])
    out["confusion"] = confusion(gold, pred, gold_rel_pred)
    return out


def headline(result: dict) -> dict:
    """The few numbers that summarise a run (micro F1s)."""
    return {
        "entity_f1": result["entities"].get("micro avg", {}).get("f1-score", 0.0),
        "relation_f1": result["relations_end_to_end"]["micro avg"]["f1-score"],
        **({"relation_f1_gold_entities": result["relations_gold_entities"]["micro avg"]["f1-score"]}
           if "relations_gold_entities" in result else {}),
    }


def _table(scores: dict, title: str) -> str:
    lines = [f"{title:>24}  precision    recall  f1-score   support", ""]
    for label, s in scores.items():
        if label == "micro avg":
            lines.append("")
        lines.append(f"{label:>24}  {s['precision']:9.4f} {s['recall']:9.4f} {s['f1-score']:9.4f} {s['support']:9d}")
    return "\n".join(lines)


def format_report(result: dict) -> str:
    """The human-readable report: seqeval's table, the relation tables, the confusions."""
    parts = [f"Entities (seqeval, strict IOB2) on {result['n_records']} records", result["entity_report"].rstrip(), ""]
    parts += [_table(result["relations_end_to_end"], "relations (end-to-end)"), ""]
    parts += [_table(result["relations_gold_entities"], "relations (gold entities)"), ""]
    conf = result["confusion"]
    parts.append("Entity confusions (gold label: outcome counts)")
    for label, c in sorted(conf["entities"].items()):
        parts.append(f"  {label:>9}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    if conf["spurious_entities"]:
        parts.append("  spurious : " + ", ".join(f"{k} {v}" for k, v in sorted(conf["spurious_entities"].items())))
    errs = {k: v for k, v in conf.get("relations_gold_entities", {}).items() if k.split(" -> ")[0] != k.split(" -> ")[1]}
    if errs:
        parts.append("Relation confusions (gold -> predicted, gold entities)")
        parts += [f"  {k}: {v}" for k, v in sorted(errs.items(), key=lambda kv: -kv[1])]
    return "\n".join(parts)
