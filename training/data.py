"""Records -> model features with ``datasets``, and batch collation.

A feature row holds the sub-word ids of one sentence with ``[CLS]``/``[SEP]``, the position of
each word's first sub-word (``word_index``), sub-word labels (first sub-word labelled, the rest
``-100``), and every type-compatible ordered pair of gold entities with its relation label
(``NONE`` when unrelated).
"""

from __future__ import annotations

from pathlib import Path

import torch

from marsad.model.configuration import MarsadSettings
from marsad.model.encoding import align_labels, subword_words
from marsad.model.tags import spans_to_tags
from marsad.model.text import tokenize

from .formats import DataError, iter_jsonl, validate_record

__all__ = ["load_records", "featurize", "build_dataset", "collate"]

COLUMNS = ["input_ids", "token_type_ids", "word_index", "labels", "pairs", "pair_labels"]


def load_records(paths: list[Path], entity_labels: list[str] | None = None) -> list[dict]:
    """Read and validate JSONL files; any invalid record stops with every problem listed."""
    records, problems = [], []
    for path in paths:
        for lineno, obj, err in iter_jsonl(path):
            where = f"{path}:{lineno}"
            if err:
                problems.append(f"{where}: {err}")
                continue
            problems += [str(p) for p in validate_record(obj, where)]
            if entity_labels is not None:
                for e in obj.get("entities", []):
                    if e.get("label") not in entity_labels:
                        problems.append(f"{where}: label {e.get('label')} is not one the model knows ({', '.join(entity_labels)})")
            records.append({k: obj.get(k, [] if k != "id" else f"{Path(path).stem}-{lineno}")
                            for k in ("id", "text", "entities", "relations")})
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{len(problems)} problem(s) in the data; fix them (`marsad validate FILE` lists them):\n  {shown}{more}")
    return records


def featurize(records: list[dict], tokenizer, settings: MarsadSettings, gazetteer=None) -> dict[str, list]:
    """Features for a batch of records (the ``datasets.map`` function, batched)."""
    label2id = {label: i for i, label in enumerate(_bio(settings))}
    types = {label: i for i, label in enumerate(settings.entity_labels)}
    rel_ids = {label: i for i, label in enumerate(settings.relation_labels)}
    allowed = set(settings.pair_types)
    tokens = [tokenize(r["text"]) for r in records]
    encoded = subword_words(tokenizer, [[t.text for t in ts] for ts in tokens])
    out: dict[str, list] = {c: [] for c in COLUMNS}
    budget = settings.max_length - 2
    for r, ts, (ids, first) in zip(records, tokens, encoded):
        spans = [(e["start"], e["end"], e["label"]) for e in r["entities"]]
        tags = spans_to_tags(ts, spans)
        # keep the words whose sub-words fit one window (training sentences rarely exceed it)
        bounds = first + [len(ids)]
        n = len(first)
        while n > 0 and bounds[n] > budget:
            n -= 1
        ids = ids[: bounds[n]] if n < len(first) else ids
        word_of = [w for w in range(n) for _ in range(bounds[w + 1] - bounds[w])]
        word_ids = [None, *word_of, None]
        out["input_ids"].append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
        flags = gazetteer.flags([t.text for t in ts]) if gazetteer is not None else [0] * len(ts)
        out["token_type_ids"].append([0, *(flags[w] for w in word_of), 0])
        out["word_index"].append([f + 1 for f in first[:n]])
        out["labels"].append(align_labels(word_ids, [label2id[t] for t in tags[:n]]))
        # entity word spans
        start_w = {t.start: i for i, t in enumerate(ts)}
        end_w = {t.end: i + 1 for i, t in enumerate(ts)}
        ents = [(start_w[e["start"]], end_w[e["end"]], types[e["label"]]) for e in r["entities"]]
        gold = {(rel["head"], rel["tail"]): rel_ids[rel["label"]] for rel in r["relations"]}
        pairs, pair_labels = [], []
        for a, (hs, he, ht) in enumerate(ents):
            for b, (ts_, te, tt) in enumerate(ents):
                if a == b or te > n or he > n:
                    continue
                if (settings.entity_labels[ht], settings.entity_labels[tt]) in allowed:
                    pairs.append([hs, he, ts_, te, ht, tt])
                    pair_labels.append(gold.get((a, b), 0))
        out["pairs"].append(pairs)
        out["pair_labels"].append(pair_labels)
    return out


def _bio(settings: MarsadSettings) -> list[str]:
    from marsad.model.schema import bio_labels

    return bio_labels(settings.entity_labels)


def build_dataset(records: list[dict], tokenizer, settings: MarsadSettings, gazetteer=None):
    """A ``datasets.Dataset`` of features (columns :data:`COLUMNS`)."""
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    ds = Dataset.from_dict({"id": [str(r["id"]) for r in records], "text": [r["text"] for r in records],
                            "entities": [r["entities"] for r in records], "relations": [r["relations"] for r in records]})

    def fn(batch):
        recs = [{"text": t, "entities": e, "relations": rel} for t, e, rel in zip(batch["text"], batch["entities"], batch["relations"])]
        return featurize(recs, tokenizer, settings, gazetteer)

    return ds.map(fn, batched=True, batch_size=256, remove_columns=ds.column_names)


def collate(rows: list[dict], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a list of feature rows into tensors; pairs get their row index prepended."""
    width = max(len(r["input_ids"]) for r in rows)
    n_words = max(1, max(len(r["word_index"]) for r in rows))
    b = len(rows)
    input_ids = torch.full((b, width), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((b, width), dtype=torch.long)
    attention_mask = torch.zeros((b, width), dtype=torch.long)
    labels = torch.full((b, width), -100, dtype=torch.long)
    word_index = torch.full((b, n_words), -1, dtype=torch.long)
    pairs, pair_labels = [], []
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        input_ids[i, :n] = torch.tensor(r["input_ids"])
        token_type_ids[i, :n] = torch.tensor(r["token_type_ids"])
        attention_mask[i, :n] = 1
        labels[i, :n] = torch.tensor(r["labels"])
        if r["word_index"]:
            word_index[i, : len(r["word_index"])] = torch.tensor(r["word_index"])
        pairs += [[i, *p] for p in r["pairs"]]
        pair_labels += r["pair_labels"]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
        "word_index": word_index,
        "pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 7),
        "pair_labels": torch.tensor(pair_labels, dtype=torch.long),
    }
