"""Bracket markup: the quick way the project's annotators write gold sentences.

One sentence a line; entities in ``[...]{ID}`` brackets, the ID's first letter giving the
label (``A`` ACTOR, ``L`` LOCATION, ``C`` CASUALTY); relations after ``|||`` as
``HEAD LABEL TAIL`` separated by ``;``::

    # doc: sy-idlib-01 | region: Syria
    وقصفت [قوات النظام]{A1} بلدة [كفرنبل]{L1}، ما أدى إلى مقتل [ثلاثة مدنيين]{C1}. ||| A1 ATTACKS L1; C1 CASUALTY_IN L1; C1 CAUSED_BY A1

``# doc:`` starts a written document (records are numbered within it, ``sy-idlib-01-003``);
other lines that start with ``#`` and a space are comments (a line that starts with a hashtag,
``#عاجل ...``, is a record). ``python -m marsad.training.markup FILE...`` checks files
(every span on token boundaries, relation types, the spec's label set) and with ``-o OUT``
writes the project's JSONL.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from marsad.model.schema import RELATION_TYPES

from .formats import DataError, read_text, validate_record, write_jsonl

__all__ = ["parse_markup", "parse_markup_line", "to_markup"]

_PREFIX = {"A": "ACTOR", "L": "LOCATION", "C": "CASUALTY"}
# a comment is "#" then a space (or nothing): "#غزة ..." or "#[حماس]{A1} ..." is a record that
# opens with a hashtag, as real posts do
_COMMENT = re.compile(r"#(\s|$)")
_ENTITY = re.compile(r"\[([^\[\]{}]+)\]\{([ALC]\d+)\}")


def parse_markup_line(line: str) -> tuple[str, list[dict], list[dict]]:
    """``(text, entities, relations)`` of one markup line; raises ``ValueError``."""
    body, _, rels = line.partition("|||")
    body = body.strip()
    text_parts: list[str] = []
    entities: list[dict] = []
    ids: dict[str, int] = {}
    pos = 0
    length = 0
    for m in _ENTITY.finditer(body):
        before = body[pos : m.start()]
        text_parts.append(before)
        length += len(before)
        span, eid = m.group(1), m.group(2)
        if eid in ids:
            raise ValueError(f"entity id {eid} used twice")
        if span != span.strip():
            raise ValueError(f"span [{span}] starts or ends with a space")
        ids[eid] = len(entities)
        entities.append({"start": length, "end": length + len(span), "label": _PREFIX[eid[0]], "text": span})
        text_parts.append(span)
        length += len(span)
        pos = m.end()
    text_parts.append(body[pos:])
    text = "".join(text_parts)
    for ch in "[]{}":
        if ch in text:
            raise ValueError(f"stray {ch!r} in the text: write entities as [span]{{A1}} (A, L or C and a number)")
    relations = []
    for item in filter(None, (r.strip() for r in rels.split(";"))):
        parts = item.split()
        if len(parts) != 3:
            raise ValueError(f"relation {item!r}: write it as 'HEAD LABEL TAIL', e.g. 'A1 ATTACKS L1'")
        h, label, t = parts
        if label not in RELATION_TYPES:
            raise ValueError(f"relation {item!r}: {label} is not one of {', '.join(RELATION_TYPES)}")
        for x in (h, t):
            if x not in ids:
                raise ValueError(f"relation {item!r}: no entity {x} in this line")
        relations.append({"head": ids[h], "tail": ids[t], "label": label})
    # entities in text order, relation indices following them
    order = sorted(range(len(entities)), key=lambda i: entities[i]["start"])
    new_index = {old: new for new, old in enumerate(order)}
    entities = [entities[i] for i in order]
    relations = [{"head": new_index[r["head"]], "tail": new_index[r["tail"]], "label": r["label"]} for r in relations]
    relations.sort(key=lambda r: (r["head"], r["tail"]))
    return text, entities, relations


def parse_markup(path: str | Path) -> tuple[list[dict], list[str]]:
    """All records of a markup file and the list of problems (``file:line: message``)."""
    path = Path(path)
    records: list[dict] = []
    problems: list[str] = []
    doc, meta, n = path.stem, {}, 0
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        if _COMMENT.match(line):
            m = re.match(r"#\s*doc:\s*(.+)", line)
            if m:
                fields = [f.strip() for f in m.group(1).split("|")]
                doc, meta, n = fields[0], {}, 0
                for f in fields[1:]:
                    k, _, v = f.partition(":")
                    meta[k.strip()] = v.strip()
            continue
        n += 1
        rid = f"{doc}-{n:03d}"
        try:
            text, entities, relations = parse_markup_line(line)
        except ValueError as e:
            problems.append(f"{path}:{lineno} [{rid}]: {e}")
            continue
        record = {"id": rid, "text": text, "entities": entities, "relations": relations,
                  "meta": {"doc": doc, **meta}}
        for p in validate_record(record, f"{path}:{lineno}"):
            problems.append(str(p))
        records.append(record)
    ids = [r["id"] for r in records]
    dupes = {i for i in ids if ids.count(i) > 1}
    for d in sorted(dupes):
        problems.append(f"{path}: record id {d} appears twice (two '# doc:' headers with the same name?)")
    return records, problems


def to_markup(record: dict) -> str:
    """The markup line of a record (inverse of :func:`parse_markup_line`)."""
    text = record["text"]
    ents = sorted(enumerate(record.get("entities", [])), key=lambda x: x[1]["start"])
    names = {}
    counters = {"ACTOR": 0, "LOCATION": 0, "CASUALTY": 0}
    out, pos = [], 0
    for i, e in ents:
        counters[e["label"]] += 1
        names[i] = e["label"][0] + str(counters[e["label"]])
        out.append(text[pos : e["start"]] + f"[{text[e['start']:e['end']]}]{{{names[i]}}}")
        pos = e["end"]
    out.append(text[pos:])
    line = "".join(out)
    rels = "; ".join(f"{names[r['head']]} {r['label']} {names[r['tail']]}" for r in record.get("relations", []))
    return line + (f" ||| {rels}" if rels else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marsad.training.markup", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("-o", "--output", type=Path, help="write all records to this JSONL file")
    args = ap.parse_args(argv)
    all_records, all_problems = [], []
    for f in args.files:
        try:
            records, problems = parse_markup(f)
        except DataError as e:
            all_problems.append(str(e))
            continue
        all_records += records
        all_problems += problems
    for p in all_problems:
        print(p, file=sys.stderr)
    n_ent = sum(len(r["entities"]) for r in all_records)
    n_rel = sum(len(r["relations"]) for r in all_records)
    print(f"{len(all_records)} sentences, {n_ent} entities, {n_rel} relations, {len(all_problems)} problems")
    if args.output and not all_problems:
        write_jsonl(all_records, args.output)
    return 1 if all_problems else 0


if __name__ == "__main__":
    sys.exit(main())
