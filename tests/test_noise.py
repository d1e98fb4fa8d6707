"""Real-text noise augmentation (training/noise.py): every edit keeps the gold exact."""

import random

import pytest
from hypothesis import given, settings, strategies as st

from conftest import ROOT, SEED_JSONL, read_jsonl
from marsad.model.text import tokenize
from marsad.training.formats import validate_record
from marsad.training.noise import NOISE_OPS, noisy_record, noisy_records

CORPUS = read_jsonl(ROOT / "data" / "corpus" / "dev.jsonl") + read_jsonl(SEED_JSONL)


def _check(record):
    assert validate_record(record) == [], record["text"]
    toks = tokenize(record["text"])
    starts, ends = {t.start for t in toks}, {t.end for t in toks}
    for e in record["entities"]:
        assert e["start"] in starts and e["end"] in ends
        if "text" in e:
            assert record["text"][e["start"]:e["end"]] == e["text"]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CORPUS) - 1), st.integers(0, 10**6), st.sampled_from(NOISE_OPS + ("all",)))
def test_every_noisy_record_still_validates(i, seed, op):
    ops = NOISE_OPS if op == "all" else (op,)
    out = noisy_record(CORPUS[i], random.Random(seed), ops)
    if out is not None:
        _check(out)
        assert out["relations"] == CORPUS[i]["relations"]
        assert [e["label"] for e in out["entities"]] == [e["label"] for e in CORPUS[i]["entities"]]


def rec(text, *spans):
    ents = []
    for s, label in spans:
        start = text.index(s)
        ents.append({"start": start, "end": start + len(s), "label": label, "text": s})
    return {"id": "t", "text": text, "entities": ents, "relations": []}


def first(record, op, tries=50):
    for seed in range(tries):
        out = noisy_record(record, random.Random(seed), (op,), n_ops=(1, 1))
        if out is not None:
            return out
    raise AssertionError(f"{op} never applied")


def spans(record):
    return [record["text"][e["start"]:e["end"]] for e in record["entities"]]


def test_hashtag_joins_a_multiword_place_and_leaves_the_hash_outside():
    r = rec("قصفت الطائرات قطاع غزة", ("قطاع غزة", "LOCATION"))
    outs = [noisy_record(r, random.Random(s), ("hashtag",), (1, 1)) for s in range(30)]
    joined = [o for o in outs if o and "#قطاع_غزة" in o["text"]]
    assert joined and spans(joined[0]) == ["قطاع_غزة"]
    _check(joined[0])


def test_web_items_stay_outside_spans():
    r = rec("قصفت قوات الاحتلال مدينة رفح اليوم", ("قوات الاحتلال", "ACTOR"), ("رفح", "LOCATION"))
    for s in range(40):
        out = noisy_record(r, random.Random(s), ("web",), (1, 1))
        assert spans(out) == ["قوات الاحتلال", "رفح"]
        _check(out)


def test_spelling_swaps_keep_lengths():
    r = rec("أعلنت إسرائيل مقتل جندي في الضفة الغربية", ("إسرائيل", "ACTOR"), ("جندي", "CASUALTY"), ("الضفة الغربية", "LOCATION"))
    out = first(r, "spelling")
    assert len(out["text"]) == len(r["text"])
    assert [(e["start"], e["end"]) for e in out["entities"]] == [(e["start"], e["end"]) for e in r["entities"]]


def test_joined_names():
    out = first(rec("غارة على خان يونس", ("خان يونس", "LOCATION")), "joined")
    assert spans(out) == ["خانيونس"]


def test_numbers_as_digits_of_both_kinds_and_words():
    r = rec("قتل ثلاثة مدنيين ومقتل 25 جنديا", ("ثلاثة مدنيين", "CASUALTY"), ("25 جنديا", "CASUALTY"))
    seen = set()
    for s in range(40):
        out = noisy_record(r, random.Random(s), ("numbers",), (1, 1))
        _check(out)
        seen.update(spans(out))
    assert {"3 مدنيين", "٣ مدنيين", "٢٥ جنديا"} <= seen


def test_marks_and_obfuscation_stay_inside_spans():
    r = rec("هاجمت حماس مستوطنة سديروت", ("حماس", "ACTOR"), ("سديروت", "LOCATION"))
    out = first(r, "obfuscate")
    assert "ـ.ـ" in spans(out)[0] and spans(out)[0].replace("ـ.ـ", "") == "حماس"
    _check(out)
    out = first(r, "marks")
    assert len(out["text"]) > len(r["text"])
    _check(out)


def test_deterministic_and_share():
    a = noisy_records(CORPUS[:200], 0.5, seed=3)
    assert a == noisy_records(CORPUS[:200], 0.5, seed=3)
    changed = sum(x["text"] != y["text"] for x, y in zip(a, CORPUS[:200]))
    assert 60 < changed < 140
    assert noisy_records(CORPUS[:50], 0.0, seed=3) == CORPUS[:50]


def test_config_rejects_unknown_noise_op(tmp_path):
    from conftest import tiny_config
    from marsad.training.config import ConfigError

    with pytest.raises(ConfigError, match="noise_ops"):
        tiny_config(tmp_path, CORPUS[:3], augment__noise_ops=["hashtags"])
    with pytest.raises(ConfigError, match="augment.noise"):
        tiny_config(tmp_path, CORPUS[:3], augment__noise=1.5)
