"""Records -> model features with ``datasets``, and batch collation.

A feature row holds the sub-word ids of one window of a sentence with ``[CLS]``/``[SEP]`` (a
sentence that fits ``max_length`` is one window), the position of each word's first sub-word
(``word_index``), sub-word labels (first sub-word labelled, the rest ``-100``), and the candidate
pairs of gold entities (type-compatible, at most ``MAX_PAIR_DISTANCE`` words apart) with their
relation labels (``NONE`` when unrelated). ``marsad.model.encoding`` builds them, as it builds
the ``Extractor``'s inputs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from marsad.model.configuration import MarsadSettings
from marsad.model.encoding import candidate_pairs, pair_type_ids, pairs_by_window, sentence_windows, window_labels, word_spans
from marsad.model.schema import bio_labels
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
    """Feature rows for a batch of records (the ``datasets.map`` function, batched), built by
    ``marsad.model.encoding`` as the ``Extractor`` builds them: one row per window of a record's
    sentence (one for any sentence that fits ``max_length``), and the relation pairs of
    :func:`~marsad.model.encoding.candidate_pairs`, each in the first window holding both
    entities, as word positions within that window. A record of several sentences (a whole post
    or paragraph) is read here as one sequence, where the ``Extractor`` reads an article sentence
    by sentence; cutting it here too was measured in session 15 and not kept (the README's lever
    table)."""
    label2id = {label: i for i, label in enumerate(bio_labels(settings.entity_labels))}
    types = {label: i for i, label in enumerate(settings.entity_labels)}
    rel_ids = {label: i for i, label in enumerate(settings.relation_labels)}
    allowed = pair_type_ids(settings)
    tokens = [tokenize(r["text"]) for r in records]
    windows = sentence_windows(tokenizer, [[t.text for t in ts] for ts in tokens], settings, gazetteer)
    out: dict[str, list] = {c: [] for c in COLUMNS}
    for r, ts, ws in zip(records, tokens, windows):
        spans = [(e["start"], e["end"]) for e in r["entities"]]
        tags = [label2id[t] for t in spans_to_tags(ts, [(*span, e["label"]) for span, e in zip(spans, r["entities"])])]
        ents = [(s, e, types[ent["label"]]) for (s, e), ent in zip(word_spans(ts, spans), r["entities"])]
        gold = {(rel["head"], rel["tail"]): rel_ids[rel["label"]] for rel in r["relations"]}
        for w, pairs in zip(ws, pairs_by_window(ws, ents, candidate_pairs(ents, allowed))):
            o = w.word_start
            out["input_ids"].append(w.input_ids)
            out["token_type_ids"].append(w.token_type_ids or [0] * len(w.input_ids))
            out["word_index"].append(w.word_index)
            out["labels"].append(window_labels(w, tags))
            out["pairs"].append([[ents[a][0] - o, ents[a][1] - o, ents[b][0] - o, ents[b][1] - o, ents[a][2], ents[b][2]]
                                 for a, b in pairs])
            out["pair_labels"].append([gold.get(pair, 0) for pair in pairs])
    return out


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
