"""``marsad predict``'s engine: read the inputs, resume a killed run, shard over processes, write
the records in input order (JSONL, events, CSV, GeoJSON, CoNLL or HTML), merge the shards.

A record may carry its publication date (``"date": "YYYY-MM-DD"`` in the JSONL, or ``--date``
for all of them); the events resolve "yesterday" and "on Friday" against it.

An input that cannot be read whole (a missing file, bad UTF-8) fails before any work; a bad
*record* (a torn JSON line, a ``text`` that is not a string) gets an output line with ``"error"``
in its place, and the others go on. An empty or blank ``text`` is a record with no entities.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path

from .formats import DataError, iter_jsonl_bytes, read_bytes, read_text, record_tags

__all__ = ["read_inputs", "jsonl_items", "predict", "distributed", "format_record", "Article", "FORMATS"]

FORMATS = ("jsonl", "conll", "html", "events", "csv", "geojson")


class Article(str):
    """An input text that carries its publication date (``.date``, ISO ``YYYY-MM-DD`` or None)."""

    date: str | None = None

    def __new__(cls, text: str, date: str | None = None):
        obj = super().__new__(cls, text)
        obj.date = date
        return obj


# --- reading ---------------------------------------------------------------------------------
def read_inputs(paths: list[str]) -> list[tuple[object, str | dict]]:
    """``(id, text)`` for every input record, in order; a bad record is ``(id, {"error": ...})``,
    so it keeps its place in the output. No record at all is a :class:`DataError`."""
    items = [item for p in paths for item in _items_of(p)]
    if not items:
        raise DataError("no input records (the files are empty)")
    return items


def _items_of(p: str):
    """The items of one input: ``-`` (JSONL on standard input), a ``.jsonl`` file or a text file."""
    if p == "-":
        buf = getattr(sys.stdin, "buffer", None)
        raw = buf.read() if buf is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
        return jsonl_items("<stdin>", raw)
    path = Path(p)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return jsonl_items(str(path), read_bytes(path))
    if suffix in (".txt", ".text", ""):
        return [(path.stem, read_text(path))]
    raise DataError(f"{path}: unsupported input; give .jsonl ({{\"id\", \"text\"}} per line), .txt (one article) or -")


def jsonl_items(source: str, raw: bytes):
    """Items of JSONL bytes, one per non-blank line (see :func:`~.formats.iter_jsonl_bytes`)."""
    for lineno, obj, err in iter_jsonl_bytes(raw):
        where = f"{source}:{lineno}"
        if err:
            yield where, {"error": f"{where}: {err}"}
            continue
        rid = obj.get("id", f"{Path(source).stem}-{lineno}")
        text = obj.get("text")
        if "text" not in obj:
            yield rid, {"error": f"{where}: the record has no \"text\" field"}
        elif not isinstance(text, str):
            yield rid, {"error": f"{where}: \"text\" must be a string, got {type(text).__name__}"}
        elif obj.get("date") not in (None, ""):
            yield rid, _dated(where, text, obj["date"])
        else:
            yield rid, text


def _dated(where: str, text: str, value) -> Article | dict:
    """The text with its checked publication date, or an error item naming the field."""
    from marsad.model.dates import parse_date

    try:
        return Article(text, parse_date(value).isoformat())
    except ValueError as e:
        return {"error": f"{where}: \"date\": {e}"}


# --- predicting --------------------------------------------------------------------------------
def predict(ex, items: list, fmt: str, out_path: Path | None, *, resume: bool = False, dist: dict | None = None,
            progress: bool = False, title: str = "marsad", date: str | None = None) -> int:
    """Extract ``items`` (from :func:`read_inputs`) with the Extractor ``ex`` and write them as
    ``fmt`` to ``out_path`` (standard output if None); the number of failed input records.

    ``resume`` skips the records a killed run already wrote to ``out_path``; with ``dist`` (from
    :func:`distributed`) each process takes every ``world``-th record and the last to finish
    merges the parts into ``out_path`` in input order. ``date`` (``YYYY-MM-DD``) is the publication
    date of the records that do not give their own.
    """
    if (dist or resume) and fmt in ("csv", "geojson"):
        raise DataError(f"--format {fmt} is written by one process from the start; use jsonl or events for --resume "
                        "and several processes")
    skip = _resume(out_path, fmt, items) if resume else 0
    todo = list(enumerate(items))[skip:]
    if dist:
        todo = todo[dist["rank"]:: dist["world"]]
    records = _in_order(ex, todo, progress, date)
    if fmt == "html":
        from marsad.model.html import render_html

        page = render_html([{"id": rid, **rec} for _, rid, rec in records], title=title)
        out_path.write_text(page, encoding="utf-8", errors="xmlcharrefreplace")
    else:
        _write_lines(records, fmt, out_path, append=resume, dist=dist)
    return sum(1 for _, t in items if isinstance(t, dict))


def _in_order(ex, todo: list, progress: bool, date: str | None = None):
    """``(position, id, record)`` in input order: extracted ones from the stream, bad ones in their place."""
    good = [(k, text) for k, (_, text) in todo if isinstance(text, str)]
    results = ex.extract_iter(iter(good), progress=progress, total=len(good))
    nxt = next(results, None)
    for k, (rid, text) in todo:
        if isinstance(text, dict):
            yield k, rid, {"text": None, "entities": [], "relations": [], **text}
        else:
            assert nxt is not None and nxt[0] == k
            when = getattr(text, "date", None) or date
            yield k, rid, ({**nxt[1], "text": str(nxt[1]["text"]), "date": when} if when else nxt[1])
            nxt = next(results, None)


def _write_lines(records, fmt: str, out_path: Path | None, append: bool, dist: dict | None) -> None:
    """Write each record as it comes (flushed, so a killed run can resume); under ``dist`` to
    this process's part file, each line tagged with its input position for the merge."""
    target = out_path if not dist else out_path.with_name(out_path.name + f".part{dist['rank']}")
    try:
        stream = open(target, "a" if append else "w", encoding="utf-8") if target else sys.stdout
    except OSError as e:
        raise DataError(f"{target}: cannot write ({e.strerror}); check that its folder exists and is writable") from None
    try:
        stream.write(_head(fmt) if not append else "")
        first = True
        for k, rid, rec in records:
            line = format_record(rid, rec, fmt)
            if dist:
                line = "".join(f"{k}\t{part}\n" for part in line.split("\n")[:-1])
            if fmt == "geojson" and line:  # features are comma-separated inside the collection
                line = ("" if first else ",\n") + line.rstrip("\n").replace("\n", ",\n")
                first = False
            stream.write(line)
            stream.flush()
        stream.write(_TAIL.get(fmt, ""))
    finally:
        if stream is not sys.stdout:
            stream.close()
    if dist:
        _merge_parts(out_path, dist)


# --- writing -----------------------------------------------------------------------------------
def _dumps(obj) -> str:
    """One JSON line, Arabic kept readable; unpaired surrogates (not encodable as UTF-8) escaped
    as ``\\udXXX``, so the line is valid UTF-8 and reads back to the very same string."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    return line + "\n"


def format_record(rid, record: dict, fmt: str) -> str:
    """The output lines of one record: a JSONL line, event lines, CSV rows, GeoJSON features
    (one a line, joined by the writer), or a CoNLL block."""
    from marsad.model.events import events_from_record

    if fmt in ("csv", "geojson"):
        return _format_mapped(rid, record, fmt)
    if fmt == "jsonl":
        return _dumps({"id": rid, **record})
    if fmt == "events":
        if record.get("error"):
            return _dumps({"record_id": rid, "error": record["error"]})
        # one line per event; a record without events still gets a line, so resuming can count
        return "".join(_dumps(e) for e in events_from_record(record, rid)) or _dumps({"record_id": rid, "events": 0})
    if fmt == "conll":
        if record.get("error"):
            return f"# id = {rid}\n# error = {record['error']}\n\n"
        tokens, tags = record_tags(record)
        lines = [f"# id = {rid}"] + [f"{t.text}\t{tag}" for t, tag in zip(tokens, tags)]
        # unpaired surrogates cannot be written as UTF-8: show them as \udXXX
        return ("\n".join(lines) + "\n\n").encode("utf-8", "backslashreplace").decode("utf-8")
    raise ValueError(f"format must be one of {', '.join(f for f in FORMATS if f != 'html')}, got {fmt!r}")


def _acled_header() -> list[str]:
    from marsad.model.events import acled_row

    return list(acled_row({}))


# CSV: UTF-8 with a byte-order mark, so spreadsheet programs read the Arabic right
def _head(fmt: str) -> str:
    """What a file of this format opens with: the CSV header (after a BOM), the GeoJSON collection."""
    if fmt == "csv":
        return "\ufeff" + _csv_line(_acled_header())
    return '{"type": "FeatureCollection", "features": [\n' if fmt == "geojson" else ""


_TAIL = {"geojson": "\n]}\n"}


def _csv_line(values) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else str(v).replace("\n", " ") for v in values])
    return buf.getvalue()


def _format_mapped(rid, record: dict, fmt: str) -> str:
    """CSV rows (ACLED columns) or GeoJSON Feature lines of one record's events; a bad record
    is a row / feature with its error, so it keeps its place."""
    from marsad.model.events import acled_row, events_from_record

    if record.get("error"):
        rows = [{"source": rid, "notes": f"error: {record['error']}"}]
        feats = [{"type": "Feature", "geometry": None, "properties": {"record_id": rid, "error": record["error"]}}]
    else:
        events = events_from_record(record, rid)
        rows = [acled_row(ev) for ev in events]
        feats = [_feature(ev) for ev in events]
    if fmt == "csv":
        header = _acled_header()
        return "".join(_csv_line(row.get(h) for h in header) for row in rows)
    return "".join(_dumps(f) for f in feats)


def _feature(ev: dict) -> dict:
    """One event as a GeoJSON Feature (RFC 7946: [longitude, latitude]; no geometry when not placed)."""
    has_point = isinstance(ev.get("lat"), (int, float)) and isinstance(ev.get("lon"), (int, float))
    geometry = {"type": "Point", "coordinates": [ev["lon"], ev["lat"]]} if has_point else None
    props = {k: v for k, v in ev.items() if k not in ("relations", "casualties")}
    return {"type": "Feature", "id": f"{ev['record_id']}-{ev['event']}", "geometry": geometry, "properties": props}


# --- resuming ----------------------------------------------------------------------------------
def _resume(out_path: Path, fmt: str, items: list) -> int:
    """How many records a killed run already wrote to ``out_path`` (a torn last line, or an events
    record that may have been cut short, is dropped from the file to be written again)."""
    written, starts, keep = _done_ids(out_path, fmt)
    if [str(i) for i, _ in items[: len(written)]] != [str(w) for w in written]:
        raise DataError(f"{out_path} does not hold the first {len(written)} records of this input; it is another run's output")
    if fmt == "events" and written:  # a record's event lines cannot tell if more were to come: redo the last
        written.pop()
        keep = starts.pop()
    if out_path.exists() and out_path.stat().st_size != keep:
        with open(out_path, "r+b") as f:
            f.truncate(keep)
    print(f"resuming: {len(written)} of {len(items)} records already in {out_path}", file=sys.stderr)
    return len(written)


def _done_ids(path: Path, fmt: str) -> tuple[list, list[int], int]:
    """What a killed run already wrote to ``path``: the id of each record, the byte offset where
    each record starts, and the bytes up to the last complete line (a torn last line is not kept)."""
    if not path.exists():
        return [], [], 0
    raw = path.read_bytes()
    keep = raw.rfind(b"\n") + 1
    ids, starts = [], []
    key = "id" if fmt == "jsonl" else "record_id"
    pos = 0
    for lineno, line in enumerate(raw[:keep].split(b"\n")[:-1], 1):
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or not UTF-8
            obj = None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: not a line marsad predict writes; it is another run's output")
        # events: a record is one error line, one {"events": 0} line, or events numbered from 0
        if fmt == "jsonl" or obj.get("event", 0) == 0:
            ids.append(obj.get(key))
            starts.append(pos)
        pos += len(line) + 1
    return ids, starts, keep


# --- several processes -------------------------------------------------------------------------
def distributed() -> dict | None:
    """Rank, world size and device under ``accelerate launch`` / ``torchrun``; None for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    import torch

    device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    return {"rank": rank, "world": world, "device": device}


def _merge_parts(out_path: Path, dist: dict) -> None:
    """The last process to finish merges every part into ``out_path`` in input order."""
    (out_path.with_name(out_path.name + f".done{dist['rank']}")).write_text("")
    if dist["rank"] != 0:
        return
    deadline = time.monotonic() + 24 * 3600
    while not all(out_path.with_name(out_path.name + f".done{r}").exists() for r in range(dist["world"])):
        if time.monotonic() > deadline:
            raise TimeoutError("the other processes did not finish within 24 hours; their part files are beside the output")
        time.sleep(0.2)
    rows = []
    for r in range(dist["world"]):
        part = out_path.with_name(out_path.name + f".part{r}")
        for line in part.read_text(encoding="utf-8").split("\n")[:-1]:
            k, _, rest = line.partition("\t")
            rows.append((int(k), rest + "\n"))
        part.unlink()
        out_path.with_name(out_path.name + f".done{r}").unlink()
    rows.sort(key=lambda x: x[0])  # stable: an item's lines stay together in order
    with open(out_path, "w", encoding="utf-8") as f:
        f.writelines(rest for _, rest in rows)
