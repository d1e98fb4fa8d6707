"""Fuzzing (hypothesis): tokeniser, normalisation, sentences, IOB2, extraction, readers, validation."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from conftest import check_record
from marsad.model.tags import iob2_errors, repair_iob2, spans_to_tags, tags_to_spans
from marsad.model.text import normalize_text, normalize_word, split_sentences, tokenize
from marsad.training.predict import jsonl_items
from marsad.training.formats import validate_record

SUBPROCESS_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                  "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    items = list(jsonl_items("in.jsonl", raw))

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
            assert isinstance(value, str)


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
