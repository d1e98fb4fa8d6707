"""Evaluation arithmetic against numbers worked out by hand (marsad.training.evaluation)."""

import pytest

from marsad.training.evaluation import confusion, relation_scores

TEXT = "قصفت قوات النظام حلب وقتل ثلاثة مدنيين في حمص"
#       0    5    10   15   20        30         41 43
A = {"start": 5, "end": 16, "label": "ACTOR"}      # قوات النظام
H = {"start": 17, "end": 20, "label": "LOCATION"}  # حلب
C = {"start": 26, "end": 38, "label": "CASUALTY"}  # ثلاثة مدنيين
M = {"start": 42, "end": 45, "label": "LOCATION"}  # حمص


def rec(entities, relations):
    return {"text": TEXT, "entities": entities, "relations": [dict(zip(("head", "tail", "label"), r)) for r in relations]}


def test_spans_are_what_the_comments_say():
    assert [TEXT[e["start"]:e["end"]] for e in (A, H, C, M)] == ["قوات النظام", "حلب", "ثلاثة مدنيين", "حمص"]


def test_relation_scores_by_hand():
    gold = [rec([A, H, C, M], [(0, 1, "ATTACKS"), (2, 3, "CASUALTY_IN"), (2, 0, "CAUSED_BY")])]
    # predicted: ATTACKS right; CASUALTY_IN to the wrong place (1 fp + 1 fn); CAUSED_BY missed;
    # one spurious CONTROLS. Entity order differs from gold: matching is on spans, not indices.
    pred = [rec([M, H, A, C], [(2, 1, "ATTACKS"), (3, 1, "CASUALTY_IN"), (2, 0, "CONTROLS")])]
    s = relation_scores(gold, pred)
    assert s["ATTACKS"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1}
    assert s["CASUALTY_IN"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert s["CAUSED_BY"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1}
    assert s["CONTROLS"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    # micro: tp 1, fp 2 (CASUALTY_IN, CONTROLS), fn 2 (CASUALTY_IN, CAUSED_BY): P = R = 1/3
    micro = s["micro avg"]
    assert micro["precision"] == pytest.approx(1 / 3) and micro["recall"] == pytest.approx(1 / 3)
    assert micro["f1-score"] == pytest.approx(1 / 3) and micro["support"] == 3


def test_a_relation_needs_both_spans_exact():
    gold = [rec([A, H], [(0, 1, "ATTACKS")])]
    short = dict(A, start=10)  # "النظام" only
    s = relation_scores(gold, [rec([short, H], [(0, 1, "ATTACKS")])])
    assert s["micro avg"]["f1-score"] == 0.0 and s["micro avg"]["support"] == 1


def test_confusion_by_hand():
    gold = [rec([A, H, C, M], [(0, 1, "ATTACKS"), (2, 3, "CASUALTY_IN")])]
    pred = [rec([
        {"start": 10, "end": 16, "label": "ACTOR"},     # النظام: partial for gold ACTOR
        {"start": 17, "end": 20, "label": "ACTOR"},     # حلب as ACTOR: wrong label
        C,                                              # exact
        {"start": 0, "end": 4, "label": "ACTOR"},       # قصفت: spurious
    ], [])]
    gold_rel_pred = [[{"head": 0, "tail": 1, "label": "ATTACKS"}, {"head": 0, "tail": 3, "label": "ATTACKS"}]]
    out = confusion(gold, pred, gold_rel_pred)
    assert out["entities"] == {"ACTOR": {"partial": 1}, "LOCATION": {"as_ACTOR": 1, "missed": 1}, "CASUALTY": {"exact": 1}}
    assert out["spurious_entities"] == {"ACTOR": 1}
    assert out["relations_gold_entities"] == {"ATTACKS -> ATTACKS": 1, "CASUALTY_IN -> NONE": 1, "NONE -> ATTACKS": 1}
