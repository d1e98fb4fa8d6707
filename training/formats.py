"""Data formats: JSONL (the source of truth), CoNLL, and validation with precise errors.

A record is ``{"id", "text", "entities": [{"start", "end", "label"}], "relations":
[{"head", "tail", "label"}]}`` (``ANNOTATION.md`` "File format"); other keys (``meta``,
model ``score`` fields) are carried along untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from marsad.model.schema import ENTITY_LABELS, RELATION_TYPES
from marsad.model.tags import SpanError, iob2_errors, spans_to_tags, tags_to_spans
from marsad.model.text import tokenize

__all__ = ["iter_jsonl", "iter_jsonl_bytes", "SpanError",
    "DataError",
    "Problem",
    "read_bytes",
    "read_text",
    "read_jsonl",
    "write_jsonl",
    "record_to_conll",
    "read_conll",
    "write_conll",
    "validate_record",
    "validate_file",
    "record_tags",
]


from marsad.model.errors import DataError  # noqa: E402


@dataclass
class Problem:
    """One validation finding: where and what."""

    where: str  # "file:line"
    record_id: str | None
    message: str

    def __str__(self) -> str:
        rid = f" [{self.record_id}]" if self.record_id else ""
        return f"{self.where}{rid}: {self.message}"


def read_bytes(path: str | Path) -> bytes:
    """Read a file's bytes, with a clear error for a missing, unreadable or directory path."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror}); check that it is a readable file") from None


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file, with a clear error for missing, binary or mis-encoded files."""
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: invalid UTF-8 at byte {e.start} (column {col}); re-save the file as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(f"{path}:{line}: contains NUL bytes; this looks like a binary file, not text")
    return text


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """Yield ``(line_number, record, error)`` for each non-blank line; a bad line yields an error."""
    yield from iter_jsonl_bytes(read_bytes(path))


def iter_jsonl_bytes(raw: bytes) -> Iterator[tuple[int, dict | None, str | None]]:
    """:func:`iter_jsonl` over the bytes of a JSONL file.

    Records end at ``"\\n"`` only (a JSON string may hold U+2028, U+0085, ``\\x1c`` ..., where
    ``str.splitlines`` would cut it), and each line is decoded by itself, so a line that is not
    UTF-8 spoils only itself.
    """
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
        raw = raw[3:]
    for lineno, bline in enumerate(raw.split(b"\n"), 1):
        try:
            line = bline.decode("utf-8")
        except UnicodeDecodeError as e:
            yield lineno, None, f"invalid UTF-8 at column {e.start + 1}; re-save the file as UTF-8"
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, None, f"not valid JSON ({e.msg} at column {e.colno})"
            continue
        except RecursionError:
            yield lineno, None, "not valid JSON (nested too deeply)"
            continue
        if not isinstance(obj, dict):
            yield lineno, None, f"expected a JSON object, got {type(obj).__name__}"
            continue
        yield lineno, obj, None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read every record of a JSONL file; the first bad line raises :class:`DataError`."""
    records = []
    for lineno, obj, err in iter_jsonl(path):
        if err:
            raise DataError(f"{path}:{lineno}: {err}")
        records.append(obj)
    return records


def _write_atomic(path: Path, write) -> None:
    """``write(file)`` into ``path.tmp``, then swap it in; a failure leaves no ``.tmp`` behind."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_jsonl(records: Iterable[dict], path: str | Path) -> None:
    """Write records as UTF-8 JSON Lines (Arabic kept readable), atomically."""

    def write(f):
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    _write_atomic(Path(path), write)


def record_tags(record: dict) -> tuple[list, list[str]]:
    """The record's spec tokens and their IOB2 tags (raises :class:`SpanError`)."""
    tokens = tokenize(record["text"])
    spans = [(e["start"], e["end"], e["label"]) for e in record.get("entities", [])]
    return tokens, spans_to_tags(tokens, spans)


# --- validation ----------------------------------------------------------------------------
_SURROGATE = re.compile("[\ud800-\udfff]")


def validate_record(record: dict, where: str = "<record>") -> list[Problem]:
    """Every problem of one record: fields, offsets, boundaries, overlaps, labels, relations."""
    rid = record.get("id") if isinstance(record.get("id"), (str, int)) else None
    rid = None if rid is None else str(rid)
    problems: list[Problem] = []

    def bad(msg: str) -> None:
        problems.append(Problem(where, rid, msg))

    text = record.get("text")
    if "text" not in record:
        bad('missing field "text"')
        return problems
    if not isinstance(text, str):
        bad(f'field "text" must be a string, got {type(text).__name__}')
        return problems
    surrogate = _SURROGATE.search(text)
    if surrogate:
        bad(f'field "text" holds an unpaired surrogate (U+{ord(surrogate.group()):04X}) at character '
            f"{surrogate.start()}, which is not valid Unicode; fix the text at its source")
        return problems
    entities = record.get("entities", [])
    relations = record.get("relations", [])
    if not isinstance(entities, list):
        bad('field "entities" must be a list')
        return problems
    if not isinstance(relations, list):
        bad('field "relations" must be a list')
        relations = []
    ok_spans = []
    for i, ent in enumerate(entities):
        if not isinstance(ent, dict):
            bad(f"entity {i}: must be an object with start, end, label")
            continue
        s, e, label = ent.get("start"), ent.get("end"), ent.get("label")
        if not (isinstance(s, int) and isinstance(e, int)) or isinstance(s, bool) or isinstance(e, bool):
            bad(f"entity {i}: start and end must be integers, got {s!r}, {e!r}")
            continue
        if label not in ENTITY_LABELS:
            bad(f"entity {i}: label {label!r} is not one of {', '.join(ENTITY_LABELS)}")
            continue
        if not (0 <= s < e <= len(text)):
            bad(f"entity {i} {label} [{s}, {e}): out of range for a text of {len(text)} characters")
            continue
        if "text" in ent and ent["text"] != text[s:e]:
            bad(f"entity {i} {label} [{s}, {e}): its text {ent['text']!r} is not text[{s}:{e}] {text[s:e]!r}")
        ok_spans.append((s, e, label, i))
    if len(ok_spans) == len(entities):
        tokens = tokenize(text)
        starts = {t.start for t in tokens}
        ends = {t.end for t in tokens}
        for s, e, label, i in ok_spans:
            if s not in starts or e not in ends:
                edge = "start" if s not in starts else "end"
                bad(
                    f"entity {i} {label} {text[s:e]!r} [{s}, {e}): its {edge} is not on a token boundary "
                    "(a span covers whole tokens; attached clitics belong to the span)"
                )
        ordered = sorted(ok_spans)
        for (s1, e1, l1, i1), (s2, e2, l2, i2) in zip(ordered, ordered[1:]):
            if s2 < e1:
                bad(f"entities {i1} {text[s1:e1]!r} and {i2} {text[s2:e2]!r} overlap")
    _check_relations(relations, entities, bad)
    return problems


def _check_relations(relations: list, entities: list, bad) -> None:
    """Report (through ``bad``) relations that do not index entities or break the schema."""
    seen = set()
    for j, rel in enumerate(relations):
        if not isinstance(rel, dict):
            bad(f"relation {j}: must be an object with head, tail, label")
            continue
        h, t, label = rel.get("head"), rel.get("tail"), rel.get("label")
        if not isinstance(label, str) or label not in RELATION_TYPES:
            bad(f"relation {j}: label {label!r} is not one of {', '.join(RELATION_TYPES)}")
            continue
        if not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < len(entities) for x in (h, t)):
            bad(f"relation {j} {label}: head {h!r} / tail {t!r} must index entities (0..{len(entities) - 1})")
            continue
        want = RELATION_TYPES[label]
        got = tuple(entities[x].get("label") if isinstance(entities[x], dict) else None for x in (h, t))
        if got != want:
            bad(f"relation {j} {label}: needs {want[0]} -> {want[1]}, got {got[0]} -> {got[1]}")
        if (h, t) in seen:
            bad(f"relation {j} {label}: a second relation between entities {h} and {t}")
        seen.add((h, t))


def validate_file(path: str | Path) -> tuple[int, list[Problem]]:
    """Validate a JSONL or CoNLL file; return ``(records_checked, problems)``."""
    path = Path(path)
    problems: list[Problem] = []
    n = 0
    if path.suffix == ".conll":
        for lineno, tokens, tags in _iter_conll_blocks(read_text(path), path):
            n += 1
            for msg in iob2_errors(tags):
                problems.append(Problem(f"{path}:{lineno}", None, msg))
        return n, problems
    ids: dict[str, int] = {}
    for lineno, obj, err in iter_jsonl(path):
        n += 1
        where = f"{path}:{lineno}"
        if err:
            problems.append(Problem(where, None, err))
            continue
        problems.extend(validate_record(obj, where))
        rid = obj.get("id")
        if rid is not None:
            if str(rid) in ids:
                problems.append(Problem(where, str(rid), f"duplicate id (first on line {ids[str(rid)]})"))
            ids.setdefault(str(rid), lineno)
    if n == 0:
        problems.append(Problem(f"{path}:1", None, "the file has no records"))
    return n, problems


# --- CoNLL ---------------------------------------------------------------------------------
def record_to_conll(record: dict) -> str:
    """``token<TAB>tag`` lines of one record (no trailing blank line)."""
    tokens, tags = record_tags(record)
    return "\n".join(f"{t.text}\t{tag}" for t, tag in zip(tokens, tags))


def write_conll(records: Iterable[dict], path: str | Path) -> None:
    """Write records as CoNLL; a ``# id = ...`` and ``# text = ...`` comment keeps them exact."""
    path = Path(path)

    def write(f):
        for r in records:
            if "\n" in r["text"]:
                raise DataError(f"record {r.get('id')}: CoNLL cannot hold a text with line breaks; keep it as JSONL")
            if r.get("id") is not None:
                f.write(f"# id = {r['id']}\n")
            f.write(f"# text = {r['text']}\n")
            if r.get("relations"):
                f.write(f"# relations = {json.dumps(r['relations'], ensure_ascii=False)}\n")
            if r.get("meta"):
                f.write(f"# meta = {json.dumps(r['meta'], ensure_ascii=False)}\n")
            body = record_to_conll(r)
            f.write(body + ("\n\n" if body else "\n"))

    _write_atomic(path, write)


def _iter_conll_blocks(text: str, path) -> Iterator[tuple[int, list[str], list[str]]]:
    for lineno, comments, rows in _conll_blocks(text, path):
        yield lineno, [r[0] for r in rows], [r[1] for r in rows]


def _conll_blocks(text: str, path):
    comments: dict[str, str] = {}
    rows: list[tuple[str, str]] = []
    start = 1
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            if rows or comments:
                yield start, comments, rows
            comments, rows = {}, []
            start = lineno + 1
            continue
        if line.startswith("# ") and " = " in line and not rows:
            key, _, value = line[2:].partition(" = ")
            comments[key.strip()] = value
            continue
        parts = line.split("\t") if "\t" in line else line.rsplit(" ", 1)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise DataError(f"{path}:{lineno}: expected 'token<TAB>tag', got {line!r}")
        rows.append((parts[0], parts[1].strip()))
    if rows or comments:
        yield start, comments, rows


def read_conll(path: str | Path) -> list[dict]:
    """Read CoNLL back into records. With a ``# text =`` comment the offsets are exact;
    without one the text is rebuilt by joining tokens with single spaces."""
    records = []
    for n, (lineno, comments, rows) in enumerate(_conll_blocks(read_text(path), path)):
        tags = [r[1] for r in rows]
        errors = iob2_errors(tags)
        if errors:
            raise DataError(f"{path}:{lineno}: invalid IOB2: {errors[0]}")
        text = comments.get("text")
        if text is None:
            text = " ".join(r[0] for r in rows)
        tokens = tokenize(text)
        if [t.text for t in tokens] != [r[0] for r in rows]:
            raise DataError(f"{path}:{lineno}: the tokens do not match the tokenised '# text' line")
        spans = tags_to_spans(tokens, tags)
        rid = comments.get("id", f"{Path(path).stem}-{n + 1}")
        try:
            relations = json.loads(comments.get("relations", "[]"))
            meta = json.loads(comments["meta"]) if "meta" in comments else None
        except (json.JSONDecodeError, RecursionError) as e:
            why = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
            raise DataError(f"{path}:{lineno}: a '# relations' or '# meta' comment is not valid JSON ({why})") from None
        record = {
            "id": rid,
            "text": text,
            "entities": [{"start": s, "end": e, "label": lab, "text": text[s:e]} for s, e, lab in spans],
            "relations": relations,
        }
        if meta is not None:
            record["meta"] = meta
        records.append(record)
    return records
