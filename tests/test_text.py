"""The spec tokeniser, normalisation and sentence splitting."""

from hypothesis import given, settings
from hypothesis import strategies as st

from marsad.model.text import normalize_text, normalize_word, split_sentences, tokenize


def words(text):
    return [t.text for t in tokenize(text)]


def test_clitics_stay_attached_and_punctuation_splits():
    assert words("قصف بحمص، وتلبيسة.") == ["قصف", "بحمص", "،", "وتلبيسة", "."]
    assert words('تنظيم "داعش"') == ["تنظيم", '"', "داعش", '"']


def test_hashtags_split_into_symbol_and_word():
    assert words("#داعش #أبو_محمد") == ["#", "داعش", "#", "أبو_محمد"]


def test_diacritics_tatweel_and_digits_are_word_characters():
    assert words("قُتِلَ ٣ أطفالـــ 20") == ["قُتِلَ", "٣", "أطفالـــ", "20"]


def test_emoji_and_symbols_are_single_tokens():
    assert words("حلب🔥🔥!") == ["حلب", "🔥", "🔥", "!"]


def test_offsets_slice_the_text():
    text = "  وقتل عشرون مدنيا،\tبينهم خمسة أطفال "
    for t in tokenize(text):
        assert text[t.start : t.end] == t.text


def test_normalize_word_arabert_steps():
    assert normalize_word("قُتِلَ") == "قتل"
    assert normalize_word("الجيـــش") == "الجيش"
    assert normalize_word("٣٠") == "30"
    assert normalize_word("۱۲") == "12"
    assert normalize_word("ﻻ") == "لا"  # presentation-form ligature
    assert normalize_word("هههههه") == "هه"
    assert normalize_word("ـــ") == ""


def test_normalize_text_joins_normalised_tokens():
    assert normalize_text("قُتِلَ ٣ أطفالـــ.") == "قتل 3 أطفال ."


def test_split_sentences():
    text = "قتل ثلاثة. وأصيب خمسة! هل انسحب؟\nعنوان\n\n3.5 كيلومتر"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["قتل ثلاثة.", "وأصيب خمسة!", "هل انسحب؟", "عنوان", "3.5 كيلومتر"]


def test_split_sentences_keeps_closing_quotes():
    text = 'قال: "انسحبنا." ثم غادر.'
    assert [text[s:e] for s, e in split_sentences(text)] == ['قال: "انسحبنا."', "ثم غادر."]


def test_split_sentences_empty():
    assert split_sentences("") == []
    assert split_sentences(" \n\t ") == []


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_tokenises_with_valid_offsets(text):
    prev = 0
    for t in tokenize(text):
        assert prev <= t.start < t.end <= len(text)
        assert text[t.start : t.end] == t.text
        assert not t.text.isspace()
        prev = t.end
    for s, e in split_sentences(text):
        assert 0 <= s < e <= len(text)
    for t in tokenize(text):
        normalize_word(t.text)
