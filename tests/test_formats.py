"""JSONL / CoNLL reading and writing, validation with precise errors, bracket markup."""

import json

import pytest

from marsad.training.formats import (
    DataError, read_conll, read_jsonl, read_text, validate_file, validate_record, write_conll, write_jsonl,
)
from marsad.training.markup import parse_markup, parse_markup_line, to_markup

TEXT = "قصفت قوات النظام بلدة تلبيسة، وقتل 3 مدنيين."
GOOD = {"id": "r1", "text": TEXT,
        "entities": [{"start": 5, "end": 16, "label": "ACTOR"}, {"start": 22, "end": 28, "label": "LOCATION"},
                     {"start": 35, "end": 43, "label": "CASUALTY"}],
        "relations": [{"head": 0, "tail": 1, "label": "ATTACKS"}, {"head": 2, "tail": 1, "label": "CASUALTY_IN"},
                      {"head": 2, "tail": 0, "label": "CAUSED_BY"}]}


def messages(record):
    return [p.message for p in validate_record(record, "f.jsonl:3")]


def test_valid_record_has_no_problems():
    assert messages(GOOD) == []


def with_(**kw):
    return {**GOOD, **kw}


@pytest.mark.parametrize("record, expected", [
    (with_(entities=[{"start": 6, "end": 16, "label": "ACTOR"}], relations=[]), "not on a token boundary"),
    (with_(entities=[{"start": 5, "end": 99, "label": "ACTOR"}], relations=[]), "out of range"),
    (with_(entities=[{"start": 5, "end": 16, "label": "ACTOR"}, {"start": 10, "end": 16, "label": "ACTOR"}], relations=[]), "overlap"),
    (with_(entities=[{"start": 5, "end": 16, "label": "PERSON"}], relations=[]), "label 'PERSON' is not one of"),
    (with_(entities=[{"start": "5", "end": 16, "label": "ACTOR"}], relations=[]), "must be integers"),
    (with_(relations=[{"head": 1, "tail": 0, "label": "ATTACKS"}]), "needs ACTOR -> LOCATION, got LOCATION -> ACTOR"),
    (with_(relations=[{"head": 0, "tail": 1, "label": "OCCUPIES"}]), "label 'OCCUPIES' is not one of"),
    (with_(relations=[{"head": 0, "tail": 7, "label": "ATTACKS"}]), "must index entities"),
    (with_(relations=[{"head": 0, "tail": 1, "label": "ATTACKS"}, {"head": 0, "tail": 1, "label": "CONTROLS"}]), "a second relation"),
    (with_(entities=[{"start": 5, "end": 16, "label": "ACTOR", "text": "قوات"}], relations=[]), "is not text[5:16]"),
    ({"id": "x"}, 'missing field "text"'),
    ({"id": "x", "text": 5}, 'must be a string'),
])
def test_validation_errors(record, expected):
    found = messages(record)
    assert any(expected in m for m in found), found


def test_problem_names_file_line_and_id():
    bad = with_(relations=[{"head": 1, "tail": 0, "label": "ATTACKS"}])
    [p] = validate_record(bad, "f.jsonl:3")
    assert str(p).startswith("f.jsonl:3 [r1]: relation 0 ATTACKS")


def test_validate_file_reports_broken_lines_and_duplicates(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps(GOOD, ensure_ascii=False) + "\n{not json\n" + json.dumps(GOOD, ensure_ascii=False) + "\n", encoding="utf-8")
    n, problems = validate_file(f)
    assert n == 3
    text = [str(p) for p in problems]
    assert any(":2:" in t and "not valid JSON" in t for t in text)
    assert any(":3 [r1]: duplicate id (first on line 1)" in t for t in text)


def test_invalid_iob2_in_conll_is_reported(tmp_path):
    f = tmp_path / "d.conll"
    f.write_text("قوات\tI-ACTOR\nالنظام\tI-ACTOR\n", encoding="utf-8")
    n, problems = validate_file(f)
    assert n == 1 and "must start with B-ACTOR" in str(problems[0])


def test_read_text_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_text(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes("سطر\n".encode() + b"\xff\xfe bad\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid UTF-8 at byte"):
        read_text(bad)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"abc\x00def")
    with pytest.raises(DataError, match="binary"):
        read_text(nul)


def test_jsonl_round_trip(tmp_path):
    write_jsonl([GOOD], tmp_path / "a.jsonl")
    assert read_jsonl(tmp_path / "a.jsonl") == [GOOD]
    assert "قوات" in (tmp_path / "a.jsonl").read_text(encoding="utf-8")  # Arabic kept readable


def test_conll_round_trip_keeps_offsets_relations_and_meta(tmp_path):
    rec = {**GOOD, "text": "  " + TEXT.replace(" ", "  ", 1),
           "meta": {"doc": "d1"}}
    rec["entities"] = [{**e, "start": e["start"] + 3, "end": e["end"] + 3} for e in GOOD["entities"]]
    for e in rec["entities"]:
        e["text"] = rec["text"][e["start"]:e["end"]]
    assert validate_record(rec) == []
    write_conll([rec], tmp_path / "a.conll")
    assert read_conll(tmp_path / "a.conll") == [rec]


def test_conll_without_text_comment(tmp_path):
    (tmp_path / "b.conll").write_text("قوات\tB-ACTOR\nالنظام\tI-ACTOR\nفي\tO\nحلب\tB-LOCATION\n\n", encoding="utf-8")
    [r] = read_conll(tmp_path / "b.conll")
    assert r["text"] == "قوات النظام في حلب"
    assert [(e["text"], e["label"]) for e in r["entities"]] == [("قوات النظام", "ACTOR"), ("حلب", "LOCATION")]


def test_markup_line_parses_to_offsets_and_relations():
    text, ents, rels = parse_markup_line("قصفت [قوات النظام]{A1} بلدة [تلبيسة]{L1}، وقتل [3 مدنيين]{C1}. ||| A1 ATTACKS L1; C1 CASUALTY_IN L1; C1 CAUSED_BY A1")
    assert text == TEXT
    assert [(e["start"], e["end"], e["label"]) for e in ents] == [(e["start"], e["end"], e["label"]) for e in GOOD["entities"]]
    assert sorted((r["head"], r["tail"], r["label"]) for r in rels) == sorted((r["head"], r["tail"], r["label"]) for r in GOOD["relations"])


@pytest.mark.parametrize("line, msg", [
    ("[حلب]{L1} [حمص]{L1}", "used twice"),
    ("[حلب]{L1} ||| L1 ATTACKS L2", "no entity L2"),
    ("[حلب]{L1} ||| L1 BOMBS L1", "BOMBS is not one of"),
    ("[حلب]{L1} ||| L1 ATTACKS", "HEAD LABEL TAIL"),
    ("قصف [حلب]{X1}", "stray"),
])
def test_markup_errors(line, msg):
    with pytest.raises(ValueError, match=msg):
        parse_markup_line(line)


def test_markup_file_checks_token_boundaries(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text("# doc: t-01 | region: Syria\nقصف ب[حلب]{L1}.\n", encoding="utf-8")
    records, problems = parse_markup(f)
    assert records[0]["id"] == "t-01-001" and records[0]["meta"] == {"doc": "t-01", "region": "Syria"}
    assert "m.txt:2" in problems[0] and "token boundary" in problems[0]


def test_to_markup_inverts_parse():
    line = to_markup(GOOD)
    text, ents, rels = parse_markup_line(line)
    assert text == GOOD["text"] and len(ents) == 3 and len(rels) == 3
