"""Spans <-> IOB2: exact round trips, errors, and property tests on random Arabic text."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marsad.model.tags import SpanError, iob2_errors, repair_iob2, spans_to_tags, tags_to_spans
from marsad.model.text import tokenize

TEXT = "قصفت قوات النظام بلدة تلبيسة، وقتل 3 مدنيين."


def test_spans_to_tags_and_back():
    toks = tokenize(TEXT)
    spans = [(5, 16, "ACTOR"), (22, 28, "LOCATION"), (35, 43, "CASUALTY")]
    tags = spans_to_tags(toks, spans)
    assert tags == ["O", "B-ACTOR", "I-ACTOR", "O", "B-LOCATION", "O", "O", "B-CASUALTY", "I-CASUALTY", "O"]
    assert tags_to_spans(toks, tags) == spans


@pytest.mark.parametrize("span, message", [
    ((6, 16, "ACTOR"), "token boundaries"),
    ((5, 15, "ACTOR"), "token boundaries"),
    ((5, 5, "ACTOR"), "token boundaries"),
])
def test_bad_spans(span, message):
    with pytest.raises(SpanError, match=message):
        spans_to_tags(tokenize(TEXT), [span])


def test_overlap():
    with pytest.raises(SpanError, match="overlaps"):
        spans_to_tags(tokenize(TEXT), [(5, 16, "ACTOR"), (10, 16, "ACTOR")])


def test_iob2_errors_and_repair():
    assert iob2_errors(["O", "B-ACTOR", "I-ACTOR"]) == []
    assert iob2_errors(["O", "I-ACTOR"]) != []
    assert iob2_errors(["B-ACTOR", "I-LOCATION"]) != []
    assert iob2_errors(["X-ACTOR"]) != []
    assert repair_iob2(["I-ACTOR", "I-ACTOR", "O", "I-LOCATION"]) == ["B-ACTOR", "I-ACTOR", "O", "B-LOCATION"]
    with pytest.raises(ValueError):
        tags_to_spans(tokenize("قوات النظام"), ["O", "I-ACTOR"])


# --- property tests: random Arabic-and-punctuation strings with random valid spans ----------
ARABIC = st.sampled_from(list("ابتثجحخدذرزسشصضطظعغفقكلمنهويىةءأإآؤئ") + ["ً", "ُ", "ـ", "٣", "7"])
PUNCT = st.sampled_from(list('،.؛:!؟"«»()-#🔥') + ["\u200f"])
SPACE = st.sampled_from([" ", "  ", "\n", "\t", "\u00a0"])
PIECE = st.one_of(st.text(ARABIC, min_size=1, max_size=6), PUNCT, SPACE)


@st.composite
def text_and_spans(draw):
    text = "".join(draw(st.lists(PIECE, max_size=40)))
    toks = tokenize(text)
    spans, i = [], 0
    while i < len(toks):
        if draw(st.booleans()):
            j = i + draw(st.integers(0, 3))
            j = min(j, len(toks) - 1)
            spans.append((toks[i].start, toks[j].end, draw(st.sampled_from(["ACTOR", "LOCATION", "CASUALTY"]))))
            i = j + 1 + draw(st.integers(0, 2))
        else:
            i += 1
    return text, spans


@settings(max_examples=300, deadline=None)
@given(text_and_spans())
def test_round_trip_is_identity(case):
    text, spans = case
    toks = tokenize(text)
    tags = spans_to_tags(toks, spans)
    assert iob2_errors(tags) == []
    back = tags_to_spans(toks, tags)
    assert back == sorted(spans)
    for s, e, _ in back:
        assert 0 <= s < e <= len(text) and text[s:e].strip() == text[s:e]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["O", "B-ACTOR", "I-ACTOR", "B-LOCATION", "I-LOCATION", "I-CASUALTY"]), max_size=30))
def test_repair_always_gives_valid_iob2(tags):
    fixed = repair_iob2(tags)
    assert iob2_errors(fixed) == []
    assert [t[2:] for t in fixed] == [t[2:] for t in tags]


def test_viterbi_keeps_spans_whole():
    import math

    from marsad.model.tags import viterbi_iob2

    labels = ["O", "B-ACTOR", "I-ACTOR"]
    # arg-max would give O, I-ACTOR (invalid) -> repaired to B-ACTOR; Viterbi finds B, I
    probs = [[0.2, 0.7, 0.1], [0.1, 0.45, 0.45 + 1e-3]]
    assert viterbi_iob2([[math.log(p) for p in r] for r in probs], labels) == ["B-ACTOR", "I-ACTOR"]
    assert viterbi_iob2([[0.0, -5, -5]], labels) == ["O"]
    assert viterbi_iob2([], labels) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(-20, 0), min_size=7, max_size=7), max_size=12))
def test_viterbi_output_is_valid_iob2(rows):
    from marsad.model.tags import viterbi_iob2

    labels = ["O", "B-ACTOR", "I-ACTOR", "B-LOCATION", "I-LOCATION", "B-CASUALTY", "I-CASUALTY"]
    out = viterbi_iob2(rows, labels)
    assert len(out) == len(rows) and iob2_errors(out) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.lists(st.sampled_from([0.0, -0.5, -1.0, -2.0, -9.0]), min_size=7, max_size=7),
                         min_size=1, max_size=9), min_size=1, max_size=5))
def test_batched_viterbi_equals_one_sentence_at_a_time(sentences):
    """The numpy batch decoder (used by the Extractor) gives exactly the per-sentence paths,
    ties included (few distinct values make many ties)."""
    import numpy as np

    from marsad.model.tags import viterbi_iob2, viterbi_iob2_batch

    labels = ["O", "B-ACTOR", "I-ACTOR", "B-LOCATION", "I-LOCATION", "B-CASUALTY", "I-CASUALTY"]
    width = max(map(len, sentences))
    batch = np.full((len(sentences), width, 7), -5.0)
    for r, rows in enumerate(sentences):
        batch[r, : len(rows)] = rows
    got = viterbi_iob2_batch(batch, [len(s) for s in sentences], labels)
    for r, rows in enumerate(sentences):
        assert [labels[k] for k in got[r, : len(rows)]] == viterbi_iob2(rows, labels)
