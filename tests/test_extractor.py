"""The Extractor: whole articles, offsets, windows, decorated text, casualty fields, events, HTML,
and interoperability of the saved folder with transformers' pipeline."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SEED_TXT, overfit_records
from marsad.model import Extractor
from marsad.model.events import events_from_record
from marsad.model.html import render_html
from marsad.model.tags import spans_to_tags
from marsad.model.text import split_sentences, tokenize


def key(ents, shift=0):
    return [(e["start"] - shift, e["end"] - shift, e["label"]) for e in ents]


def test_record_format(extractor):
    text = overfit_records()[0]["text"]
    [rec] = extractor.extract(text)
    assert rec["text"] == text
    for e in rec["entities"]:
        assert text[e["start"]:e["end"]] == e["text"]
        assert 0 < e["score"] <= 1 and e["label"] in ("ACTOR", "LOCATION", "CASUALTY")
        if e["label"] == "CASUALTY":
            assert {"count", "approximate", "status"} <= set(e)
    spans_to_tags(tokenize(text), key(rec["entities"]))  # on token boundaries, no overlap
    for r in rec["relations"]:
        assert {"head", "tail", "label", "score"} <= set(r)
        assert 0 <= r["head"] < len(rec["entities"]) and 0 <= r["tail"] < len(rec["entities"])


def test_casualty_fields_on_the_seed(extractor):
    [rec] = extractor.extract("وقتل عشرون مدنيا، بينهم خمسة أطفال، جراء قصف وغارات سورية وروسية على بلدات عدة في محيط مدينة حمص.")
    cas = {e["text"]: e for e in rec["entities"] if e["label"] == "CASUALTY"}
    assert cas["عشرون مدنيا"]["count"] == 20 and cas["عشرون مدنيا"]["status"] == "killed"
    assert cas["خمسة أطفال"]["count"] == 5


def test_whole_article_equals_its_sentences_one_by_one(extractor):
    article = SEED_TXT.read_text(encoding="utf-8")
    [whole] = extractor.extract(article)
    spans = split_sentences(article)
    parts = extractor.extract([article[s:e] for s, e in spans])
    expected = [x for (s, _), rec in zip(spans, parts) for x in key(rec["entities"], -s)]
    assert key(whole["entities"]) == expected
    assert len(whole["entities"]) > 20
    n_rel = sum(len(p["relations"]) for p in parts)
    assert len(whole["relations"]) == n_rel


def test_long_sentence_is_windowed(trained_model):
    small = Extractor.from_pretrained(trained_model, device="cpu", precision="fp32")
    small.settings.max_length = 40  # force several windows per sentence
    big = Extractor.from_pretrained(trained_model, device="cpu", precision="fp32")
    text = " ، ".join(r["text"].rstrip(".") for r in overfit_records()[:3])  # one long sentence
    assert len(split_sentences(text)) == 1
    [a] = small.extract(text)
    [b] = big.extract(text)
    for e in a["entities"]:
        assert text[e["start"]:e["end"]] == e["text"]
    # windows see less context (and this tiny model is overfit to whole sentences), so allow
    # differences, but most entities must agree, including those past the first window
    ka, kb = set(key(a["entities"])), set(key(b["entities"]))
    assert len(ka & kb) >= 0.5 * len(kb)
    assert max(s for s, _, _ in ka & kb) > len(text) * 0.4  # the first window ends near a quarter of the text


def test_decorated_text_gives_the_same_entities_with_original_offsets(extractor):
    plain = overfit_records()[1]["text"]
    decorated = "".join(ch + ("ـ" if ch == "ع" else "") + ("َ" if ch == "ت" else "") for ch in plain)
    decorated = decorated.replace("0", "٠").replace("2", "٢")
    [p] = extractor.extract(plain)
    [d] = extractor.extract(decorated)
    assert [(e["label"]) for e in p["entities"]] == [(e["label"]) for e in d["entities"]]
    tp, td = tokenize(plain), tokenize(decorated)
    assert len(tp) == len(td)
    idx = lambda toks, e: ([t.start for t in toks].index(e["start"]), [t.end for t in toks].index(e["end"]))  # noqa: E731
    assert [idx(tp, e) for e in p["entities"]] == [idx(td, e) for e in d["entities"]]
    for e in d["entities"]:
        assert decorated[e["start"]:e["end"]] == e["text"]


def test_odd_inputs_give_records_not_exceptions(extractor):
    texts = ["", "   ", "🔥🔥🔥", "hello world", "12345 !!!", "ا" * 20000, "\u200fحلب\u200e abc\x00\x07",
             "ﻗﺼﻒ ﺣﻠﺐ", 42, None]
    recs = extractor.extract(texts)
    assert len(recs) == len(texts)
    for t, r in zip(texts, recs):
        if isinstance(t, str):
            assert r["text"] == t and "error" not in r
            for e in r["entities"]:
                assert t[e["start"]:e["end"]] == e["text"]
        else:
            assert "error" in r and r["entities"] == []


def test_int8_runs_int8_linear_layers_on_a_copy(extractor):
    """precision="int8" runs the lean forward with int8 matmuls in every layer but the last,
    leaves the caller's model fp32, and finds nearly the fp32 entities."""
    import torch

    from marsad.model.int8 import RowInt8Linear

    ex = Extractor(extractor.model, extractor.tokenizer, device="cpu", precision="int8")
    layers = ex.backend.fast.layers
    assert all(isinstance(getattr(b, n), RowInt8Linear) for b in layers[:-1] for n in ("qkv", "out", "up", "down"))
    assert not any(isinstance(getattr(layers[-1], n), RowInt8Linear) for n in ("qkv", "out", "up", "down"))
    assert all(p.dtype == torch.float32 for p in extractor.model.parameters())
    texts = [r["text"] for r in overfit_records()]
    want = {(i, *k) for i, r in enumerate(extractor.extract(texts)) for k in key(r["entities"])}
    got = {(i, *k) for i, r in enumerate(ex.extract(texts)) for k in key(r["entities"])}
    assert len(want) > 10 and len(want & got) >= 0.9 * len(want | got), (want ^ got)


@pytest.mark.parametrize("text", ["", " ", "  \n\t \u00a0 "])
def test_empty_and_whitespace_texts_are_records_without_entities(extractor, text):
    """As the transformers pipeline and spaCy do: an empty result, not an error."""
    empty = {"text": text, "entities": [], "relations": []}
    assert extractor.extract(text) == [empty]
    assert extractor.extract([text, "قتل ثلاثة مدنيين في حلب.", text])[::2] == [empty, empty]
    assert list(extractor.extract_iter([("a", text), ("b", text)])) == [("a", empty), ("b", empty)]
    assert extractor.predict_relations([text], [[]]) == [[]]


def test_bad_precision_and_device(extractor):
    """Config errors (ValueErrors) that name the setting and the fix in library terms, never a
    command-line flag."""
    from marsad.model.errors import ConfigError

    cases = [({"precision": "fp8"}, "precision must be one of"), ({"precision": "fp16"}, "needs a CUDA GPU"),
             ({"precision": "onnx-fp32"}, "was removed")]
    if not __import__("torch").cuda.is_available():
        cases.append(({"device": "cuda", "precision": "fp32"}, 'no CUDA GPU is available; use device="cpu"'))
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            Extractor(extractor.model, extractor.tokenizer, **{"device": "cpu", **kwargs})
        assert "--" not in str(err.value)


def test_events_view():
    text = "قتل ثلاثة مدنيين في قصف على حلب. وسيطرت الفصائل على تلبيسة."
    def ent(word, label, **kw):
        s = text.index(word)
        return {"start": s, "end": s + len(word), "label": label, "text": word, **kw}

    rec = {"text": text, "entities": [
        ent("ثلاثة مدنيين", "CASUALTY", count=3, status="killed", approximate=False),
        ent("حلب", "LOCATION"), ent("الفصائل", "ACTOR"), ent("تلبيسة", "LOCATION")],
        "relations": [{"head": 0, "tail": 1, "label": "CASUALTY_IN"}, {"head": 2, "tail": 3, "label": "CONTROLS"}]}
    events = events_from_record(rec, "a1")
    assert [ev["event_types"] for ev in events] == [["casualties"], ["territory_control"]]
    assert events[0]["killed"] == 3 and events[0]["locations"] == ["حلب"]
    assert events[1]["actors"] == ["الفصائل"] and events[1]["sentence"] == "وسيطرت الفصائل على تلبيسة."


def test_html_is_rtl_and_escaped():
    page = render_html([{"id": "<b>1</b>", "text": "<script>alert(1)</script> حلب",
                         "entities": [{"start": 26, "end": 29, "label": "LOCATION", "text": "حلب"}], "relations": []}])
    assert 'dir="rtl"' in page and 'lang="ar"' in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page
    assert '<mark class="LOCATION"' in page


def test_saved_folder_loads_in_transformers_pipeline(trained_model):
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(trained_model), aggregation_strategy="simple", device="cpu")
    text = overfit_records()[0]["text"]
    out = tagger(text)
    assert out and {o["entity_group"] for o in out} <= {"ACTOR", "LOCATION", "CASUALTY"}
    config = json.loads((trained_model / "config.json").read_text())
    assert "auto_map" not in config  # nothing that would need remote code


def test_range_max_equals_masked_max():
    """The relation head's sparse-table range max is exactly the max over the words between
    two entities (zeros when nothing lies between), also when it works in row groups, and its
    training build has the masked max's gradient."""
    import torch

    from marsad.model.modeling import range_max

    g = torch.Generator().manual_seed(0)
    for trial in range(100):
        b, w = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 40, (1,), generator=g))
        words = torch.randn(b, w, 3, generator=g)
        rows = torch.randint(0, b, (20,), generator=g)
        lo, hi = torch.randint(0, w + 1, (20,), generator=g), torch.randint(0, w + 1, (20,), generator=g)
        train = trial % 3 == 0  # the differentiable (training) build of the table
        words.requires_grad_(train)
        got = range_max(words, rows, lo, hi, max_elements=[1 << 24, 50][trial % 2])
        for p in range(20):
            want = words[rows[p], lo[p] : hi[p]].amax(0) if hi[p] > lo[p] else torch.zeros(3)
            assert torch.equal(got[p], want)
        if train:
            (grad,) = torch.autograd.grad(got.sum(), words, allow_unused=True)
            want = torch.stack([words[rows[p], lo[p] : hi[p]].amax(0) if hi[p] > lo[p] else words.new_zeros(3) for p in range(20)])
            (want_grad,) = torch.autograd.grad(want.sum(), words, allow_unused=True)
            zero = torch.zeros_like(words)
            assert torch.allclose(zero if grad is None else grad, zero if want_grad is None else want_grad)


def test_relation_head_reads_the_words_before_a_pair_by_hand():
    """With ``before=2`` a pair's features gain the max of the two words before its first entity
    (fewer at the start of the sentence, zeros at word 0), after the max of the words between."""
    import torch

    from marsad.model.modeling import RelationHead

    words = torch.arange(2 * 8 * 3, dtype=torch.float).reshape(2, 8, 3) * torch.tensor([1.0, -1.0, 0.5])
    head = RelationHead(3, 4, 6, 3, dropout=0.0, before=2)
    assert head.mlp[0].in_features == 6 * 3 + 3 * 32
    head.mlp = torch.nn.Sequential(torch.nn.Identity())  # the head's input features, as they are
    # [batch, head_start, head_end, tail_start, tail_end, head_type, tail_type]
    pairs = torch.tensor([[0, 4, 5, 6, 8, 0, 1], [1, 5, 6, 1, 2, 2, 1], [0, 0, 1, 3, 4, 0, 1]])
    feats = head(words, pairs)
    between, before = feats[:, 12:15], feats[:, 15:18]
    assert torch.equal(between[0], words[0, 5])                       # word 5 lies between 4..5 and 6..8
    assert torch.equal(before[0], torch.maximum(words[0, 2], words[0, 3]))  # words 2-3 precede word 4
    assert torch.equal(before[1], words[1, 0])                        # only word 0 precedes word 1
    assert torch.equal(before[2], torch.zeros(3))                     # nothing precedes word 0
    assert RelationHead(3, 4, 6, 3).mlp[0].in_features == 5 * 3 + 3 * 32  # before=0: the layout of older models


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=0, max_size=120), st.sampled_from([64, 512, 2048]),
       st.integers(1, 40), st.integers(0, 500))
def test_length_batches_cover_in_order_fit_and_beat_greedy(widths, batch_tokens, batch_size, batch_cost):
    """Length-sorted windows are cut into consecutive batches that keep every window once, in
    order, within ``batch_tokens`` (a longer window alone) and ``batch_size``, at a cost (padded
    positions + ``batch_cost`` per batch) no higher than filling each batch greedily."""
    from marsad.model.encoding import Window
    from marsad.model.encoding import length_batches

    windows = [Window(0, 0, 1, [0] * w, [0]) for w in sorted(widths)]
    order = list(range(len(windows)))
    batches = list(length_batches(order, windows, batch_tokens, batch_size, batch_cost))
    assert [k for b in batches for k in b] == order

    def cost(bs):
        return sum(batch_cost + len(b) * max(len(windows[k].input_ids) for k in b) for b in bs)

    for b in batches:
        width = max(len(windows[k].input_ids) for k in b)
        assert len(b) <= batch_size and (len(b) == 1 or width * len(b) <= batch_tokens)
    greedy, cur = [], []
    for k in order:
        w = len(windows[k].input_ids)
        if cur and (len(cur) + 1 > batch_size or w * (len(cur) + 1) > batch_tokens):
            greedy.append(cur)
            cur = []
        cur.append(k)
    greedy += [cur] if cur else []
    assert cost(batches) <= cost(greedy)


def test_extract_leaves_the_garbage_collector_as_it_found_it(extractor):
    """The collector is paused while a chunk is processed, then restored: on when it was on,
    off when the caller had switched it off, also after an error."""
    import gc

    assert gc.isenabled()
    extractor.extract(["قتل ثلاثة مدنيين في قصف على حلب."])
    assert gc.isenabled()
    gc.disable()
    try:
        extractor.extract(["قتل ثلاثة مدنيين في قصف على حلب."])
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(TypeError):
        extractor.extract(b"bytes")
    with pytest.raises(RuntimeError, match="boom"):
        saved = extractor._predict_sentences
        extractor._predict_sentences = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
        try:
            extractor.extract(["نص"])
        finally:
            extractor._predict_sentences = saved
    assert gc.isenabled()


def test_clear_caches_forgets_words_and_changes_nothing(extractor):
    text = "قتل ثلاثة مدنيين في قصف على حلب."
    first = extractor.extract(text)
    assert extractor._subwords
    extractor.clear_caches()
    assert not extractor._subwords
    assert extractor.extract(text) == first


def test_clear_caches_empties_every_cache(extractor):
    from marsad.model import casualty
    from marsad.model.text import normalize_word

    extractor.extract("قتل ثلاثة مدنيين في قصف على حلب")
    casualty.normalize_casualty("ثلاثة مدنيين", before="قتل ")  # as for every CASUALTY span found
    assert normalize_word.cache_info().currsize and casualty._variants.cache_info().currsize
    extractor.clear_caches()
    assert normalize_word.cache_info().currsize == 0 and not extractor._subwords
    assert all(f.cache_info().currsize == 0 for f in (casualty._variants, casualty._word_number, casualty._cue))
