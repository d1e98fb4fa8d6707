"""Label Studio import/export (marsad.training.labelstudio)."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marsad.model.schema import ENTITY_LABELS, RELATION_TYPES
from marsad.model.text import tokenize
from marsad.training.formats import DataError, validate_record
from marsad.training.labelstudio import (
    LABEL_CONFIG,
    export_labelstudio,
    import_labelstudio,
    read_labelstudio,
    write_labelstudio,
)
from marsad.training.markup import parse_markup

FIXTURES = Path(__file__).parent / "fixtures" / "labelstudio"
EXPORT = FIXTURES / "export.json"


def spans(record):
    return [(e["text"], e["label"]) for e in record["entities"]]


def rels(record):
    ents = record["entities"]
    return [(ents[r["head"]]["text"], r["label"], ents[r["tail"]]["text"]) for r in record["relations"]]


def read_fixture(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {r["id"]: r for r in read_labelstudio(EXPORT, **kw)}


# --- the hand-written export ------------------------------------------------------------------
def test_fixture_import_skips_tasks_without_annotation_and_says_so():
    with pytest.warns(UserWarning, match=r"skipped 2 of 6 tasks .*task 105, 106.*use_predictions=True"):
        records = read_labelstudio(EXPORT)
    assert [r["id"] for r in records] == ["sy-idlib-01-001", "ls-102", "sy-homs-02-004", "sy-suwayda-01-002"]
    for r in records:
        assert validate_record(r) == []


def test_fixture_relations_sorted_entities_and_meta():
    r = read_fixture()["sy-idlib-01-001"]
    # regions came casualty-first; entities are sorted by start and relations re-indexed
    assert spans(r) == [("قوات النظام", "ACTOR"), ("كفرنبل", "LOCATION"), ("ثلاثة مدنيين", "CASUALTY")]
    assert rels(r) == [
        ("قوات النظام", "ATTACKS", "كفرنبل"),
        ("ثلاثة مدنيين", "CASUALTY_IN", "كفرنبل"),
        ("ثلاثة مدنيين", "CAUSED_BY", "قوات النظام"),
    ]
    assert r["relations"][0] == {"head": 0, "tail": 1, "label": "ATTACKS"}
    assert r["meta"] == {"source": "rss"}


def test_fixture_whitespace_padded_and_mid_word_selections_snap_to_tokens():
    r = read_fixture()["ls-102"]
    # " هيئة تحرير الشام " and "الرستن " lose their spaces; "تلبيسة" inside "وتلبيسة" grows
    # to the whole token (an attached conjunction belongs to the span)
    assert spans(r) == [("هيئة تحرير الشام", "ACTOR"), ("الرستن", "LOCATION"), ("وتلبيسة", "LOCATION")]
    assert r["entities"][0]["start"] == 6 and r["entities"][0]["end"] == 22
    assert rels(r) == [("هيئة تحرير الشام", "CONTROLS", "الرستن"), ("هيئة تحرير الشام", "CONTROLS", "وتلبيسة")]
    assert "meta" not in r


def test_fixture_cancelled_annotation_is_passed_over():
    # the cancelled annotation has an unknown label: taking it would raise
    r = read_fixture()["sy-homs-02-004"]
    assert spans(r) == [("عشرون مدنيا", "CASUALTY"), ("خمسة أطفال", "CASUALTY"),
                        ("سورية وروسية", "ACTOR"), ("تلبيسة", "LOCATION")]
    assert rels(r) == [("عشرون مدنيا", "CAUSED_BY", "سورية وروسية"), ("عشرون مدنيا", "CASUALTY_IN", "تلبيسة"),
                       ("سورية وروسية", "ATTACKS", "تلبيسة")]


@pytest.mark.parametrize("who", ["3", "huda@example.org"])
def test_fixture_annotator_picks_that_annotation(who):
    records = read_fixture(annotator=who)
    assert list(records) == ["sy-homs-02-004"]  # user 3 annotated only that task
    assert rels(records["sy-homs-02-004"]) == [("عشرون مدنيا", "CASUALTY_IN", "تلبيسة")]


def test_fixture_annotator_whose_annotation_is_cancelled_gets_nothing():
    assert "sy-homs-02-004" not in read_fixture(annotator="1")


def test_fixture_direction_left_reverses_head_and_tail():
    r = read_fixture()["sy-suwayda-01-002"]
    assert r["relations"] == [{"head": 0, "tail": 1, "label": "WITHDRAWS_FROM"}]
    assert rels(r) == [("قوات النظام", "WITHDRAWS_FROM", "السويداء")]


def test_fixture_predictions_when_asked():
    with pytest.warns(UserWarning, match=r"skipped 1 of 6 tasks with no usable annotation \(task 106\)$"):
        records = {r["id"]: r for r in read_labelstudio(EXPORT, use_predictions=True)}
    r = records["lb-south-01-001"]
    assert r["entities"] == [
        {"start": 13, "end": 22, "label": "ACTOR", "text": "إسرائيلية", "score": 0.95},
        {"start": 28, "end": 38, "label": "LOCATION", "text": "عيتا الشعب", "score": 0.85},
    ]
    assert r["relations"] == [{"head": 0, "tail": 1, "label": "ATTACKS", "score": 0.7}]
    # an annotation wins over a prediction
    assert records["sy-idlib-01-001"] == read_fixture()["sy-idlib-01-001"]


def test_fixture_reexport_reimports_identically(tmp_path):
    records = list(read_fixture(use_predictions=True).values())
    write_labelstudio(records, tmp_path / "again.json")
    assert import_labelstudio(tmp_path / "again.json", use_predictions=True) == records


# --- round trips ------------------------------------------------------------------------------
def seed_records():
    records, problems = parse_markup(FIXTURES / "seed_markup.txt")
    assert problems == []
    return records


def test_seed_records_round_trip(tmp_path):
    records = seed_records()
    before = copy.deepcopy(records)
    tasks = export_labelstudio(records)
    assert records == before  # export does not touch its input
    assert all(t["annotations"] and not t["predictions"] for t in tasks)
    assert import_labelstudio(tasks) == records
    path = tmp_path / "seed.json"
    write_labelstudio(records, path)
    assert read_labelstudio(path) == records
    raw = path.read_text(encoding="utf-8")
    assert "قوات الأمن" in raw and '\n  {\n    "id": 1,' in raw  # readable Arabic, indent=2


def test_export_shape():
    record = seed_records()[1]
    [task] = export_labelstudio([record])
    assert task["data"] == {"text": record["text"], "id": "seed-000-002", "doc": "seed-000", "region": "Syria"}
    [ann] = task["annotations"]
    result = ann["result"]
    assert result[0] == {"id": "e0", "from_name": "label", "to_name": "text", "type": "labels",
                         "value": {"start": 5, "end": 16, "text": "عشرون مدنيا", "labels": ["CASUALTY"]}}
    links = [x for x in result if x["type"] == "relation"]
    assert links[0] == {"from_id": "e0", "to_id": "e2", "type": "relation", "direction": "right",
                        "labels": ["CAUSED_BY"]}
    assert len(links) == len(record["relations"])


def test_predictions_export_and_import():
    record = copy.deepcopy(seed_records()[1])
    for e, s in zip(record["entities"], [0.9, 0.8, 0.7, 0.6, 0.5]):
        e["score"] = s
    record["relations"][0]["score"] = 0.4
    [task] = export_labelstudio([record], model_version="marsad-test")
    assert task["annotations"] == []
    [pred] = task["predictions"]
    assert pred["model_version"] == "marsad-test" and pred["score"] == pytest.approx(0.7)
    assert pred["result"][0]["score"] == 0.9
    with pytest.warns(UserWarning, match="skipped 1 of 1"):
        assert import_labelstudio([task]) == []
    assert import_labelstudio([task], use_predictions=True) == [record]


def test_as_predictions_forces_either_way():
    plain, scored = seed_records()[0], copy.deepcopy(seed_records()[0])
    scored["entities"][0]["score"] = 0.5
    [t1] = export_labelstudio([plain], as_predictions=True)
    assert t1["predictions"] and not t1["annotations"] and "score" not in t1["predictions"][0]
    [t2] = export_labelstudio([scored], as_predictions=False)
    assert t2["annotations"] and not t2["predictions"]
    assert import_labelstudio([t2]) == [scored]


def test_record_without_id_gets_task_id():
    record = {"text": "قصفت قوات النظام حمص.", "entities": [], "relations": []}
    assert import_labelstudio(export_labelstudio([record])) == [{"id": "ls-1", **record}]


def test_labels_are_matched_forgiving_case():
    [task] = export_labelstudio([seed_records()[3]])
    result = task["annotations"][0]["result"]
    result[0]["value"]["labels"] = ["Location"]
    next(x for x in result if x["type"] == "relation")["labels"] = ["Withdraws from"]
    assert import_labelstudio([task]) == [seed_records()[3]]


def test_duplicate_regions_merge():
    [task] = export_labelstudio([seed_records()[3]])
    result = task["annotations"][0]["result"]
    dup = copy.deepcopy(result[1])
    dup["id"] = "dup"
    result.append(dup)
    assert import_labelstudio([task]) == [seed_records()[3]]


def test_label_config_names_every_label():
    for label in (*ENTITY_LABELS, *RELATION_TYPES):
        assert f'value="{label}"' in LABEL_CONFIG
    assert '<Labels name="label" toName="text">' in LABEL_CONFIG


# --- errors -----------------------------------------------------------------------------------
TEXT = "هاجم حزب الله موقعا في المطلة."  # حزب الله [5, 13), المطلة [23, 29)


def task(*result, tid=9):
    return {"id": tid, "data": {"text": TEXT}, "annotations": [{"result": list(result), "was_cancelled": False}]}


def region(rid, start, end, label):
    return {"id": rid, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": start, "end": end, "text": TEXT[start:end], "labels": [label]}}


def link(a, b, labels, direction="right"):
    return {"from_id": a, "to_id": b, "type": "relation", "direction": direction, "labels": labels}


A, L = region("r1", 5, 13, "ACTOR"), region("r2", 23, 29, "LOCATION")


def test_valid_error_fixture_baseline():
    [r] = import_labelstudio([task(A, L, link("r1", "r2", ["ATTACKS"]))])
    assert rels(r) == [("حزب الله", "ATTACKS", "المطلة")]


def test_unknown_entity_label():
    with pytest.raises(DataError, match=r"^task 9: region r2 'المطلة' has label 'TOWN', which is not one of "
                                        r"ACTOR, LOCATION, CASUALTY"):
        import_labelstudio([task(A, region("r2", 23, 29, "TOWN"))])


def test_relation_without_label():
    with pytest.raises(DataError, match=r"^task 9: relation r1 -> r2 has no label; give it exactly one of "
                                        r"CONTROLS, .* or delete it"):
        import_labelstudio([task(A, L, link("r1", "r2", []))])


def test_relation_with_unknown_label():
    with pytest.raises(DataError, match=r"^task 9: relation r1 -> r2 has label 'SHELLS', which is not one of"):
        import_labelstudio([task(A, L, link("r1", "r2", ["SHELLS"]))])


def test_relation_to_missing_region():
    with pytest.raises(DataError, match=r"^task 9: relation r1 -> r7 links a region that is not a labelled span"):
        import_labelstudio([task(A, L, link("r1", "r7", ["ATTACKS"]))])


def test_relation_with_wrong_signature_fails_validation():
    with pytest.raises(DataError, match=r"^task 9 \(ls-9\): relation 0 ATTACKS: needs ACTOR -> LOCATION, "
                                        r"got LOCATION -> ACTOR"):
        import_labelstudio([task(A, L, link("r2", "r1", ["ATTACKS"]))])


def test_bidirectional_relation_names_the_file():
    with pytest.raises(DataError, match=r"bad_direction\.json: task 7: relation r1 -> r2 has direction 'bi'; "
                                        r"relations go from head to tail"):
        read_labelstudio(FIXTURES / "bad_direction.json")


def test_offsets_that_disagree_with_the_selected_text():
    bad = region("r2", 23, 29, "LOCATION")
    bad["value"]["text"] = "المطل"
    with pytest.raises(DataError, match=r"^task 9: region r2 \[23, 29\) says 'المطل' but data.text has 'المطلة'"):
        import_labelstudio([task(A, bad)])


def test_whitespace_only_selection():
    with pytest.raises(DataError, match=r"^task 9: region r3 \[4, 5\) selects only white space"):
        import_labelstudio([task(A, region("r3", 4, 5, "ACTOR"))])


def test_overlapping_selections_fail_validation():
    with pytest.raises(DataError, match=r"^task 9 \(ls-9\): entities .* overlap"):
        import_labelstudio([task(A, region("r3", 9, 13, "LOCATION"))])


def test_not_a_json_export(tmp_path):
    p = tmp_path / "min.json"
    p.write_text(json.dumps([{"id": 1, "text": TEXT, "label": []}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"task 1: not a Label Studio task .*'JSON-MIN'"):
        read_labelstudio(p)
    p.write_text("[{", encoding="utf-8")
    with pytest.raises(DataError, match=r"min\.json:1: not valid JSON"):
        read_labelstudio(p)


def test_export_rejects_invalid_records():
    record = {"id": "x", "text": TEXT, "entities": [{"start": 6, "end": 13, "label": "ACTOR"}], "relations": []}
    with pytest.raises(DataError, match=r"^record x: entity 0 ACTOR .* not on a token boundary"):
        export_labelstudio([record])
    record = {"id": "x", "text": TEXT, "entities": [], "relations": [], "meta": {"text": "?"}}
    with pytest.raises(DataError, match=r"^record x: meta field\(s\) \['text'\] would clash"):
        export_labelstudio([record])


# --- property: export -> import is the identity on valid records ------------------------------
WORDS = st.text(alphabet="ابتثجحخدذرسشصضطظعغفقكلمنهويءآأإةى٠١٢0123456789\u064e\u0651\u0640_", min_size=1, max_size=6)
PUNCT = st.sampled_from(list("،.؟!\"#()|:-") + ["🔥", "«", "»"])
SPACE = st.sampled_from([" ", "  ", "\n", "\t", "\u00a0", " \n "])


@st.composite
def records(draw):
    pieces = draw(st.lists(st.one_of(WORDS, WORDS, PUNCT), min_size=1, max_size=25))
    text = draw(st.sampled_from(["", " "]))  # pieces run together or not: tokenize() decides
    for p in pieces:
        text += p + draw(st.one_of(SPACE, st.just("")))
    tokens = tokenize(text)
    # non-overlapping token runs, in text order
    entities, i = [], 0
    while i < len(tokens):
        i += draw(st.integers(0, 2))
        if i >= len(tokens):
            break
        j = min(len(tokens) - 1, i + draw(st.integers(0, 2)))
        s, e = tokens[i].start, tokens[j].end
        ent = {"start": s, "end": e, "label": draw(st.sampled_from(ENTITY_LABELS)), "text": text[s:e]}
        entities.append(ent)
        i = j + 1
    scored = draw(st.booleans())
    if scored:
        for ent in entities:
            ent["score"] = draw(st.floats(0, 1))
    relations, seen = [], set()
    pairs = [(h, t) for h in range(len(entities)) for t in range(len(entities)) if h != t]
    for h, t in draw(st.lists(st.sampled_from(pairs), max_size=8)) if pairs else []:
        fits = [lab for lab, sig in RELATION_TYPES.items() if sig == (entities[h]["label"], entities[t]["label"])]
        if fits and (h, t) not in seen:
            seen.add((h, t))
            rel = {"head": h, "tail": t, "label": draw(st.sampled_from(fits))}
            if scored:
                rel["score"] = draw(st.floats(0, 1))
            relations.append(rel)
    record = {"id": draw(st.text(min_size=1, max_size=8)), "text": text, "entities": entities, "relations": relations}
    meta = draw(st.dictionaries(st.text(max_size=5).filter(lambda k: k not in ("text", "id")),
                                st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3))
    if meta:
        record["meta"] = meta
    assert validate_record(record) == []
    return record


@settings(max_examples=100, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4))
def test_property_export_import_round_trip(recs):
    tasks = export_labelstudio(recs)
    tasks = json.loads(json.dumps(tasks, ensure_ascii=False))  # through JSON, as a file would be
    assert import_labelstudio(tasks, use_predictions=True) == recs


@settings(max_examples=100, deadline=None)
@given(records(), st.data())
def test_property_sloppy_selections_snap_back(record, data):
    """Selections padded with white space or cutting into their first/last token import the same."""
    text, tokens = record["text"], tokenize(record["text"])
    [task] = export_labelstudio([record], as_predictions=False)
    for region in task["annotations"][0]["result"]:
        if region["type"] != "labels":
            continue
        v = region["value"]
        first = next(k for k, t in enumerate(tokens) if t.start == v["start"])
        last = next(k for k, t in enumerate(tokens) if t.end == v["end"])
        lo = tokens[first - 1].end if first else 0
        hi = tokens[last + 1].start if last + 1 < len(tokens) else len(text)
        s = data.draw(st.integers(lo, tokens[first].end - 1))
        e = data.draw(st.integers(max(s + 1, tokens[last].start + 1), hi))
        v.update(start=s, end=e, text=text[s:e])
    assert import_labelstudio([task]) == [record]


def test_deeply_nested_file_is_a_clear_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(DataError, match="nested too deeply"):
        read_labelstudio(path)


# --- offsets in UTF-16 units, and bad tasks that do not take the good ones with them -------------
def _utf16(text: str, i: int) -> int:
    return len(text[:i].encode("utf-16-le")) // 2


def _task(tid, text, regions, utf16=False):
    result = []
    for k, (word, label) in enumerate(regions):
        s = text.index(word)
        e = s + len(word)
        if utf16:
            s, e = _utf16(text, s), _utf16(text, e)
        result.append({"id": f"r{k}", "type": "labels", "from_name": "label", "to_name": "text",
                       "value": {"start": s, "end": e, "text": word, "labels": [label]}})
    return {"id": tid, "data": {"text": text}, "annotations": [{"id": tid, "result": result}]}


def _export_with_utf16_and_bad_tasks():
    good = [_task(i, f"قصفت قوات النظام مدينة حمص يوم {i}", [("قوات النظام", "ACTOR"), ("حمص", "LOCATION")]) for i in range(1, 7)]
    emoji = _task(7, "🔴🔴 عاجل: قصف إسرائيلي على خان يونس", [("إسرائيلي", "ACTOR"), ("خان يونس", "LOCATION")], utf16=True)
    bad = _task(8, "قصفت قوات النظام مدينة حماة", [("قوات النظام", "ACTOR"), ("حماة", "LOCATION")])
    bad["annotations"][0]["result"][1]["value"]["text"] = "حمص"  # says another word than its offsets select
    return good + [emoji, bad]


def test_utf16_offsets_are_converted_and_reported():
    from marsad.training.labelstudio import load_labelstudio

    loaded = load_labelstudio(_export_with_utf16_and_bad_tasks()[6:7])
    assert loaded.problems == []
    assert len(loaded.notes) == 1 and "task 7" in loaded.notes[0] and "UTF-16" in loaded.notes[0]
    [rec] = loaded.records
    assert spans(rec) == [("إسرائيلي", "ACTOR"), ("خان يونس", "LOCATION")]
    assert all(rec["text"][e["start"]:e["end"]] == e["text"] for e in rec["entities"])


def test_a_bad_task_is_reported_by_task_and_region_and_the_good_ones_are_kept():
    from marsad.training.labelstudio import load_labelstudio

    loaded = load_labelstudio(_export_with_utf16_and_bad_tasks())
    assert len(loaded.records) == 7  # six good tasks and the converted one
    [problem] = loaded.problems
    assert "task 8" in problem and "region r1" in problem
    with pytest.raises(DataError, match="task 8"):
        import_labelstudio(_export_with_utf16_and_bad_tasks())


def test_convert_writes_the_good_tasks_and_reports_the_bad_one(cli, tmp_path):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_export_with_utf16_and_bad_tasks(), ensure_ascii=False), encoding="utf-8")
    code, out, err = cli("convert", export, tmp_path / "out.jsonl")
    assert code == 1
    assert "task 7" in err and "UTF-16" in err  # the repaired task is reported ...
    assert "task 8" in err and "region r1" in err and "1 bad task(s)" in err  # ... and the bad one by task and region
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(written) == 7 and all(validate_record(r) == [] for r in written)
