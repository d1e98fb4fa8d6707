"""marsad's per-word normalisation against AraBERT's own preprocessor.

``ArabertPreprocessor(model_name="bert-base-arabertv02")`` (the ``arabert`` package, a test
extra) is what AraBERT v0.2 was pre-trained on. Both sides are compared where it matters, on the
pieces that reach WordPiece (BERT's normaliser and pre-tokenizer, as the hub tokenizer applies
them): marsad's pieces are those of every spec word normalised on its own. Every difference must
be one of the deliberate ones listed (and explained) in ``model/text.py``.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from marsad.model.text import normalize_word, split_sentences, tokenize

arabert = pytest.importorskip("arabert.preprocess", reason="the arabert test extra is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MARKS = set(map(chr, [*range(0x0610, 0x061B), *range(0x0653, 0x0660), 0x0670, *range(0x06D6, 0x06EE)]))
PERSIAN = set(map(chr, [*range(0x06F0, 0x06FA), 0x06A9, 0x06CC]))


def _is_presentation(c: str) -> bool:
    return 0xFB50 <= ord(c) <= 0xFDFF or 0xFE70 <= ord(c) <= 0xFEFF


@pytest.fixture(scope="module")
def pieces():
    from tokenizers import normalizers, pre_tokenizers

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    return lambda s: [p for p, _ in pre.pre_tokenize_str(norm.normalize_str(s))]


def _texts() -> list[str]:
    texts = []
    for f in sorted((ROOT / "data").glob("*/*.jsonl")) + [ROOT / "data" / "seed.jsonl"]:
        if f.parent.name in ("corpus", "real") or f.name == "seed.jsonl":
            texts += [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    if SHARED.is_dir():  # the real text in ../shared/data, reserved evaluation text left out
        from marsad.training.realtext import unlabelled_texts

        texts += unlabelled_texts(SHARED)
    return texts


LINK = re.compile(r"(?:https?://|www\.)\S+|\S+\.(?:com|ly|io|al|me|be|cn|ms|in|tr|fr|il|uk)\b\S*|@\w+")


def _reason(text: str, a: list[str], m: list[str], tokens: list) -> str | None:
    """Which of model/text.py's deliberate differences (a-g) explains one differing stretch."""
    words = [t.text for t in tokens]
    links = [x.span() for x in LINK.finditer(text)]
    if any(p in ("رابط", "مستخدم", "بريد") for p in a) or any(s <= t.start < e for t in tokens for s, e in links):
        return "a: link, e-mail or mention read as written"
    if not a and m and all(p == "[UNK]" for p in m):
        return "b: a deleted word keeps a position"
    if not a and len(set(m)) == 1 and len(m[0]) == 1 and not m[0].isalnum():
        return "c: punctuation run kept"
    if not a and all(p == "[UNK]" or (len(p) == 1 and not p.isalnum()) for p in m):
        return "b+c: deleted words between kept punctuation"
    chars = set("".join(words))
    if chars & MARKS or chars & PERSIAN or any(map(_is_presentation, chars)):
        return "d-f: marks, Persian letters, presentation forms"
    if ("&" in "".join(words) and html.unescape(text) != text) or ("<" in words and ">" in words):
        return "g: HTML read as given"
    return None


def test_normalisation_matches_arabert_preprocessor(pieces):
    ap = arabert.ArabertPreprocessor(model_name="bert-base-arabertv02")
    texts = _texts()
    sentences = sum(len(split_sentences(t)) for t in texts)
    assert sentences >= 5000, sentences
    reasons, unexplained, same_words = Counter(), [], 0
    for text in texts:
        a = pieces(ap.preprocess(text))
        m, source = [], []
        for k, tok in enumerate(tokenize(text)):
            ps = pieces(normalize_word(tok.text)) or ["[UNK]"]
            m += ps
            source += [tok] * len(ps)
        if a == m:
            same_words += len(m)
            continue
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, m, autojunk=False).get_opcodes():
            if op == "equal":
                same_words += i2 - i1
                continue
            words = source[max(j1 - 1, 0):j2 + 1]
            why = _reason(text, a[i1:i2], m[j1:j2], words)
            if why is None:
                unexplained.append((" ".join(a[i1:i2]), " ".join(m[j1:j2]), text[:80]))
            reasons[why] += 1
    assert not unexplained, unexplained[:20]
    # the deliberate differences are rare next to the pieces that agree
    assert sum(reasons.values()) < 0.01 * same_words, (reasons, same_words)


@pytest.mark.parametrize("word, expected", [
    ("1000", "1000"),            # digits are never shortened (only a repeated non-digit is)
    ("ههههه", "هه"),
    ("25شهيدا", "25 شهيدا"),      # digits and Arabic letters are split
    ("قُتِلَ", "قتل"),
    ("حمـــاس", "حماس"),
    ("٣٥", "35"),
    ("۱۲", "12"),               # Persian digits (deleted by the preprocessor: difference e)
    ("کی", "كي"),
    ("ﻻ", "لا"),                # presentation form (difference f)
    ("😀", ""),                 # deleted: the caller puts the unknown token there (difference b)
    ("/", "-"),
    ("TV9بهارات", "TV 9 بهارات"),
    ("ٱلله", "ٱ لله"),
])
def test_normalize_word_examples(word, expected, pieces):
    assert normalize_word(word) == expected
    ap = arabert.ArabertPreprocessor(model_name="bert-base-arabertv02")
    if word not in ("۱۲", "کی", "ﻻ"):  # the deliberate differences
        assert pieces(normalize_word(word)) == pieces(ap.preprocess(word))


def test_offsets_stay_exact_when_words_are_split_or_deleted(extractor):
    text = "قتل 25شهيدا 😀 في #غزة_الآن https://t.co/x ﻻ ۱۲ ٱلله حمـ.ـاس، وأُصيب ١٠٠٠ آخرون."
    [rec] = extractor.extract(text)
    assert rec["text"] == text
    for e in rec["entities"]:
        assert text[e["start"]:e["end"]] == e["text"]
    assert [t.text for t in tokenize(text)] == [text[t.start:t.end] for t in tokenize(text)]
