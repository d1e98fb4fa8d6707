"""Robustness: bad input, interrupted work, untrusted files, and fuzzing.

Analysts feed marsad whatever their scrapers bring back, runs get killed, model folders come
from strangers. None of that may crash a run (a one-line error, never a traceback), lose
finished work, or run code. The kill tests kill real subprocesses.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SEED_JSONL, SEED_TXT, overfit_records, read_jsonl, tiny_config, write_jsonl
from marsad.model import Extractor
from marsad.model.modeling import MarsadModel, ModelLoadError
from marsad.model.tags import iob2_errors, repair_iob2, spans_to_tags, tags_to_spans
from marsad.model.text import normalize_text, normalize_word, split_sentences, tokenize
from marsad.training.cli import _jsonl_items, main
from marsad.training.config import config_to_dict
from marsad.training.formats import validate_record

QUIET = lambda *a, **k: None  # noqa: E731
SUBPROCESS_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                  "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def lines_of(path: Path) -> list[str]:
    """The lines of a JSONL output file: split at "\\n" only, as a text may hold U+2028 and friends."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text.split("\n")[:-1]


def one_line_error(err: str, command: str) -> str:
    """The error message of a failed command: exactly one line, ``marsad CMD: error: ...``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"marsad {command}: error: "), err
    return lines[0]


def assert_no_pickles(folder: Path) -> None:
    """No pickle (or torch.save zip) anywhere: loading the folder never needs unpickling."""
    for p in folder.rglob("*"):
        if p.is_file():
            head = p.read_bytes()[:2]
            assert p.suffix not in (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"), p
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), p
            assert head != b"PK", p


def check_record(rec: dict, text: str) -> None:
    """A valid extraction of ``text``: entities slice it on token boundaries, no overlaps,
    relations index the entities."""
    assert rec["text"] == text and "error" not in rec
    tokens = tokenize(text)
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    prev = 0
    for e in rec["entities"]:
        assert prev <= e["start"] < e["end"] <= len(text), rec["entities"]
        assert e["start"] in starts and e["end"] in ends
        assert text[e["start"]:e["end"]] == e["text"]
        assert e["label"] in ("ACTOR", "LOCATION", "CASUALTY")
        prev = e["end"]
    for r in rec["relations"]:
        assert 0 <= r["head"] < len(rec["entities"]) and 0 <= r["tail"] < len(rec["entities"]) and r["head"] != r["tail"]


# =============================================================================================
# 1. Input
# =============================================================================================
def _junk_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the error must say)."""
    tmp.mkdir(exist_ok=True)
    files = {}
    p = tmp / "missing.jsonl"
    files["missing"] = (p, f"{p}: no such file")
    p = tmp / "folder.jsonl"
    p.mkdir()
    files["directory"] = (p, f"{p}: is a directory")
    p = tmp / "latin1.jsonl"
    p.write_bytes('{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n'.encode("latin-1"))
    files["invalid utf-8"] = (p, f"{p}:2: invalid UTF-8 at column 25; re-save the file as UTF-8")
    p = tmp / "junk.jsonl"
    p.write_bytes(bytes(range(256)) * 4)
    files["binary junk"] = (p, f"{p}:1: not valid JSON")
    return files


@pytest.mark.parametrize("case", ["missing", "directory", "invalid utf-8", "binary junk"])
@pytest.mark.parametrize("command", ["validate", "convert", "evaluate"])
def test_bad_data_files_give_one_clear_line(cli, tmp_path, trained_model, command, case):
    path, want = _junk_files(tmp_path / "in")[case]
    argv = {"validate": ["validate", path], "convert": ["convert", path, tmp_path / "out.conll"],
            "evaluate": ["evaluate", "-m", trained_model, path]}[command]
    code, out, err = cli(*argv)
    assert code == 1
    assert want in err
    if command != "validate":
        one_line_error(err.split("\n  ")[0], command)  # evaluate may list the problems below it
        assert not (tmp_path / "out.conll").exists()


def test_unreadable_file(cli, tmp_path, trained_model):
    p = tmp_path / "locked.txt"
    p.write_text("نص", encoding="utf-8")
    p.chmod(0)
    try:
        p.read_bytes()
        p = Path("/proc/self/mem")  # root reads any file; this one fails to read for everyone
        if not p.exists():
            pytest.skip("no file here that cannot be read")
    except PermissionError:
        pass
    for argv in (["predict", "-m", trained_model, p], ["validate", p]):
        code, _, err = cli(*argv)
        assert code == 1 and f"{p}: cannot read (" in err and "check that it is a readable file" in err


@pytest.mark.parametrize("name, content, want", [
    ("missing.txt", None, "no such file"),
    ("bad.txt", b"\xd9\x82\xd8\xaa\xd9\x84 \xff\xfe", "bad.txt:1: invalid UTF-8 at byte 7 (column 8); re-save the file as UTF-8"),
    ("nul.txt", "قتل\n\x00\x00".encode(), "nul.txt:2: contains NUL bytes"),
    ("junk.bin", bytes(range(256)), "unsupported input; give .jsonl"),
    ("empty.jsonl", b"", "no input records"),
    ("blank.jsonl", b"\n  \n\r\n", "no input records"),
])
def test_predict_bad_input_files(cli, trained_model, tmp_path, name, content, want):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    out_file = tmp_path / "out.jsonl"
    code, out, err = cli("predict", "-m", trained_model, p, "-o", out_file)
    assert code == 1 and out == ""
    assert want in one_line_error(err, "predict")
    assert not out_file.exists()  # inputs are checked before any work


def test_predict_empty_txt_gets_an_error_record(cli, trained_model, tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text(" \n\t\n", encoding="utf-8")
    code, out, err = cli("predict", "-m", trained_model, p, SEED_TXT, "-q")
    assert code == 1 and "1 of 2 input record(s) failed" in err
    first, second = [json.loads(line) for line in out.splitlines()]
    assert first == {"id": "empty", "text": None, "entities": [], "relations": [], "error": f"{p}: the file is empty"}
    check_record(second, SEED_TXT.read_text(encoding="utf-8"))


def test_predict_output_folder_missing(cli, trained_model, tmp_path):
    code, _, err = cli("predict", "-m", trained_model, SEED_TXT, "-o", tmp_path / "no" / "out.jsonl")
    assert code == 1 and "cannot write" in one_line_error(err, "predict")


def test_convert_output_folder_missing_and_no_tmp_left(cli, tmp_path):
    code, _, err = cli("convert", SEED_JSONL, tmp_path / "no" / "out.conll")
    assert code == 1 and "cannot write" in one_line_error(err, "convert")
    recs = read_jsonl(SEED_JSONL)[:2]
    recs[1]["text"] += "\nسطر ثان"
    src = tmp_path / "two.jsonl"
    write_jsonl(recs, src)
    code, _, err = cli("convert", src, tmp_path / "two.conll")
    assert code == 1 and "line breaks" in one_line_error(err, "convert")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.jsonl"]  # no half-written file, no .tmp


def test_empty_files_for_validate_evaluate_convert(cli, tmp_path, trained_model):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    code, out, err = cli("validate", empty)
    assert code == 1 and f"{empty}:1: the file has no records" in err
    code, _, err = cli("evaluate", "-m", trained_model, empty)
    assert code == 1 and "no records to evaluate" in one_line_error(err, "evaluate")
    code, _, err = cli("convert", empty, tmp_path / "empty.conll")  # converting nothing gives nothing
    assert code == 0 and (tmp_path / "empty.conll").read_text() == ""


# --- JSONL with bad records: processed in place, one output line each ---------------------------
GOOD = "قتل ثلاثة مدنيين في قصف على حلب."


def _mixed_jsonl(path: Path) -> list[tuple[object, str | None]]:
    """Write a JSONL file of good and bad lines; return ``(expected id, error fragment or None)``."""
    lines = [
        (json.dumps({"id": "good-1", "text": GOOD}, ensure_ascii=False), "good-1", None),
        ('{"id": "torn", "text": "قتل ثلا', f"{path}:2", "not valid JSON"),
        (json.dumps({"id": "no-text", "body": GOOD}, ensure_ascii=False), "no-text", 'has no "text" field'),
        (json.dumps({"id": "int-text", "text": 5}), "int-text", '"text" must be a string, got int'),
        (json.dumps({"id": "null-text", "text": None}), "null-text", '"text" must be a string, got NoneType'),
        (json.dumps({"id": "list-text", "text": [GOOD]}, ensure_ascii=False), "list-text", "got list"),
        (json.dumps({"id": "empty-text", "text": ""}), "empty-text", '"text" is empty'),
        (json.dumps({"id": "space-text", "text": " \n\t"}), "space-text", '"text" is empty'),
        ("[1, 2, 3]", f"{path}:9", "expected a JSON object"),
        ('"just a string"', f"{path}:10", "expected a JSON object"),
        (b'{"id": "latin1", "text": "caf\xe9"}', f"{path}:11", "invalid UTF-8 at column 30; re-save the file as UTF-8"),
        (json.dumps({"text": GOOD}, ensure_ascii=False), f"{path.stem}-12", None),
        # a raw U+2028 / U+0085 / \x1c inside a JSON string is valid JSON: not a line break
        (json.dumps({"id": "separators", "text": "قتل ثلاثة\u2028في حلب\x85 و\x1cهنا"}, ensure_ascii=False), "separators", None),
        (json.dumps({"id": "good-2", "text": GOOD + " " + GOOD}, ensure_ascii=False), "good-2", None),
        ("[" * 100_000, f"{path}:15", "not valid JSON (nested too deeply)"),
        (json.dumps({"id": "last", "text": "\x00\x01 " + GOOD}, ensure_ascii=False), "last", None),
    ]
    raw = b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x, _, _ in lines)
    path.write_bytes(raw + b"\n")  # a trailing blank line is not a record
    return [(rid, err) for _, rid, err in lines]


@pytest.mark.parametrize("fmt", ["jsonl", "events"])
def test_predict_bad_records_keep_their_place(cli, trained_model, tmp_path, fmt):
    src = tmp_path / "mixed.jsonl"
    expected = _mixed_jsonl(src)
    out_file = tmp_path / "out.jsonl"
    code, _, err = cli("predict", "-m", trained_model, src, "-o", out_file, "-f", fmt, "-q")
    n_bad = sum(1 for _, e in expected if e)
    assert code == 1 and f"{n_bad} of {len(expected)} input record(s) failed" in err
    rows = [json.loads(line) for line in lines_of(out_file)]
    if fmt == "jsonl":
        assert len(rows) == len(expected)  # one output line per input record, always
        for row, (rid, error) in zip(rows, expected):
            assert row["id"] == rid
            if error:
                assert error in row["error"] and row["entities"] == [] and row["text"] is None
                assert row["error"].startswith(str(src) + ":")  # names the file and line
            else:
                assert "error" not in row
        texts = {r["id"]: r["text"] for r in rows if not r.get("error")}
        assert texts["separators"] == "قتل ثلاثة\u2028في حلب\x85 و\x1cهنا"
        for row in rows:
            if not row.get("error"):
                check_record(row, row["text"])
    else:  # events: every record has its lines, in order; bad ones one line with "error"
        first_lines = [r for r in rows if r.get("event", 0) == 0]
        assert [r["record_id"] for r in first_lines] == [rid for rid, _ in expected]
        for row, (_, error) in zip(first_lines, expected):
            assert (error is not None) == ("error" in row)


def test_validate_lists_each_bad_line(cli, tmp_path):
    src = tmp_path / "mixed.jsonl"
    _mixed_jsonl(src)
    code, out, err = cli("validate", src)
    assert code == 1
    assert f"{src}:2: not valid JSON" in err and f"{src}:15: not valid JSON (nested too deeply)" in err
    assert f"{src}:11: invalid UTF-8 at column 30; re-save the file as UTF-8" in err
    assert f'{src}:3 [no-text]: missing field "text"' in err and f"{src}:9: expected a JSON object, got list" in err
    assert out.strip() == f"{src}: 16 records, 9 problem(s)"  # an empty text is fine in gold data


def test_predict_text_with_unpaired_surrogate(cli, trained_model, tmp_path):
    """``"\\ud800"`` is valid JSON but not encodable text: the record is processed, and the
    output stays valid UTF-8 that reads back to the very same string."""
    src = tmp_path / "s.jsonl"
    src.write_text('{"id": "s", "text": "\\ud800 قتل ثلاثة في حلب \\udfff"}\n', encoding="utf-8")
    for fmt in ("jsonl", "conll", "events"):
        out_file = tmp_path / f"out.{fmt}"
        code, _, err = cli("predict", "-m", trained_model, src, "-o", out_file, "-f", fmt, "-q")
        assert code == 0, err
        out_file.read_bytes().decode("utf-8")  # strict UTF-8
    rec = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    check_record(rec, "\ud800 قتل ثلاثة في حلب \udfff")
    code, _, err = cli("predict", "-m", trained_model, src, "-o", tmp_path / "o.html", "-f", "html", "-q")
    assert code == 0
    # as gold data it is refused with a clear problem
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "g", "text": "\\ud800 x", "entities": [], "relations": []}\n', encoding="utf-8")
    code, _, err = cli("validate", gold)
    assert code == 1 and "unpaired surrogate (U+D800) at character 0" in err


# --- odd texts through the Python API ----------------------------------------------------------
ODD_TEXTS = {
    "empty": "",
    "whitespace": " \n\t\r\n ",
    "emoji": "😀🔥👍🏽🇸🇾 👨‍👩‍👧 ❤️",
    "latin": "The army shelled Aleppo on Tuesday, killing 3 people.",
    "digits": "123 4.5 ١٢٣ ۴۵۶ 10,000",
    "punctuation": "!!! ... ؟؟ ،،، «» () [] -- ...",
    "long token": "ب" * 20_000,
    "long latin token": "x" * 20_000 + " قتل ثلاثة في حلب",
    "bidi marks": "\u200fقتل\u200e ثلاثة ABC \u202bفي حلب\u202c \u2066(UN)\u2069 \u202eعكس\u202c\u200b",
    "nul and control": "a\x00b\x01c\x07 قتل\x1b[31m ثلاثة\x7f في\x9f حلب\x0c\x0b.",
    "unicode line breaks": "قتل ثلاثة\u2028في حلب\u2029ثم\x85انسحب الجيش\r\nمن حمص.",
    "combining marks alone": "\u0651\u0651 \u0300\u0301 \u064b",
    "tatweel alone": "ـــــ ـ",
    "zero width": "\u200b\u200c\u200d\ufeff\u2060",
    "private use and noncharacters": "\ue000\U0010ffff\ufffe \uffff",
    "ligatures": "\ufdfa \ufdf2 \ufefb\ufefc",
    "mixed scripts": "Бомбардировка 轰炸 בום قصف πόλη",
    "unpaired surrogates": "\ud800قتل\udfff ثلاثة",
    "many short sentences": "قتل. " * 500,
}


@pytest.mark.parametrize("name", list(ODD_TEXTS))
def test_extract_odd_texts(extractor, name):
    text = ODD_TEXTS[name]
    [rec] = extractor.extract(text)
    check_record(rec, text)


def test_extract_non_strings_get_error_records_in_place(extractor):
    recs = extractor.extract([None, 5, ["x"], GOOD, {"text": GOOD}])
    assert [r["text"] for r in recs] == [None, None, None, GOOD, None]
    assert [("error" in r) for r in recs] == [True, True, True, False, True]
    assert recs[1]["error"] == "text must be a string, got int"
    check_record(recs[3], GOOD)


def test_one_megabyte_article(cli, trained_model, tmp_path):
    """A whole PDF dump in one file: 1 MB, lines of 100,000+ characters, half of it long
    alphanumeric blobs. One record, valid offsets."""
    import random

    rng = random.Random(0)
    article = SEED_TXT.read_text(encoding="utf-8")
    one_line = article.replace("\n", " ")
    parts, size = [], 0
    while size < 1_000_000:
        if len(parts) % 2:
            part = " ".join("".join(rng.choices("0123456789abcdef", k=20_000)) for _ in range(5))
        else:
            part = one_line * 10 if len(parts) % 4 else article
        parts.append(part)
        size += len(part.encode("utf-8")) + 1
    text = "\n".join(parts)
    src = tmp_path / "dump.txt"
    src.write_text(text, encoding="utf-8")
    assert src.stat().st_size >= 1_000_000
    code, out, err = cli("predict", "-m", trained_model, src, "-q")
    assert code == 0, err
    [line] = out.splitlines()
    rec = json.loads(line)
    check_record(rec, text)
    assert len(rec["entities"]) > 100


LIMITED_EXTRACT = """
import re, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, resource.RLIM_INFINITY))  # 8 GB of address space
from marsad.model import Extractor
ex = Extractor.from_pretrained(sys.argv[1], device="cpu", precision="fp32")
text = open(sys.argv[2], encoding="utf-8").read()
[rec] = ex.extract(text)
print(len(rec["entities"]), len(rec["relations"]))
"""


def test_long_unpunctuated_line_fits_in_memory(trained_model, tmp_path):
    """A scraped page with no full stops is one sentence of thousands of words (run in a process
    limited to 8 GB, so that the failure cannot take the machine's memory)."""
    import re

    pytest.importorskip("resource")
    flat = re.sub(r"[.!?؟…\n]", " ", SEED_TXT.read_text(encoding="utf-8"))
    src = tmp_path / "flat.txt"
    src.write_text((flat + " ") * 4, encoding="utf-8")  # ~22,000 characters, one sentence
    proc = subprocess.run([sys.executable, "-c", LIMITED_EXTRACT, str(trained_model), str(src)],
                          capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- decorated Arabic -------------------------------------------------------------------------
def _presentation_forms() -> dict[str, str]:
    """A base letter -> one of its presentation forms (U+FE70..U+FEFF)."""
    forms = {}
    for cp in range(0xFE70, 0xFEFF):
        base = unicodedata.normalize("NFKC", chr(cp))
        if len(base) == 1 and "\u0621" <= base <= "\u064a":
            forms.setdefault(base, chr(cp))
    return forms


def decorate(text: str) -> str:
    """Diacritics on every letter, tatweel inside words, presentation forms for some letters."""
    forms = _presentation_forms()
    marks = ["\u064e", "\u064f", "\u0650", "\u0651\u064e", "\u0652", "\u064b", "\u0670"]
    out = []
    for i, ch in enumerate(text):
        if "\u0621" <= ch <= "\u064a":
            out.append(forms.get(ch, ch) if i % 3 == 0 else ch)
            out.append(marks[i % len(marks)])
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if i % 4 == 1 and "\u0621" <= nxt <= "\u064a":
                out.append("\u0640" * (1 + i % 3))
        else:
            out.append(ch)
    return "".join(out)


def test_decorated_arabic_gives_the_same_entities(extractor):
    plain = SEED_TXT.read_text(encoding="utf-8")
    fancy = decorate(plain)
    assert len(fancy) > len(plain) * 1.5
    pt, ft = tokenize(plain), tokenize(fancy)
    assert len(pt) == len(ft)
    assert [normalize_word(t.text) for t in ft] == [normalize_word(t.text) for t in pt]
    p, f = extractor.extract([plain, fancy])
    check_record(f, fancy)

    def by_token(rec, tokens):
        start = {t.start: i for i, t in enumerate(tokens)}
        end = {t.end: i for i, t in enumerate(tokens)}
        return [(start[e["start"]], end[e["end"]], e["label"], e.get("count"), e.get("status")) for e in rec["entities"]]

    assert p["entities"], "the overfit model finds entities in the seed article"
    assert by_token(f, ft) == by_token(p, pt)
    assert [(r["head"], r["tail"], r["label"]) for r in f["relations"]] == [(r["head"], r["tail"], r["label"]) for r in p["relations"]]
    for e in f["entities"]:  # offsets into the decorated original
        assert fancy[e["start"]:e["end"]] == e["text"]
        if any("\u0621" <= c <= "\u064a" for c in e["text"]):
            assert any("\u064b" <= c <= "\u0652" or c == "\u0670" for c in e["text"])


# =============================================================================================
# 2. Config and model errors
# =============================================================================================
def _yaml_config(tmp: Path, **overrides) -> Path:
    config = tiny_config(tmp, overfit_records()[:4], **overrides)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config), allow_unicode=True), encoding="utf-8")
    return path


def _edit_yaml(path: Path, edit) -> Path:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, extra, want", [
    (lambda d: d.__setitem__("sed", d.pop("seed")), [], "unknown config key 'sed'; did you mean 'seed'?"),
    (lambda d: d["train"].__setitem__("epochz", 3), [], "unknown config key 'train.epochz'; did you mean 'train.epochs'?"),
    (lambda d: d["model"]["scratch"].__setitem__("vocab_sise", 9), [],
     "unknown config key 'model.scratch.vocab_sise'; did you mean 'model.scratch.vocab_size'?"),
    (None, ["train.lerning_rate=0.1"], "unknown config key 'train.lerning_rate'"),
    (None, ["train.epoch=3"], "did you mean 'train.epochs'?"),
    (lambda d: d["train"].__setitem__("epochs", "many"), [], "'train.epochs' must be an integer, got 'many'"),
    (lambda d: d["train"].__setitem__("lr", [1]), [], "'train.lr' must be a number, got [1]"),
    (lambda d: d.__setitem__("model", 5), [], "'model' must be a mapping of keys to values, got int"),
    (None, ["train.batch_size=0"], "train.batch_size must be at least 1, got 0"),
    (None, ["train.epochs"], "must look like key=value"),
    (lambda d: d["data"].__setitem__("train", ["/no/such/train.jsonl"]), [], "data.train names /no/such/train.jsonl, which does not exist"),
], ids=["misspelled top key", "misspelled key", "misspelled nested key", "unknown override", "misspelled override",
        "string for int", "list for float", "section not a mapping", "out of range", "override without =", "missing data file"])
def test_config_errors(cli, tmp_path, edit, extra, want):
    path = _yaml_config(tmp_path)
    if edit:
        _edit_yaml(path, edit)
    out = tmp_path / "run"
    # overrides both before and after the options
    code, _, err = cli("train", path, *extra, "-o", out)
    assert code == 1
    line = one_line_error(err, "train")
    assert want in line
    if edit:  # a problem in the file names the file
        assert str(path.name) in line
    if extra and "=" in extra[0]:
        code, _, err2 = cli("train", path, "-o", out, *extra)
        assert code == 1 and want in one_line_error(err2, "train")
    assert not (out / "checkpoint").exists()


def test_config_file_missing_or_not_yaml(cli, tmp_path):
    code, _, err = cli("train", tmp_path / "nope.yaml")
    assert code == 1 and "no such config file" in one_line_error(err, "train")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [1, 2\n", encoding="utf-8")
    code, _, err = cli("train", bad)
    assert code == 1 and f"{bad}:3: not valid YAML" in one_line_error(err, "train")
    bad.write_bytes(b"train:\n  epochs: \xff\n")
    code, _, err = cli("train", bad)
    assert code == 1 and "not UTF-8" in one_line_error(err, "train")


def test_training_data_with_wrong_labels(cli, tmp_path):
    path = _yaml_config(tmp_path)
    recs = overfit_records()[:4]
    recs[2]["entities"][0]["label"] = "PLACE"
    write_jsonl(recs, tmp_path / "train.jsonl")
    code, _, err = cli("train", path, "-o", tmp_path / "run")
    assert code == 1
    assert err.startswith("marsad train: error: ") and "problem(s) in the data; fix them" in err.splitlines()[0]
    assert f"{tmp_path / 'train.jsonl'}:3 [{recs[2]['id']}]: entity 0: label 'PLACE' is not one of ACTOR, LOCATION, CASUALTY" in err


def test_evaluate_data_with_labels_the_model_does_not_know(cli, tmp_path, trained_model):
    recs = read_jsonl(SEED_JSONL)[:2]
    recs[1]["entities"][0]["label"] = "WEAPON"
    write_jsonl(recs, tmp_path / "gold.jsonl")
    code, _, err = cli("evaluate", "-m", trained_model, tmp_path / "gold.jsonl")
    assert code == 1
    assert f"{tmp_path / 'gold.jsonl'}:2: label WEAPON is not one the model knows (ACTOR, LOCATION, CASUALTY)" in err


# --- broken model folders ----------------------------------------------------------------------
def _config_edit(fn):
    def edit(d: Path):
        c = json.loads((d / "config.json").read_text(encoding="utf-8"))
        fn(c)
        (d / "config.json").write_text(json.dumps(c), encoding="utf-8")
    return edit


def _drop_weights(prefix):
    def edit(d: Path):
        from safetensors.torch import load_file, save_file

        state = load_file(str(d / "model.safetensors"))
        save_file({k: v for k, v in state.items() if not k.startswith(prefix)}, str(d / "model.safetensors"))
    return edit


def _truncate(n):
    def edit(d: Path):
        p = d / "model.safetensors"
        p.write_bytes(p.read_bytes()[:n])
    return edit


MODEL_BREAKERS = {
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing; the folder is incomplete"),
    "no config": (lambda d: (d / "config.json").unlink(), "config.json is missing; the folder is incomplete"),
    "newer marsad": (_config_edit(lambda c: c["marsad"].__setitem__("format_version", 99)),
                     "saved by a newer marsad (format 99, this one reads 1); upgrade marsad"),
    "plain encoder": (_config_edit(lambda c: c.pop("marsad")), "no 'marsad' block: it is a plain encoder"),
    "unknown setting": (_config_edit(lambda c: c["marsad"].__setitem__("future_knob", 1)), "unknown keys in the config's 'marsad' block"),
    "other labels": (_config_edit(lambda c: c.__setitem__("id2label", {"0": "O", "1": "B-WEAPON"})), "does not match the entity labels"),
    "config not json": (lambda d: (d / "config.json").write_text("{not json", encoding="utf-8"), "config.json cannot be read as a model config"),
    "config not utf-8": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe{}"), "config.json cannot be read as a model config"),
    "unknown architecture": (_config_edit(lambda c: c.__setitem__("model_type", "no-such-model")), "config.json cannot be read as a model config"),
    "other shapes": (_config_edit(lambda c: c.__setitem__("hidden_size", 128)), "weights do not fit the config"),
    "weights truncated": (_truncate(2000), "model.safetensors is corrupted or not a safetensors file"),
    "weights empty": (_truncate(0), "model.safetensors is corrupted or not a safetensors file"),
    "weights random": (lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096)), "model.safetensors is corrupted"),
    "weights missing": (_drop_weights("classifier."), "weights missing from model.safetensors for classifier"),
    "tokenizer broken": (lambda d: (d / "tokenizer.json").write_text("garbage", encoding="utf-8"), "tokenizer files are missing or broken"),
}


@pytest.mark.parametrize("name", list(MODEL_BREAKERS))
def test_broken_model_folder(cli, model_copy, name):
    breaker, want = MODEL_BREAKERS[name]
    breaker(model_copy)
    with pytest.raises(ModelLoadError, match=str(model_copy)) as exc:
        Extractor.from_pretrained(model_copy, device="cpu")
    assert want in str(exc.value)
    code, out, err = cli("predict", "-m", model_copy, SEED_TXT)
    assert code == 1 and out == ""
    line = one_line_error(err, "predict")
    assert want in line and str(model_copy) in line


def test_model_folder_missing(cli, tmp_path):
    code, _, err = cli("predict", "-m", tmp_path / "nope", SEED_TXT)
    assert code == 1
    assert "no such model folder; train one with `marsad train" in one_line_error(err, "predict")
    code, _, err = cli("evaluate", "-m", SEED_TXT, SEED_JSONL)  # a file, not a folder
    assert code == 1 and "no such model folder" in one_line_error(err, "evaluate")


def test_model_folder_without_tokenizer_files(model_copy):
    (model_copy / "tokenizer.json").unlink()
    (model_copy / "tokenizer_config.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        Extractor.from_pretrained(model_copy, device="cpu")


def test_model_with_nan_weights_is_refused(model_copy):
    from safetensors.torch import load_file, save_file

    state = load_file(str(model_copy / "model.safetensors"))
    state["relation_head.type_emb.weight"][:] = float("nan")
    save_file(state, str(model_copy / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="corrupted|finite|NaN"):
        MarsadModel.from_pretrained(model_copy)


def test_device_or_precision_this_machine_lacks(cli, trained_model):
    import torch

    code, _, err = cli("predict", "-m", trained_model, SEED_TXT, "--device", "cpu", "--precision", "fp16")
    assert code == 2 and "precision fp16 needs a CUDA GPU; on CPU use bf16" in one_line_error(err, "predict")
    if not torch.cuda.is_available():
        code, _, err = cli("evaluate", "-m", trained_model, SEED_JSONL, "--device", "cuda")
        assert code == 2 and "no CUDA GPU is available; use --device cpu" in one_line_error(err, "evaluate")


def test_debug_shows_the_traceback(cli, tmp_path):
    with pytest.raises(ModelLoadError):
        main(["--debug", "predict", "-m", str(tmp_path / "nope"), str(SEED_TXT)])


def test_real_process_prints_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xd9\x82\xff")
    proc = subprocess.run([sys.executable, "-m", "marsad.training.cli", "predict", "-m", str(tmp_path), str(bad)],
                          capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == f"marsad predict: error: {bad}:1: invalid UTF-8 at byte 2 (column 3); re-save the file as UTF-8"


# =============================================================================================
# 3. Interruption
# =============================================================================================
def _wait_for(predicate, proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended first (exit {proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.01)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def test_training_killed_resumes_from_last_checkpoint(cli, tmp_path):
    recs = overfit_records()
    config = tiny_config(tmp_path, recs * 4, dev=recs[:4], train__epochs=3)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config), allow_unicode=True), encoding="utf-8")
    out = tmp_path / "run"
    log = tmp_path / "train.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "marsad.training.cli", "train", str(path), "-o", str(out)],
                                stdout=f, stderr=subprocess.STDOUT, env=SUBPROCESS_ENV)
        try:
            _wait_for(lambda: (out / "checkpoint" / "COMPLETE").exists(), proc, log)
        finally:
            _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    # the last complete checkpoint (``checkpoint.old`` only if the kill fell inside a swap)
    ckpt = next(d for d in (out / "checkpoint", out / "checkpoint.old") if (d / "COMPLETE").is_file())
    state = json.loads((ckpt / "trainer_state.json").read_text())["state"]
    assert 1 <= state["epoch"] < 3, "killed before the end"
    assert not (out / "metrics.json").exists() and not (out / "model.safetensors").exists()
    assert_no_pickles(ckpt)
    # without --resume the folder is not overwritten
    code, _, err = cli("train", path, "-o", out)
    assert code == 1 and "use --resume to continue it" in one_line_error(err, "train")
    code, stdout, err = cli("train", path, "-o", out, "--resume")
    assert code == 0, err
    assert f"resuming from {ckpt}" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]  # each epoch logged once, also when the kill fell after a log line
    assert_no_pickles(out)
    [rec] = Extractor.from_pretrained(out, device="cpu").extract(GOOD)
    check_record(rec, GOOD)


class Killed(BaseException):
    """Stands for SIGKILL arriving in the middle of a save."""


def test_interrupted_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    import marsad.training.trainer as trainer

    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=3)
    out = tmp_path / "run"
    real = trainer._save_checkpoint
    saves = []

    def dies_in_second_save(*args):
        d = args[-1]  # (..., state, folder)
        saves.append(d)
        real(*args)
        if len(saves) == 2:  # leave half a checkpoint on disk, then the kill
            (d / "trainer_state.json").unlink()
            (d / "optimizer.safetensors").write_bytes(b"\x00" * 100)
            raise Killed

    monkeypatch.setattr(trainer, "_save_checkpoint", dies_in_second_save)
    with pytest.raises(Killed):
        trainer.train(config, out, log=QUIET)
    monkeypatch.undo()
    assert (out / "checkpoint" / "COMPLETE").is_file()
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["state"]["epoch"] == 1
    assert (out / "checkpoint.tmp").is_dir() and not (out / "checkpoint.tmp" / "COMPLETE").exists()
    MarsadModel.from_pretrained(out / "checkpoint" / "model")  # the previous checkpoint is intact
    logs = []
    result = trainer.train(config, out, resume=True, log=lambda *a, **k: logs.append(" ".join(map(str, a))))
    assert f"resuming from {out / 'checkpoint'}" in logs
    assert result["epochs"] == 3
    assert not (out / "checkpoint.tmp").exists()
    Extractor.from_pretrained(out, device="cpu")


def test_kill_between_the_swap_renames_resumes_from_old(tmp_path):
    """Killed after ``checkpoint`` became ``checkpoint.old`` and before the new one was moved in:
    the last complete checkpoint is ``checkpoint.old``. Pickle files planted in it are never read."""
    from marsad.training.trainer import train

    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=2)
    out = tmp_path / "run"
    assert train(config, out, log=QUIET, stop_after_epochs=1) == {"stopped_after_epoch": 1}
    (out / "checkpoint").rename(out / "checkpoint.old")
    partial = out / "checkpoint.tmp"
    shutil.copytree(out / "checkpoint.old" / "model", partial / "model")
    (partial / "trainer_state.json").write_text('{"state": {"epo', encoding="utf-8")
    marker = tmp_path / "UNPICKLED"
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        (out / "checkpoint.old" / name).write_bytes(_evil_pickle(marker))
    logs = []
    result = train(config, out, resume=True, log=lambda *a, **k: logs.append(" ".join(map(str, a))))
    assert f"resuming from {out / 'checkpoint.old'}" in logs
    assert result["epochs"] == 2
    assert (out / "checkpoint" / "COMPLETE").is_file() and not (out / "checkpoint.old").exists()
    assert not marker.exists()
    Extractor.from_pretrained(out, device="cpu")


def test_resume_without_a_complete_checkpoint(cli, tmp_path):
    path = _yaml_config(tmp_path)
    out = tmp_path / "run"
    (out / "checkpoint.tmp").mkdir(parents=True)  # the first save was killed
    code, _, err = cli("train", path, "-o", out, "--resume")
    assert code == 1 and "no checkpoint to resume from; run without --resume" in one_line_error(err, "train")


def _predict_input(path: Path, n: int) -> list:
    """``n`` records of one seed sentence each (some bad); return the ids the output must hold, in order."""
    sents = [r["text"] for r in read_jsonl(SEED_JSONL)]
    lines, ids = [], []
    for i in range(n):
        rid = f"r{i:04d}"
        text = sents[i % len(sents)]
        if i % 97 == 5:
            lines.append(json.dumps({"id": rid, "text": i}))
        elif i % 97 == 50:
            lines.append('{"id": "%s", "text": "broken' % rid)
            rid = f"{path}:{i + 1}"
        else:
            lines.append(json.dumps({"id": rid, "text": text}, ensure_ascii=False))
        ids.append(rid)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def test_predict_killed_midway_resumes_each_record_once(cli, trained_model, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = _predict_input(src, 1100)  # results stream out a chunk (512 records) at a time: three chunks
    log = tmp_path / "predict.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "marsad.training.cli", "predict", "-m", str(trained_model),
                                 str(src), "-o", str(out), "-q", "--device", "cpu"],
                                stdout=f, stderr=subprocess.STDOUT, env=SUBPROCESS_ENV)
        try:
            _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 1, proc, log)
        finally:
            _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    done = out.read_bytes()
    done = done[: done.rfind(b"\n") + 1]
    n_done = done.count(b"\n")
    assert 0 < n_done < len(ids), "killed midway"
    with open(out, "ab") as f:  # a torn last line, as a kill inside a write leaves
        f.write('{"id": "r9999", "text": "قتل ثلا'.encode("utf-8"))
    code, _, err = cli("predict", "-m", trained_model, src, "-o", out, "-q", "--resume")
    assert code == 1 and "failed" in err  # the bad records
    assert f"resuming: {n_done} of {len(ids)} records already in {out}" in err
    rows = [json.loads(line) for line in lines_of(out)]
    assert [r["id"] for r in rows] == ids  # each record exactly once, in input order
    assert out.read_bytes().startswith(done)  # finished work is kept as it was
    assert [k for k, r in enumerate(rows) if r.get("error")] == [k for k in range(len(ids)) if k % 97 in (5, 50)]


@pytest.mark.parametrize("fmt", ["jsonl", "events"])
def test_predict_resume_equals_uninterrupted(cli, trained_model, tmp_path, fmt):
    src = tmp_path / "in.jsonl"
    _predict_input(src, 12)
    full, part = tmp_path / "full.out", tmp_path / "part.out"
    code, _, _ = cli("predict", "-m", trained_model, src, "-o", full, "-f", fmt, "-q")
    assert code == 1  # one bad record
    lines = [line + "\n" for line in lines_of(full)]
    cut = len(lines) // 2
    part.write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2], encoding="utf-8")
    code, _, err = cli("predict", "-m", trained_model, src, "-o", part, "-f", fmt, "-q", "--resume")
    assert code == 1 and "resuming:" in err

    def key(line):
        row = json.loads(line)
        return (row.get("id", row.get("record_id")), row.get("event"), row.get("text", row.get("sentence")), row.get("error"))

    assert [key(x) for x in lines_of(part)] == [key(x) for x in lines]
    # resuming a finished run adds nothing (events redo their last record, which may have been cut)
    code, _, err = cli("predict", "-m", trained_model, src, "-o", part, "-f", fmt, "-q", "--resume")
    assert [key(x) for x in lines_of(part)] == [key(x) for x in lines]
    assert f"resuming: {12 if fmt == 'jsonl' else 11} of 12" in err


def test_predict_resume_refuses_another_runs_output(cli, trained_model, tmp_path):
    src = tmp_path / "in.jsonl"
    _predict_input(src, 3)
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "x", "text": "t", "entities": [], "relations": []}\n{"id": "y", "te', encoding="utf-8")
    before = other.read_bytes()
    for fmt in ("jsonl", "events"):
        code, _, err = cli("predict", "-m", trained_model, src, "-o", other, "-f", fmt, "-q", "--resume")
        assert code == 1 and "it is another run's output" in one_line_error(err, "predict")
        assert other.read_bytes() == before  # left exactly as it was
    notes = tmp_path / "notes.jsonl"
    notes.write_text("my notes, not predictions\n", encoding="utf-8")
    code, _, err = cli("predict", "-m", trained_model, src, "-o", notes, "-q", "--resume")
    assert code == 1 and f"{notes}:1: not a line marsad predict writes" in one_line_error(err, "predict")
    assert notes.read_text(encoding="utf-8") == "my notes, not predictions\n"
    code, _, err = cli("predict", "-m", trained_model, src, "--resume")
    assert code == 2 and "--resume needs -o OUT" in one_line_error(err, "predict")


# =============================================================================================
# 4. Untrusted artifacts
# =============================================================================================
def _evil_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when loaded."""

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    return pickle.dumps({"bert.embeddings.word_embeddings.weight": Evil()})


def test_pickle_weights_are_never_loaded(cli, model_copy, tmp_path):
    marker = tmp_path / "UNPICKLED"
    (model_copy / "model.safetensors").unlink()
    (model_copy / "pytorch_model.bin").write_bytes(_evil_pickle(marker))
    with pytest.raises(ModelLoadError, match="only safetensors weights are read, never pickle files"):
        Extractor.from_pretrained(model_copy, device="cpu")
    code, _, err = cli("predict", "-m", model_copy, SEED_TXT)
    assert code == 1 and "never pickle files" in one_line_error(err, "predict")
    assert not marker.exists()


def test_pickle_beside_safetensors_is_ignored(model_copy, tmp_path):
    marker = tmp_path / "UNPICKLED"
    for name in ("pytorch_model.bin", "model.pt", "training_args.bin", "model.ckpt"):
        (model_copy / name).write_bytes(_evil_pickle(marker))
    [rec] = Extractor.from_pretrained(model_copy, device="cpu").extract(GOOD)
    check_record(rec, GOOD)
    assert not marker.exists()


EVIL_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast
class EvilConfig(BertConfig):
    model_type = "evil"
class EvilModel(BertModel):
    config_class = EvilConfig
class EvilTokenizer(PreTrainedTokenizerFast):
    pass
"""


def _plant_remote_code(folder: Path, marker: Path, model_type: str | None = None) -> None:
    (folder / "evil.py").write_text(EVIL_MODULE.format(marker=str(marker)), encoding="utf-8")
    c = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    c["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel",
                     "AutoModelForTokenClassification": "evil.EvilModel", "AutoTokenizer": [None, "evil.EvilTokenizer"]}
    if model_type:
        c["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(c), encoding="utf-8")
    t = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    t["auto_map"] = {"AutoTokenizer": [None, "evil.EvilTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(t), encoding="utf-8")


def test_model_folder_code_is_never_run(cli, model_copy, tmp_path, monkeypatch):
    import transformers

    marker = tmp_path / "CODE_RAN"
    _plant_remote_code(model_copy, marker)
    monkeypatch.setattr("builtins.input", lambda *a: "y")  # even a "yes" to a prompt changes nothing
    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModel):
        orig = cls.from_pretrained

        def spy(*args, _orig=orig, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _orig(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    # a bert model with an auto_map: the custom classes are ignored
    [rec] = Extractor.from_pretrained(model_copy, device="cpu").extract(GOOD)
    check_record(rec, GOOD)
    assert seen and all(flag is False for flag in seen), seen
    # a model type only the folder's code knows: a clear error instead
    _plant_remote_code(model_copy, marker, model_type="evil")
    code, _, err = cli("predict", "-m", model_copy, SEED_TXT)
    assert code == 1 and "custom code" in one_line_error(err, "predict")
    assert not marker.exists()


def test_yaml_config_cannot_run_code(cli, tmp_path):
    marker = tmp_path / "YAML_RAN"
    bad = tmp_path / "evil.yaml"
    bad.write_text(f'seed: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8")
    code, _, err = cli("train", bad)
    assert code == 1 and "not valid YAML" in one_line_error(err, "train")
    assert not marker.exists()


def _encoder_folder(tmp: Path, trained_model: Path) -> Path:
    from transformers import BertConfig, BertModel

    enc = tmp / "encoder"
    BertModel(BertConfig(vocab_size=800, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(str(enc))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(trained_model / name, enc / name)
    return enc


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's weights-only unpickler refusing it
def test_training_encoder_with_pickle_weights_runs_no_code(tmp_path, trained_model):
    from marsad.training.trainer import train

    enc = _encoder_folder(tmp_path, trained_model)
    marker = tmp_path / "UNPICKLED"
    (enc / "model.safetensors").unlink()
    (enc / "pytorch_model.bin").write_bytes(_evil_pickle(marker))
    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=1, model__encoder=str(enc))
    with pytest.raises(Exception):
        train(config, tmp_path / "run", log=QUIET)
    assert not marker.exists()


def test_training_encoder_with_pickle_weights_is_refused_clearly(cli, tmp_path, trained_model):
    enc = _encoder_folder(tmp_path, trained_model)
    (enc / "model.safetensors").unlink()
    (enc / "pytorch_model.bin").write_bytes(_evil_pickle(tmp_path / "UNPICKLED"))
    path = _yaml_config(tmp_path, train__epochs=1, model__encoder=str(enc))
    code, _, err = cli("train", path, "-o", tmp_path / "run")
    assert code == 1 and "safetensors" in one_line_error(err, "train")


def test_training_encoder_code_is_never_offered(tmp_path, trained_model, monkeypatch):
    from marsad.training.trainer import train

    enc = _encoder_folder(tmp_path, trained_model)
    marker = tmp_path / "CODE_RAN"
    _plant_remote_code(enc, marker, model_type="evil")
    prompts = []
    monkeypatch.setattr("builtins.input", lambda *a: prompts.append(a) or "n")  # answer no: nothing runs here
    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=1, model__encoder=str(enc))
    with pytest.raises(Exception):
        train(config, tmp_path / "run", log=QUIET)
    assert not marker.exists()
    assert prompts == [], "the user was asked whether to run the folder's code"


# =============================================================================================
# 5. Fuzzing
# =============================================================================================
ARABIC = st.characters(min_codepoint=0x0600, max_codepoint=0x06FF)
PRESENTATION = st.characters(min_codepoint=0xFB50, max_codepoint=0xFEFF)
SEPARATORS = st.sampled_from(list(" \n\t\r\x0b\x0c\x1c\x1d\x85\xa0\u2028\u2029\u200b\u200e\u200f\u202b\u202c\u2066\u2069"
                                  "\ufeff\x00\x01\u0640.!?؟…،\"'»)") + ["\u064e", "\u0651"])
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ANY = st.characters()  # every code point hypothesis offers (all planes, marks, controls)
TEXTS = st.text(st.one_of(ARABIC, ARABIC, PRESENTATION, SEPARATORS, SEPARATORS, SURROGATES, ANY), max_size=120)
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(TEXTS)
def test_fuzz_tokenize(text):
    tokens = tokenize(text)
    pos = 0
    for t in tokens:
        assert pos <= t.start < t.end <= len(text)
        assert text[t.start:t.end] == t.text
        assert not any(c.isspace() for c in t.text), t
        # whatever lies between tokens is space: nothing is silently dropped
        assert all(c.isspace() for c in text[pos:t.start]), text[pos:t.start]
        pos = t.end
    assert all(c.isspace() for c in text[pos:])


@FUZZ
@given(TEXTS)
def test_fuzz_normalise(text):
    for t in tokenize(text):
        w = normalize_word(t.text)
        assert isinstance(w, str)
        w.encode("utf-8")  # the sub-word tokenizer gets encodable text
        assert "\u0640" not in w and not any("\u064b" <= c <= "\u0652" for c in w)
        assert normalize_word(w) == w  # idempotent
    n = normalize_text(text)
    n.encode("utf-8")
    assert "  " not in n and n == n.strip()


@FUZZ
@given(TEXTS)
def test_fuzz_sentences_keep_tokens_whole(text):
    spans = split_sentences(text)
    pos = 0
    for s, e in spans:
        assert pos <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip()
        pos = e
    for t in tokenize(text):
        # no token straddles a sentence edge, so per-sentence offsets are offsets into the text
        assert not any(t.start < s < t.end or t.start < e < t.end for s, e in spans), t
    for s, e in spans:
        inner = [(t.start - s, t.end - s, t.text) for t in tokenize(text) if s <= t.start and t.end <= e]
        assert [(t.start, t.end, t.text) for t in tokenize(text[s:e])] == inner


@FUZZ
@given(st.data())
def test_fuzz_bio_round_trip(data):
    text = data.draw(TEXTS)
    tokens = tokenize(text)
    n = len(tokens)
    cuts = sorted(data.draw(st.sets(st.integers(0, n), max_size=8))) if n else []
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        if b > a and data.draw(st.booleans()):
            label = data.draw(st.sampled_from(["ACTOR", "LOCATION", "CASUALTY"]))
            spans.append((tokens[a].start, tokens[b - 1].end, label))
    tags = spans_to_tags(tokens, spans)
    assert len(tags) == n and iob2_errors(tags) == []
    assert tags_to_spans(tokens, tags) == sorted(spans)
    # any tag soup, once repaired, is valid IOB2 whose spans sit on token boundaries
    soup = data.draw(st.lists(st.sampled_from(["O", "B-ACTOR", "I-ACTOR", "I-LOCATION", "B-CASUALTY", "I-CASUALTY"]),
                              min_size=n, max_size=n))
    fixed = repair_iob2(soup)
    assert iob2_errors(fixed) == []
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    for s, e, _ in tags_to_spans(tokens, fixed):
        assert s in starts and e in ends


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(TEXTS, min_size=1, max_size=3))
def test_fuzz_extract(extractor, texts):
    recs = extractor.extract(texts)
    assert len(recs) == len(texts)
    for rec, text in zip(recs, texts):
        check_record(rec, text)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=40), TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")),
                          st.builds(lambda t, i: json.dumps({"id": i, "text": t}).encode(), TEXTS, st.integers())),
                max_size=6))
def test_fuzz_predict_reader_one_item_per_line(lines):
    raw = b"\n".join(line.replace(b"\n", b" ") for line in lines)
    items = list(_jsonl_items("in.jsonl", raw))

    def blank(b):
        try:
            return not b.decode("utf-8").strip()
        except UnicodeDecodeError:
            return False

    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    expected = [i + 1 for i, b in enumerate(body.split(b"\n")) if not blank(b)]
    assert len(items) == len(expected)
    for (rid, value), lineno in zip(items, expected):
        if isinstance(value, dict):
            assert value["error"].startswith(f"in.jsonl:{lineno}: ")
        else:
            assert isinstance(value, str) and value.strip()


ATOMS = (st.none() | st.booleans() | st.integers(-2, 12) | st.floats(allow_nan=False) | TEXTS
         | st.sampled_from(["ACTOR", "LOCATION", "CASUALTY", "ATTACKS", "CONTROLS", "CASUALTY_IN"]))
JSON_VALUES = st.recursive(ATOMS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
                           max_leaves=8)
ENTITY = st.one_of(JSON_VALUES, st.fixed_dictionaries(
    {}, optional={"start": JSON_VALUES, "end": JSON_VALUES, "label": JSON_VALUES, "text": JSON_VALUES}))
RELATION = st.one_of(JSON_VALUES, st.fixed_dictionaries({}, optional={"head": JSON_VALUES, "tail": JSON_VALUES,
                                                                      "label": JSON_VALUES}))
RECORDS = st.fixed_dictionaries({}, optional={
    "id": JSON_VALUES, "text": st.one_of(TEXTS, JSON_VALUES),
    "entities": st.one_of(JSON_VALUES, st.lists(ENTITY, max_size=4)),
    "relations": st.one_of(JSON_VALUES, st.lists(RELATION, max_size=4)),
})


@FUZZ
@given(RECORDS)
def test_fuzz_validate_record_never_crashes(record):
    problems = validate_record(record, "f.jsonl:1")
    assert all(str(p).startswith("f.jsonl:1") for p in problems)


def test_validate_record_odd_shapes():
    """Found by the fuzzer: an unhashable relation label; a relation over a non-object entity."""
    rec = {"text": "ab", "entities": [5, 6], "relations": [{"head": 0, "tail": 1, "label": ["ATTACKS"]},
                                                           {"head": 0, "tail": 1, "label": "ATTACKS"}]}
    problems = [p.message for p in validate_record(rec)]
    assert "relation 0: label ['ATTACKS'] is not one of" in problems[2]
    assert problems[3] == "relation 1 ATTACKS: needs ACTOR -> LOCATION, got None -> None"


def test_resume_drops_log_lines_of_epochs_it_will_run_again(tmp_path):
    from marsad.training.trainer import _trim_metrics

    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)), encoding="utf-8")
    _trim_metrics(log, 2)  # the checkpoint holds epoch 2; epoch 3 was logged, then the kill came
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [1, 2]
    _trim_metrics(tmp_path / "absent.jsonl", 2)
