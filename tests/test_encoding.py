"""Word -> sub-word alignment and windows (pure functions)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from marsad.model.encoding import choose_windows, make_windows, window_labels


def test_window_labels_first_subword_only():
    # words of 2, 1 and 3 sub-words:  CLS  w0  w0  w1  w2  w2  w2  SEP
    [w] = make_windows(0, [10, 11, 12, 13, 14, 15], [0, 2, 3], 16, 2, 1, 2)
    assert window_labels(w, [5, 6, 7]) == [-100, 5, -100, 6, 7, -100, -100, -100]


def test_window_labels_of_a_later_window_take_its_words_labels():
    # four one-piece words, two to a window (overlap 1): the windows hold words 0-1, 1-2, 2-3
    windows = make_windows(0, [10, 11, 12, 13], [0, 1, 2, 3], 4, 1, 1, 2)
    assert [(w.word_start, w.word_end) for w in windows] == [(0, 2), (1, 3), (2, 4)]
    assert [window_labels(w, [5, 6, 7, 8]) for w in windows] == [[-100, 5, 6, -100], [-100, 6, 7, -100], [-100, 7, 8, -100]]


def test_single_window_when_it_fits():
    [w] = make_windows(0, [10, 11, 12], [0, 2], max_length=8, stride=1, cls_id=1, sep_id=2)
    assert w.input_ids == [1, 10, 11, 12, 2] and w.word_index == [1, 3]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=60), st.integers(8, 20), st.integers(0, 5))
def test_windows_cover_every_word_and_fit(pieces, max_length, stride):
    first, ids = [], []
    for n in pieces:
        first.append(len(ids))
        ids += [100 + len(first)] * n
    windows = make_windows(0, ids, first, max_length, stride, 1, 2)
    assert windows[0].word_start == 0 and windows[-1].word_end == len(first)
    for a, b in zip(windows, windows[1:]):
        assert b.word_start <= a.word_end and b.word_start > a.word_start  # overlapping, advancing
    for w in windows:
        assert len(w.input_ids) <= max_length
        assert w.input_ids[0] == 1 and w.input_ids[-1] == 2
        for j, word in enumerate(range(w.word_start, w.word_end)):
            assert w.input_ids[w.word_index[j]] == 100 + word + 1  # points at that word's first sub-word
    pick = choose_windows(windows, len(first))
    assert all(k >= 0 for k, _ in pick)


def test_window_token_types_follow_their_words():
    # words of 2, 1 and 3 sub-words; the middle word is a gazetteer hit
    ids, first = [10, 11, 12, 13, 14, 15], [0, 2, 3]
    [w] = make_windows(0, ids, first, 16, 2, 1, 2, word_types=[0, 1, 0])
    assert w.token_type_ids == [0, 0, 0, 1, 0, 0, 0, 0]
    windows = make_windows(0, ids, first, 6, 1, 1, 2, word_types=[0, 1, 0])
    for win in windows:
        assert len(win.token_type_ids) == len(win.input_ids)


def _whole_sentence_subwords(tokenizer, sentences):
    """The reference: each sentence through the tokenizer's own call, dropped words re-encoded as
    the unknown token."""
    from marsad.model.text import normalize_word

    unk, out = tokenizer.unk_token, []
    for words in sentences:
        words = [normalize_word(w) or unk for w in words]
        for _ in range(2):
            enc = tokenizer([words], is_split_into_words=True, add_special_tokens=False)
            first: dict = {}
            for pos, w in enumerate(enc.word_ids(0)):
                first.setdefault(w, pos)
            if len(first) == len(words):
                break
            words = [w if i in first else unk for i, w in enumerate(words)]
        out.append((list(enc["input_ids"][0]), [first[i] for i in range(len(words))]))
    return out


def test_subwords_word_by_word_equal_whole_sentences(extractor):
    """Cutting each distinct word once (and the Extractor's cache of those cuts) changes nothing
    against the tokenizer's whole-sentence call: corpus sentences, words the tokenizer drops
    (control characters, tatweel alone), decorated and unknown words, twice (the second time
    from the cache), and through the tokenizer itself when its backend truncates."""
    import json
    from pathlib import Path

    from marsad.model.encoding import subword_words
    from marsad.model.text import tokenize

    path = Path(__file__).resolve().parents[1] / "data" / "corpus" / "dev.jsonl"
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()[:200]]
    texts += ["قتل \u0640\u0640 ثلاثة \x01 مدنيين", "الـــــرقة ﻻ ٣٥ qwertyuiop", "\u200f\u200e", "١٢٣ مَدَنِيّاً"]
    sentences = [[t.text for t in tokenize(text)] for text in texts]
    want = _whole_sentence_subwords(extractor.tokenizer, sentences)
    assert subword_words(extractor.tokenizer, sentences) == want
    cache: dict = {}
    assert subword_words(extractor.tokenizer, sentences, cache) == want
    assert subword_words(extractor.tokenizer, sentences, cache) == want
    assert all(first for _, first in want[-4:-1])
    backend = extractor.tokenizer.backend_tokenizer  # a backend set to truncate: the tokenizer's own call
    backend.enable_truncation(512)
    try:
        assert subword_words(extractor.tokenizer, sentences, {}) == want
    finally:
        backend.no_truncation()


# --- proclitic markers (model.scratch.clitics) ---------------------------------------------------

def test_clitic_split_by_hand():
    from marsad.model.encoding import clitic_split

    vocab = {"لبنان", "الجزائر", "بغداد", "غزة"}
    assert clitic_split("بلبنان", vocab) == ("لبنان", "ب")
    assert clitic_split("ولبنان", vocab) == ("لبنان", "و")  # the shortest cluster that leaves a known stem
    assert clitic_split("وبغزة", vocab) == ("غزة", "وب")
    assert clitic_split("للجزائر", vocab) == ("الجزائر", "ل")  # ل before an article whose alif is elided
    assert clitic_split("بغداد", vocab) is None  # a known word is never cut
    assert clitic_split("وبغداد", vocab) == ("بغداد", "و")
    assert clitic_split("بحلب", vocab) is None  # unknown stem
    assert clitic_split("ب غزة", vocab) is None  # a normalised word with a space


def _scratch_tokenizer(clitics: bool):
    from marsad.training.scratch import train_wordpiece

    texts = ["قصفت القوات لبنان وغزة", "في لبنان وغزة والجزائر", "الجزائر لبنان غزة"] * 3
    return train_wordpiece(texts, 200, clitics=clitics)


def test_clitic_words_read_as_stem_then_markers(tmp_path):
    from marsad.model.encoding import CLITIC_MARKERS, subword_words
    from marsad.model.tokenizer_io import load_tokenizer

    tok = _scratch_tokenizer(True)
    tok.save_pretrained(str(tmp_path))
    tok = load_tokenizer(tmp_path)  # the markers survive a save and load
    v = tok.get_vocab()
    [(ids, first)] = subword_words(tok, [["بلبنان", "قصفت", "وبغزة", "للجزائر"]])
    assert ids == [v["لبنان"], v[CLITIC_MARKERS["ب"]], v["قصفت"], v["غزة"], v[CLITIC_MARKERS["و"]],
                   v[CLITIC_MARKERS["ب"]], v["الجزائر"], v[CLITIC_MARKERS["ل"]]]
    assert first == [0, 2, 3, 6]  # each word is labelled on its stem, which it shares with the bare word
    # without the markers in its vocabulary the same words are plain WordPiece
    plain = _scratch_tokenizer(False)
    assert not any(m in plain.get_vocab() for m in CLITIC_MARKERS.values())
    [(ids, _)] = subword_words(plain, [["بلبنان"]])
    assert ids == plain(["بلبنان"], is_split_into_words=True, add_special_tokens=False)["input_ids"]


def test_no_text_tokenizes_to_a_marker():
    from marsad.model.encoding import CLITIC_MARKERS

    tok = _scratch_tokenizer(True)
    markers = {tok.convert_tokens_to_ids(m) for m in CLITIC_MARKERS.values()}
    for text in CLITIC_MARKERS.values():
        assert not markers & set(tok(text, add_special_tokens=False)["input_ids"])


def test_config_key_puts_the_markers_in_a_new_model(tmp_path):
    """``model.scratch.clitics: true`` reaches the vocabulary ``build_model`` learns; off, none."""
    from conftest import overfit_records, tiny_config
    from marsad.model.encoding import CLITIC_MARKERS
    from marsad.training.checkpoint import build_model

    records = overfit_records()
    for on in (True, False):
        config = tiny_config(tmp_path, records, model__scratch__clitics=on)
        model, tok, _ = build_model(config, {"train": records}, log=lambda *a: None)
        vocab = tok.get_vocab()
        assert all(m in vocab for m in CLITIC_MARKERS.values()) is on
        assert model.config.vocab_size == len(tok)
