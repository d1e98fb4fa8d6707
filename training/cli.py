"""The ``marsad`` command line: validate, convert, train, distill, evaluate, predict, serve.

Argparse and thin commands over the library (``predict``'s engine is :mod:`.predict`). Errors
are one line naming the file, line or key and what to do, with a non-zero exit; ``--debug``
shows the Python traceback instead.
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
    from .formats import read_conll, read_jsonl, validate_record
    from .labelstudio import load_labelstudio

    src, dst = Path(args.input), Path(args.output)
    fin, fout = _format_of(src, args.from_), _format_of(dst, args.to)
    if fin == "label-studio":  # a bad task never takes the good ones with it: they are written, it is reported
        loaded = load_labelstudio(src)
        for note in loaded.notes:
            print(note, file=sys.stderr)
        _write_converted(loaded.records, dst, fout, f"{src} ({fin})")
        if loaded.problems:
            for p in loaded.problems:
                print(p, file=sys.stderr)
            raise CLIError(f"{src}: {len(loaded.problems)} bad task(s) not converted (listed above); "
                           f"the {len(loaded.records)} good ones are in {dst}")
        return EXIT_OK
    readers = {"jsonl": read_jsonl, "conll": read_conll}
    records = readers[fin](src)
    problems = [str(p) for i, r in enumerate(records) for p in validate_record(r, f"{src}:{i + 1}")]
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        raise CLIError(f"{src}: {len(problems)} invalid record(s); nothing written (run `marsad validate {src}`)")
    _write_converted(records, dst, fout, f"{src} ({fin})")
    return EXIT_OK


def _write_converted(records: list[dict], dst: Path, fout: str, source: str) -> None:
    from .formats import write_conll, write_jsonl
    from .labelstudio import write_labelstudio

    writers = {"jsonl": write_jsonl, "conll": write_conll, "label-studio": write_labelstudio}
    try:
        writers[fout](records, dst)
    except OSError as e:
        raise CLIError(f"{dst}: cannot write ({e.strerror}); check that its folder exists and is writable") from None
    print(f"{source} -> {dst} ({fout}): {len(records)} records")


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


def cmd_distill(args) -> int:
    """Train a smaller student from a teacher model (``training/distill.py``), like ``train``."""
    from .config import DistillConfig, load_config
    from .distill import distill

    config = load_config(args.config, args.overrides, cls=DistillConfig)
    out = Path(args.output_dir or Path("runs") / Path(args.config).stem)
    result = distill(config, out, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"\nstudent saved to {out} (best epoch {result['best_epoch']}); metrics in {out}/metrics.json")
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
def cmd_predict(args) -> int:
    from .predict import distributed, predict, read_inputs

    out_path = Path(args.output) if args.output else None
    dist = distributed()
    if args.resume and (out_path is None or args.format not in ("jsonl", "events")):
        raise CLIError("--resume needs -o OUT with --format jsonl or events", EXIT_USAGE)
    if args.format == "html" and out_path is None:
        raise CLIError("--format html needs -o OUT.html", EXIT_USAGE)
    if dist and (out_path is None or args.format in ("html", "csv", "geojson")):
        raise CLIError("several processes need -o OUT (jsonl, events or conll)", EXIT_USAGE)
    if args.date is not None:
        from marsad.model.dates import parse_date

        try:
            args.date = parse_date(args.date).isoformat()
        except ValueError as e:
            raise CLIError(f"--date: {e}", EXIT_USAGE) from None
    items = read_inputs(args.inputs)  # every input first: a missing file fails before any work is done
    ex = _load_extractor(args.model, device=dist["device"] if dist else args.device, precision=args.precision,
                         batch_size=args.batch_size)
    failed = predict(ex, items, args.format, out_path, resume=args.resume, dist=dist,
                     progress=sys.stderr.isatty() and not args.quiet, title=f"marsad: {', '.join(args.inputs)}",
                     date=args.date)
    if failed:
        print(f"{failed} of {len(items)} input record(s) failed; their output lines carry \"error\"", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# --- serve ---------------------------------------------------------------------------------
def cmd_serve(args) -> int:
    """Load the model, then serve it over HTTP (``marsad.model.serve``) until interrupted."""
    try:
        from marsad.model.serve import ServeConfig, serve
    except ImportError as e:
        if (e.name or "").split(".")[0] in ("fastapi", "uvicorn", "starlette", "pydantic"):
            raise CLIError(f"marsad serve needs FastAPI and uvicorn ({e.name} is missing): pip install 'marsad[serve]'") from None
        raise
    config = ServeConfig(host=args.host, port=args.port, max_body_bytes=args.max_body_bytes, max_texts=args.max_texts,
                         max_chars=args.max_chars, max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                         api_key=args.api_key or os.environ.get("MARSAD_API_KEY") or None,
                         cors_origins=args.cors_origin or []).validate()  # before the model loads
    ex = _load_extractor(args.model, device=args.device, precision=args.precision)
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.api_key:
        print(f"marsad serve: warning: listening on {config.host} without --api-key; anyone who can reach it can use it",
              file=sys.stderr)
    print(f"marsad serve: {args.model} ({ex.precision} on {ex.device}) at http://{config.host}:{config.port}/ "
          f"(API docs at /docs)", file=sys.stderr)
    serve(ex, config)
    return EXIT_OK


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

    for name, func, what, example, help_ in (
            ("train", cmd_train, "model", "train.epochs=3", "train a model from a YAML config"),
            ("distill", cmd_distill, "student", "distill.alpha=0.7",
             "train a smaller student from a trained teacher model (YAML with a distill: section)")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("config")
        p.add_argument("--output-dir", "-o", help=f"where the {what} goes (default runs/<config name>)")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
        p.add_argument("overrides", nargs="*", metavar="key=value", help=f"config overrides, e.g. {example}")
        p.set_defaults(func=func)

    p = sub.add_parser("evaluate", help="seqeval and relation report of a model on gold JSONL")
    p.add_argument("--model", "-m", required=True)
    p.add_argument("data", nargs="+")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="fp32 (default: scores match training), or a fast path: auto, int8, onnx-int8, fp16, bf16")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="extract entities, relations, counts and events from articles")
    p.add_argument("--model", "-m", required=True)
    p.add_argument("inputs", nargs="+", help=".jsonl of {id, text}, .txt (one article), or - for JSONL on stdin")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.add_argument("--format", "-f", default="jsonl", choices=["jsonl", "conll", "html", "events", "csv", "geojson"],
                   help="events: one JSON line per event; csv: ACLED columns (UTF-8 with BOM); geojson: a "
                        "FeatureCollection of events; html: a report page with a map and an events table")
    p.add_argument("--date", help="publication date YYYY-MM-DD of records that give no \"date\" of their own; "
                                  "relative dates (أمس، الجمعة) are resolved against it")
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

    p = sub.add_parser("serve", help="an HTTP service and web page: POST /extract, /extract/stream, GET /, /docs (needs marsad[serve])")
    p.add_argument("--model", "-m", required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS), help="as for predict")
    p.add_argument("--max-batch-size", type=int, default=32, help="texts per model call, gathered from concurrent requests")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long an idle model waits for more texts to batch")
    p.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024, help="largest request body (413 above it)")
    p.add_argument("--max-texts", type=int, default=256, help="texts per POST /extract (413 above it)")
    p.add_argument("--max-chars", type=int, default=100_000, help="characters per text (an error record above it)")
    p.add_argument("--api-key", help="require this key (Authorization: Bearer KEY or X-API-Key); default $MARSAD_API_KEY")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN", help="allow browser calls from ORIGIN (repeatable; default none)")
    p.set_defaults(func=cmd_serve)
    return ap


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `train CONFIG -o DIR key=value`: argparse leaves overrides given after an option unparsed
    if extra and getattr(args, "command", None) in ("train", "distill") and all("=" in x and not x.startswith("-") for x in extra):
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
    """Errors marsad raises on purpose: their message is the whole story (no traceback hint)."""
    from marsad.model.errors import MarsadError

    return isinstance(e, (CLIError, MarsadError))


if __name__ == "__main__":
    sys.exit(main())
