"""The ``marsad`` command line: validate, convert, train, evaluate, predict.

Errors are one line naming the file, line or key and what to do, with a non-zero exit;
``--debug`` shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CLIError(Exception):
    """An error to print as one line (exit code 1 unless given)."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


# --- validate ------------------------------------------------------------------------------
def cmd_validate(args) -> int:
    from .formats import DataError, validate_file

    total_bad = 0
    for f in args.files:
        try:
            n, problems = validate_file(f)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            total_bad += 1
            continue
        for p in problems:
            print(p, file=sys.stderr)
        total_bad += len(problems)
        status = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"{f}: {n} records, {status}")
    return EXIT_FAILED if total_bad else EXIT_OK


# --- convert -------------------------------------------------------------------------------
_FORMATS = {".jsonl": "jsonl", ".conll": "conll", ".json": "label-studio"}


def _format_of(path: Path, given: str | None) -> str:
    if given:
        return given
    if path.suffix in _FORMATS:
        return _FORMATS[path.suffix]
    raise CLIError(f"{path}: cannot tell the format from the extension; use .jsonl, .conll or .json (Label Studio), or --to/--from", EXIT_USAGE)


def cmd_convert(args) -> int:
    from .formats import read_conll, read_jsonl, validate_record, write_conll, write_jsonl
    from .labelstudio import read_labelstudio, write_labelstudio

    src, dst = Path(args.input), Path(args.output)
    fin, fout = _format_of(src, args.from_), _format_of(dst, args.to)
    readers = {"jsonl": read_jsonl, "conll": read_conll, "label-studio": read_labelstudio}
    records = readers[fin](src)
    problems = [str(p) for i, r in enumerate(records) for p in validate_record(r, f"{src}:{i + 1}")]
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        raise CLIError(f"{src}: {len(problems)} invalid record(s); nothing written (run `marsad validate {src}`)")
    writers = {"jsonl": write_jsonl, "conll": write_conll, "label-studio": write_labelstudio}
    try:
        writers[fout](records, dst)
    except OSError as e:
        raise CLIError(f"{dst}: cannot write ({e.strerror}); check that its folder exists and is writable") from None
    print(f"{src} ({fin}) -> {dst} ({fout}): {len(records)} records")
    return EXIT_OK


# --- train / evaluate ----------------------------------------------------------------------
def cmd_train(args) -> int:
    from .config import load_config
    from .trainer import train

    config = load_config(args.config, args.overrides)
    out = Path(args.output_dir or Path("runs") / Path(args.config).stem)
    result = train(config, out, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # once, under accelerate launch
        print(f"\nmodel saved to {out} (best epoch {result['best_epoch']}); metrics in {out}/metrics.json")
    return EXIT_OK


def _load_extractor(path: str, **kwargs):
    """``Extractor.from_pretrained``; a device or precision this machine cannot give is a usage error."""
    from marsad.model import Extractor

    try:
        return Extractor.from_pretrained(path, **kwargs)
    except ValueError as e:
        raise CLIError(str(e), EXIT_USAGE) from None


def cmd_evaluate(args) -> int:
    from .data import load_records
    from .evaluation import evaluate, format_report

    ex = _load_extractor(args.model, device=args.device, precision=args.precision)
    gold = load_records([Path(p) for p in args.data], ex.entity_labels)
    if not gold:
        raise CLIError(f"{', '.join(args.data)}: no records to evaluate on (the files are empty)")
    result = evaluate(ex, gold, progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(format_report(result))
    return EXIT_OK


# --- predict -------------------------------------------------------------------------------
def _read_inputs(paths: list[str]):
    """Yield ``(id, text_or_error)`` for every input record, in order; bad lines yield an error
    string wrapped in a dict so they keep their place in the output."""
    from .formats import DataError, read_bytes, read_text

    for p in paths:
        if p == "-":
            buf = getattr(sys.stdin, "buffer", None)
            raw = buf.read() if buf is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
            yield from _jsonl_items("<stdin>", raw)
            continue
        path = Path(p)
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            yield from _jsonl_items(str(path), read_bytes(path))
        elif suffix in (".txt", ".text", ""):
            text = read_text(path)
            if not text.strip():
                yield path.stem, {"error": f"{path}: the file is empty"}
            else:
                yield path.stem, text
        else:
            raise DataError(f"{path}: unsupported input; give .jsonl ({{\"id\", \"text\"}} per line), .txt (one article) or -")


def _jsonl_items(source: str, raw: bytes):
    """Items of JSONL bytes, one per non-blank line (see :func:`~.formats.iter_jsonl_bytes`)."""
    from .formats import iter_jsonl_bytes

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
        elif not text.strip():
            yield rid, {"error": f"{where}: \"text\" is empty"}
        else:
            yield rid, text


def _dumps(obj) -> str:
    """One JSON line, Arabic kept readable; unpaired surrogates (not encodable as UTF-8) escaped
    as ``\\udXXX``, so the line is valid UTF-8 and reads back to the very same string."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    return line + "\n"


def _format_record(rid, record: dict, fmt: str) -> str:
    from marsad.model.events import events_from_record

    if fmt == "jsonl":
        return _dumps({"id": rid, **record})
    if fmt == "events":
        if record.get("error"):
            return _dumps({"record_id": rid, "error": record["error"]})
        evs = events_from_record(record, rid)
        # one line per event; a record without events still gets a line, so resuming can count
        return "".join(_dumps(e) for e in evs) or _dumps({"record_id": rid, "events": 0})
    if fmt == "conll":
        from marsad.model.tags import spans_to_tags
        from marsad.model.text import tokenize

        if record.get("error"):
            return f"# id = {rid}\n# error = {record['error']}\n\n"
        lines = [f"# id = {rid}"]
        text = record["text"]
        tokens = tokenize(text)
        tags = spans_to_tags(tokens, [(e["start"], e["end"], e["label"]) for e in record["entities"]])
        lines += [f"{t.text}\t{tag}" for t, tag in zip(tokens, tags)]
        # unpaired surrogates cannot be written as UTF-8: show them as \udXXX
        return ("\n".join(lines) + "\n\n").encode("utf-8", "backslashreplace").decode("utf-8")
    raise ValueError(fmt)


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
            raise CLIError(f"{path}:{lineno}: not a line marsad predict writes; it is another run's output")
        # events: a record is one error line, one {"events": 0} line, or events numbered from 0
        if fmt == "jsonl" or obj.get("event", 0) == 0:
            ids.append(obj.get(key))
            starts.append(pos)
        pos += len(line) + 1
    return ids, starts, keep


def cmd_predict(args) -> int:
    from .formats import DataError

    fmt = args.format
    out_path = Path(args.output) if args.output else None
    if args.resume and (out_path is None or fmt not in ("jsonl", "events")):
        raise CLIError("--resume needs -o OUT with --format jsonl or events", EXIT_USAGE)
    if fmt == "html" and out_path is None:
        raise CLIError("--format html needs -o OUT.html", EXIT_USAGE)
    dist = _distributed()
    if dist and (out_path is None or fmt == "html"):
        raise CLIError("several processes need -o OUT (jsonl, events or conll)", EXIT_USAGE)
    # read every input first: a missing file fails before any work is done
    try:
        items = list(_read_inputs(args.inputs))
    except DataError as e:
        raise CLIError(str(e)) from None
    if not items:
        raise CLIError("no input records (the files are empty)")
    ex = _load_extractor(args.model, device=args.device if not dist else f"{dist['device']}",
                         precision=args.precision, batch_size=args.batch_size)
    done = set()
    skip = 0
    if args.resume:
        written, starts, keep = _done_ids(out_path, fmt)
        if [str(i) for i, _ in items[: len(written)]] != [str(w) for w in written]:
            raise CLIError(f"{out_path} does not hold the first {len(written)} records of this input; it is another run's output")
        if fmt == "events" and written:  # a record's event lines cannot tell if more were to come: redo the last
            written.pop()
            keep = starts.pop()
        if out_path.exists() and out_path.stat().st_size != keep:
            with open(out_path, "r+b") as f:  # drop a torn last line (or an events record cut short)
                f.truncate(keep)
        skip = len(written)
        done = set(range(skip))
        print(f"resuming: {skip} of {len(items)} records already in {out_path}", file=sys.stderr)
    failed = sum(1 for _, t in items if isinstance(t, dict))
    todo = [(k, items[k]) for k in range(len(items)) if k not in done]
    if dist:
        todo = todo[dist["rank"]:: dist["world"]]
    good = [(k, text) for k, (rid, text) in todo if isinstance(text, str)]
    progress = sys.stderr.isatty() and not args.quiet
    results = ex.extract_iter(iter(good), progress=progress, total=len(good))

    def ordered():
        """Records in input order: extracted ones from the stream, bad ones in their place."""
        nxt = next(results, None)
        for k, (rid, text) in todo:
            if isinstance(text, dict):
                yield k, rid, {"text": None, "entities": [], "relations": [], **text}
            else:
                assert nxt is not None and nxt[0] == k
                yield k, rid, nxt[1]
                nxt = next(results, None)

    if fmt == "html":
        from marsad.model.html import render_html

        recs = [{"id": rid, **rec} for _, rid, rec in ordered()]
        out_path.write_text(render_html(recs, title=f"marsad: {', '.join(args.inputs)}"), encoding="utf-8",
                            errors="xmlcharrefreplace")
    else:
        target = out_path if not dist else out_path.with_name(out_path.name + f".part{dist['rank']}")
        try:
            stream = open(target, "a" if args.resume else "w", encoding="utf-8") if target else sys.stdout
        except OSError as e:
            raise CLIError(f"{target}: cannot write ({e.strerror}); check that its folder exists and is writable") from None
        try:
            for k, rid, rec in ordered():
                line = _format_record(rid, rec, fmt)
                if dist:  # tag each line with its input position for the merge
                    line = "".join(f"{k}\t{part}\n" for part in line.split("\n")[:-1])
                stream.write(line)
                stream.flush()
        finally:
            if stream is not sys.stdout:
                stream.close()
        if dist:
            _merge_parts(out_path, dist)
    if failed:
        print(f"{failed} of {len(items)} input record(s) failed; their output lines carry \"error\"", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _distributed() -> dict | None:
    """Rank and world size under ``accelerate launch`` / ``torchrun``; None for one process."""
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
    import time

    (out_path.with_name(out_path.name + f".done{dist['rank']}")).write_text("")
    if dist["rank"] != 0:
        return
    deadline = time.monotonic() + 24 * 3600
    while not all(out_path.with_name(out_path.name + f".done{r}").exists() for r in range(dist["world"])):
        if time.monotonic() > deadline:
            raise CLIError("timed out waiting for the other processes")
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


# --- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from marsad.model.schema import PRECISIONS

    ap = argparse.ArgumentParser(prog="marsad", description="Arabic conflict-news extraction: entities, relations, casualty counts.")
    ap.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check JSONL / CoNLL gold files against the schema")
    p.add_argument("files", nargs="+", type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("convert", help="convert between jsonl, conll and label-studio (by extension or --to)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--from", dest="from_", choices=["jsonl", "conll", "label-studio"])
    p.add_argument("--to", choices=["jsonl", "conll", "label-studio"])
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("config")
    p.add_argument("--output-dir", "-o", help="where the model goes (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.epochs=3")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="seqeval and relation report of a model on gold JSONL")
    p.add_argument("--model", "-m", required=True)
    p.add_argument("data", nargs="+")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="fp32 (default: scores match training), or a fast path: auto, int8, onnx-int8, onnx-fp32, fp16, bf16")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="extract entities, relations, counts and events from articles")
    p.add_argument("--model", "-m", required=True)
    p.add_argument("inputs", nargs="+", help=".jsonl of {id, text}, .txt (one article), or - for JSONL on stdin")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.add_argument("--format", "-f", default="jsonl", choices=["jsonl", "conll", "html", "events"])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                   help="auto: bf16 on a GPU and on CPUs with AMX/AVX512-BF16 (about 3x fp32 at BERT-base size), else fp32; "
                        "int8 / onnx-int8 (needs marsad[onnx]): 1.5-2.7x fp32 at BERT-base size, depending on the CPU. "
                        "Outside fp32, scores (rarely a label) can differ slightly with which sentences share a batch, "
                        "so with --batch-size, sharding or --resume; use fp32 for reproducible scores")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue a killed run: skip the records already in -o")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `train CONFIG -o DIR key=value`: argparse leaves overrides given after an option unparsed
    if extra and getattr(args, "command", None) == "train" and all("=" in x and not x.startswith("-") for x in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if not args.debug:
        import warnings

        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # one line for the user; the traceback behind --debug
        if args.debug:
            raise
        code = e.code if isinstance(e, CLIError) else EXIT_FAILED
        if _is_user_error(e):
            msg = str(e)
        else:
            first = (str(e).splitlines() or [""])[0]
            msg = f"{type(e).__name__}: {first} (run with --debug for the traceback)"
        print(f"marsad {args.command}: error: {msg}", file=sys.stderr)
        return code


def _is_user_error(e: Exception) -> bool:
    from marsad.model.configuration import ConfigError as ModelConfigError
    from marsad.model.modeling import ModelLoadError

    from .config import ConfigError
    from .formats import DataError

    try:
        from .trainer import TrainingError
    except ImportError:  # pragma: no cover
        TrainingError = RuntimeError
    return isinstance(e, (CLIError, DataError, ConfigError, ModelConfigError, ModelLoadError, TrainingError))


if __name__ == "__main__":
    sys.exit(main())
