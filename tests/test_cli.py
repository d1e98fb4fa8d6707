"""The ``marsad`` command line: help, validate, convert, predict (every format, stdin), evaluate.

Commands run in-process through ``marsad.training.cli.main``; the robustness side (bad input,
broken models, kills) is in ``test_robustness.py``.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from conftest import SEED_JSONL, SEED_TXT, read_jsonl, write_jsonl
from marsad.model.text import tokenize
from marsad.training.cli import main

COMMANDS = ["validate", "convert", "train", "evaluate", "predict"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def check_record(rec: dict) -> None:
    """Entities slice the record's text at token boundaries; relations index them."""
    text = rec["text"]
    tokens = tokenize(text)
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    prev_end = 0
    for e in sorted(rec["entities"], key=lambda e: e["start"]):
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert text[e["start"]:e["end"]] == e["text"]
        assert e["start"] in starts and e["end"] in ends
        assert e["start"] >= prev_end  # no overlaps
        prev_end = e["end"]
    for r in rec["relations"]:
        assert 0 <= r["head"] < len(rec["entities"]) and 0 <= r["tail"] < len(rec["entities"])


# --- help ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: marsad {command}")


def test_top_level_help_and_no_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS) and "--debug" in out
    assert main([]) == 2  # no command: the help, and a usage exit status
    assert "usage: marsad" in capsys.readouterr().out


def test_unknown_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(SEED_JSONL), "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


# --- validate and convert --------------------------------------------------------------------
def test_validate_seed_passes(cli):
    code, out, err = cli("validate", SEED_JSONL)
    assert code == 0, err
    assert out.strip() == f"{SEED_JSONL}: 37 records, ok"


def test_validate_reports_each_problem_with_its_line(cli, tmp_path):
    recs = read_jsonl(SEED_JSONL)[:3]
    recs[1]["entities"][0]["end"] += 1  # cuts into the next token (or runs past it)
    recs[2]["relations"] = [{"head": 0, "tail": 99, "label": "ATTACKS"}]
    bad = tmp_path / "bad.jsonl"
    write_jsonl(recs, bad)
    code, out, err = cli("validate", bad)
    assert code == 1
    assert f"{bad}:2 [{recs[1]['id']}]: entity 0" in err
    assert f"{bad}:3 [{recs[2]['id']}]: relation 0 ATTACKS" in err
    assert out.strip().endswith("3 records, 3 problem(s)")  # the cut span: its text and its edge


@pytest.mark.parametrize("middle", ["conll", "json"])
def test_convert_round_trip_is_byte_identical(cli, tmp_path, middle):
    there, back = tmp_path / f"seed.{middle}", tmp_path / "back.jsonl"
    code, out, err = cli("convert", SEED_JSONL, there)
    assert code == 0, err
    assert "37 records" in out
    code, _, err = cli("convert", there, back)
    assert code == 0, err
    assert back.read_bytes() == SEED_JSONL.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_convert_label_studio_file_is_a_task_list(cli, tmp_path):
    code, _, _ = cli("convert", SEED_JSONL, tmp_path / "ls.json")
    assert code == 0
    tasks = json.loads((tmp_path / "ls.json").read_text(encoding="utf-8"))
    assert len(tasks) == 37 and all("data" in t and "text" in t["data"] for t in tasks)


def test_convert_conll_keeps_offsets_and_ids(cli, tmp_path):
    cli("convert", SEED_JSONL, tmp_path / "seed.conll")
    text = (tmp_path / "seed.conll").read_text(encoding="utf-8")
    assert text.startswith("# id = seed-001\n# text = ")
    assert "\tB-ACTOR\n" in text and "\tI-ACTOR\n" in text


def test_convert_needs_a_known_extension_or_to(cli, tmp_path):
    code, _, err = cli("convert", SEED_JSONL, tmp_path / "out.txt")
    assert code == 2 and "--to" in err and not (tmp_path / "out.txt").exists()
    code, _, err = cli("convert", SEED_JSONL, tmp_path / "out.txt", "--to", "conll")
    assert code == 0 and (tmp_path / "out.txt").read_text(encoding="utf-8").startswith("# id = seed-001")


# --- predict ---------------------------------------------------------------------------------
def test_predict_seed_article(cli, trained_model):
    code, out, err = cli("predict", "-m", trained_model, SEED_TXT, "-q")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    article = SEED_TXT.read_text(encoding="utf-8")
    assert rec["id"] == SEED_TXT.stem and rec["text"] == article
    assert rec["entities"], "the overfit model finds entities in the seed article"
    for e in rec["entities"]:
        assert article[e["start"]:e["end"]] == e["text"]
        assert e["label"] in ("ACTOR", "LOCATION", "CASUALTY")
    check_record(rec)


def test_predict_writes_to_file(cli, trained_model, tmp_path):
    out_file = tmp_path / "out.jsonl"
    code, out, _ = cli("predict", "-m", trained_model, SEED_TXT, "-o", out_file, "-q")
    assert code == 0 and out == ""
    [rec] = read_jsonl(out_file)
    check_record(rec)


def test_predict_html_is_rtl_and_escaped(cli, trained_model, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl([
        {"id": "<img src=x onerror=alert(1)>", "text": "قتل ثلاثة مدنيين في حلب <script>alert('x')</script> & غيرها"},
        {"id": "plain", "text": SEED_TXT.read_text(encoding="utf-8")},
        {"id": "bad", "text": 7},
    ], src)
    page = tmp_path / "out.html"
    code, _, err = cli("predict", "-m", trained_model, src, "-f", "html", "-o", page, "-q")
    assert code == 1 and "1 of 3" in err  # the non-string text fails, the page is still written
    html = page.read_text(encoding="utf-8")
    assert '<html lang="ar" dir="rtl">' in html
    assert "<script>alert" not in html and "<img" not in html  # the page's own scripts only
    assert "<h2>&lt;img src=x onerror=alert(1)&gt;</h2>" in html
    # the article text, with the entity highlighting taken out, is the escaped original
    plain = re.sub(r"<sub>.*?</sub>|<mark [^>]*>|</mark>", "", html)
    assert "حلب &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; غيرها" in plain
    assert html.count("<article>") == 3 and 'class="error"' in html
    assert "<mark class=" in html  # entities of the seed article are highlighted


def test_predict_html_needs_output(cli, trained_model):
    code, _, err = cli("predict", "-m", trained_model, SEED_TXT, "-f", "html")
    assert code == 2 and "-o OUT.html" in err


def test_predict_events(cli, trained_model, tmp_path):
    src = tmp_path / "in.jsonl"
    texts = [r["text"] for r in read_jsonl(SEED_JSONL)[:6]]
    write_jsonl([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)] + [{"id": "empty", "text": ""}], src)
    code, out, err = cli("predict", "-m", trained_model, src, "-f", "events", "-q")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    # every record has at least one line, in input order
    seen = list(dict.fromkeys(r["record_id"] for r in rows))
    assert seen == [f"r{i}" for i in range(6)] + ["empty"]
    events = [r for r in rows if "event" in r]
    assert events, "the seed sentences report attacks and casualties"
    for ev in events:
        text = texts[int(ev["record_id"][1:])]
        assert text[ev["start"]:ev["end"]] == ev["sentence"]
        assert ev["event_types"] and set(ev["event_types"]) <= {"attack", "casualties", "territory_control", "withdrawal"}
        assert ev["event_type"] and ev["plover"] and "lat" in ev and "event_date" in ev
    assert rows[-1] == {"record_id": "empty", "events": 0}  # an empty text is a record without events


@pytest.mark.parametrize("text", ["", " ", " \n\t\u00a0\n"])
def test_predict_empty_and_blank_texts_are_records_without_entities(cli, trained_model, tmp_path, text):
    """As in every NLP tool: an empty or whitespace-only text is a valid record, not an error."""
    src = tmp_path / "in.jsonl"
    write_jsonl([{"id": "a", "text": "قتل ثلاثة مدنيين في حلب."}, {"id": "blank", "text": text}], src)
    article = tmp_path / "blank.txt"
    article.write_text(text, encoding="utf-8")
    code, out, err = cli("predict", "-m", trained_model, src, article, "-q")
    assert code == 0 and err == ""
    first, *blanks = [json.loads(line) for line in out.splitlines()]
    assert first["id"] == "a" and first["entities"]
    assert blanks == [{"id": "blank", "text": text, "entities": [], "relations": []}] * 2
    code, out, err = cli("predict", "-m", trained_model, src, "-f", "conll", "-q")
    assert code == 0 and out.endswith("\n\n# id = blank\n\n")


def test_predict_conll(cli, trained_model, tmp_path):
    src = tmp_path / "in.jsonl"
    texts = [r["text"] for r in read_jsonl(SEED_JSONL)[:3]]
    write_jsonl([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)], src)
    code, out, err = cli("predict", "-m", trained_model, src, "-f", "conll", "-q")
    assert code == 0, err
    blocks = out.strip("\n").split("\n\n")
    assert len(blocks) == 3
    for i, block in enumerate(blocks):
        lines = block.split("\n")
        assert lines[0] == f"# id = r{i}"
        rows = [line.split("\t") for line in lines[1:]]
        assert [r[0] for r in rows] == [t.text for t in tokenize(texts[i])]
        tags = [r[1] for r in rows]
        assert all(t == "O" or t[:2] in ("B-", "I-") for t in tags)
        assert any(t != "O" for t in tags)


def test_predict_stdin(cli, trained_model):
    texts = [r["text"] for r in read_jsonl(SEED_JSONL)[:2]]
    data = "".join(json.dumps({"id": f"s{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts))
    code, out, err = cli("predict", "-m", trained_model, "-", "-q", stdin=data.encode("utf-8"))
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in recs] == ["s0", "s1"] and [r["text"] for r in recs] == texts
    for rec in recs:
        check_record(rec)


def test_predict_stdin_without_id_and_text_stream(cli, trained_model, monkeypatch):
    """Records without ``id`` get ``<source>-<line>``; a plain text stream (no ``.buffer``) works."""
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "قتل ثلاثة مدنيين في حلب."}\n'))
    code, out, _ = cli("predict", "-m", trained_model, "-", "-q")
    assert code == 0
    assert json.loads(out)["id"] == "<stdin>-1"


def test_predict_several_inputs_keep_order(cli, trained_model, tmp_path):
    a = tmp_path / "a.txt"
    a.write_text("قتل ثلاثة مدنيين في قصف على حلب.", encoding="utf-8")
    b = tmp_path / "b.jsonl"
    write_jsonl([{"id": "b1", "text": "انسحب الجيش من حمص."}], b)
    code, out, _ = cli("predict", "-m", trained_model, a, b, SEED_TXT, "-q")
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["a", "b1", SEED_TXT.stem]


# --- evaluate --------------------------------------------------------------------------------
def test_evaluate_json_has_seqeval_numbers(cli, trained_model, extractor):
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    from marsad.model.tags import spans_to_tags

    code, out, err = cli("evaluate", "-m", trained_model, SEED_JSONL, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n_records"] == 37
    micro = result["entities"]["micro avg"]
    assert set(micro) == {"precision", "recall", "f1-score", "support"}
    assert {"ACTOR", "LOCATION", "CASUALTY"} <= set(result["entities"])
    assert "micro avg" in result["relations_end_to_end"] and "micro avg" in result["relations_gold_entities"]
    # the very numbers seqeval gives for the model's predictions
    gold = read_jsonl(SEED_JSONL)
    pred = extractor.extract([g["text"] for g in gold])

    def tags(r):
        return spans_to_tags(tokenize(r["text"]), [(e["start"], e["end"], e["label"]) for e in r["entities"]])

    y_true, y_pred = [tags(g) for g in gold], [tags(p) for p in pred]
    kw = dict(mode="strict", scheme=IOB2, zero_division=0)
    assert micro["f1-score"] == pytest.approx(f1_score(y_true, y_pred, **kw))
    assert micro["precision"] == pytest.approx(precision_score(y_true, y_pred, **kw))
    assert micro["recall"] == pytest.approx(recall_score(y_true, y_pred, **kw))
    assert micro["support"] == sum(len(g["entities"]) for g in gold)


def test_evaluate_text_report(cli, trained_model):
    code, out, _ = cli("evaluate", "-m", trained_model, SEED_JSONL)
    assert code == 0
    assert out.startswith("Entities (seqeval, strict IOB2) on 37 records")
    assert "relations (end-to-end)" in out and "micro avg" in out
