"""Bad input: junk data files, bad records in place, odd and huge texts, decorated Arabic.

Analysts feed marsad whatever their scrapers bring back. None of it may crash a run (a one-line
error, never a traceback) or lose the good records around it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from conftest import (
    GOOD, SEED_JSONL, SEED_TXT, check_record, lines_of, one_line_error, read_jsonl, write_jsonl,
)
from marsad.model.text import normalize_word, tokenize

SUBPROCESS_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                  "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_predict_blank_txt_is_a_record_without_entities(cli, trained_model, tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text(" \n\t\n", encoding="utf-8")
    code, out, err = cli("predict", "-m", trained_model, p, SEED_TXT, "-q")
    assert code == 0, err
    first, second = [json.loads(line) for line in out.splitlines()]
    assert first == {"id": "empty", "text": " \n\t\n", "entities": [], "relations": []}
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
def _mixed_jsonl(path: Path) -> list[tuple[object, str | None]]:
    """Write a JSONL file of good and bad lines; return ``(expected id, error fragment or None)``."""
    lines = [
        (json.dumps({"id": "good-1", "text": GOOD}, ensure_ascii=False), "good-1", None),
        ('{"id": "torn", "text": "قتل ثلا', f"{path}:2", "not valid JSON"),
        (json.dumps({"id": "no-text", "body": GOOD}, ensure_ascii=False), "no-text", 'has no "text" field'),
        (json.dumps({"id": "int-text", "text": 5}), "int-text", '"text" must be a string, got int'),
        (json.dumps({"id": "null-text", "text": None}), "null-text", '"text" must be a string, got NoneType'),
        (json.dumps({"id": "list-text", "text": [GOOD]}, ensure_ascii=False), "list-text", "got list"),
        (json.dumps({"id": "empty-text", "text": ""}), "empty-text", None),
        (json.dumps({"id": "space-text", "text": " \n\t"}), "space-text", None),
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
