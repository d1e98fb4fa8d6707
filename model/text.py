"""Arabic text handling with exact character offsets.

Three pure pieces that everything else builds on:

* :func:`tokenize` - the word tokeniser of the annotation spec (``ANNOTATION.md`` "Tokens"):
  a token is a maximal run of letters, digits, combining marks, tatweel and underscore; any
  other non-space character is a token by itself. Clitics stay attached (``بحمص`` is one token).
* :func:`normalize_word` - AraBERT v02's normalisation (``ArabertPreprocessor``) of one word,
  applied *per word* so that a prediction on the normalised word maps back to the word's
  offsets in the original text.
* :func:`split_sentences` - sentence spans of an article (line breaks and sentence-final
  punctuation), as offsets into the article.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import regex

__all__ = ["Token", "tokenize", "normalize_word", "normalize_text", "split_sentences", "PROCLITICS", "proclitic_variants",
           "fold_word"]

# Proclitics that attach to a name (conjunction, preposition), longest first: بحلب, وللرقة,
# فبغداد. One list for the gazetteer's matching and the augmentation's mention swaps.
PROCLITICS = ("وب", "ول", "فب", "فل", "وك", "و", "ف", "ب", "ل", "ك")


def proclitic_variants(word: str) -> list[str]:
    """The word, then the word without each proclitic it may carry, leaving at least two letters
    (``بحمص`` -> ``حمص``; ``للرقة`` -> ``لرقة``, ``الرقة``: a ``ل`` before ``ال`` eats its alef)."""
    out = [word]
    for c in PROCLITICS:
        rest = word[len(c):]
        if word.startswith(c) and len(rest) >= 2:
            out.append(rest)
            if c.endswith("ل") and rest.startswith("ل"):
                out.append("ا" + rest)
    return list(dict.fromkeys(out))

# Letters (tatweel U+0640 is category Lm), decimal digits, combining marks, underscore. "Space"
# is what Python's str.isspace() calls space (that includes the separators U+001C-U+001F).
_TOKEN_RE = regex.compile(r"[\p{L}\p{Nd}\p{M}_]+|[^\s\x1c-\x1f]", regex.V1)


@dataclass(frozen=True)
class Token:
    """One word token: ``text == source[start:end]``."""

    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into spec tokens with character offsets (end exclusive)."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


# --- AraBERT v02 normalisation ------------------------------------------------------------
# The rules of ``ArabertPreprocessor(model_name="bert-base-arabertv02")._preprocess_v2`` in
# the ``arabert`` package (aub-mind/arabert, ``arabert/preprocess.py``), written down here and
# applied per word, so that a prediction on the normalised word maps back to the word's offsets
# in the original text. In its order:
#   1. strip tashkeel (pyarabic: U+064B-U+0652) and tatweel (U+0640);
#   2. Arabic-Indic digits U+0660-U+0669 -> 0-9;
#   3. a non-digit repeated 3+ times -> twice (``(\D)\1{2,}``): "ههههه" -> "هه", "1000" stays;
#   4. spaces around every character that is not 0-9, an Arabic letter (U+0621-U+063A,
#      U+0641-U+064A), U+0660-U+0669, a-z, A-Z, "[" or "]"; and between digits and Arabic
#      letters ("25شهيدا" -> "25 شهيدا");
#   5. "/" -> "-";
#   6. every character outside REJECTED_CHARS_REGEX's allowed set -> a space (emoji, U+FE0F,
#      Greek, accented Latin, Persian letters, "&", "•" ...).
# The differences from it are deliberate; tests/test_arabert_parity.py compares the two on the
# project's data and on the real text in ../shared/data and allows only these:
#   a. links, e-mails and @mentions: the preprocessor writes [رابط] / [بريد] / [مستخدم] for the
#      whole link; here each word of a link is read as written (a per-word rule cannot see the
#      link, and every word keeps its own offsets);
#   b. a word the preprocessor deletes entirely (an emoji, a zero-width joiner, "&") becomes the
#      tokenizer's unknown token: every word keeps one position so its tag maps back to it;
#   c. runs of punctuation ("!!!", "...") are separate words in the spec, each kept; the
#      preprocessor's step 3 shortens the run to two;
#   d. marks the preprocessor keeps or splits a word at are dropped, so they never split a word:
#      U+0610-U+061A, U+0653-U+065F, superscript alef U+0670, Quranic marks U+06D6-U+06ED (a
#      decomposed alef + maddah / hamza is composed first: "ا" + U+0653 -> "آ");
#   e. Persian digits U+06F0-U+06F9 -> 0-9, and Persian kaf / yeh (U+06A9, U+06CC) -> ك / ي:
#      the preprocessor deletes them, splitting the word;
#   f. Arabic presentation forms (U+FB50-U+FDFF, U+FE70-U+FEFF) are decomposed (NFKC) instead
#      of deleted;
#   g. HTML is read as given: character references ("&quot;") are not unescaped and markup
#      ("<b>", "<algorithm>") is not removed.
_DIACRITICS = "".join(
    chr(c)
    for r in ((0x0610, 0x061A), (0x064B, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06DC), (0x06DF, 0x06E8), (0x06EA, 0x06ED))
    for c in range(r[0], r[1] + 1)
)
_STRIP = str.maketrans("", "", _DIACRITICS + "\u0640")
# Arabic-Indic (U+0660..) and Extended Arabic-Indic (Persian, U+06F0..) digits -> ASCII; Persian
# kaf and yeh -> Arabic kaf and yeh.
_DIGITS = str.maketrans({**{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06F0 + i): str(i) for i in range(10)},
                         "\u06A9": "\u0643", "\u06CC": "\u064A", "/": "-"})
_COMPOSE = re.compile("[\u0653-\u0655]")  # combining maddah / hamza above / hamza below
_PRESENTATION = re.compile("[\uFB50-\uFDFF\uFE70-\uFEFF]")
_ELONGATION = re.compile(r"(\D)\1{2,}")
# Step 6: the characters ArabertPreprocessor keeps (its REJECTED_CHARS_REGEX, complemented).
_REJECTED = re.compile(
    "[^0-9\u0621-\u063A\u0640-\u066C\u0671-\u0674a-zA-Z\\[\\]!\"#$%'()*+,.:;\\-<=·>?@\\\\^_`{|}~—٪’،؟୍“؛”ۚ»«–…‘\\s]"
)
_SPACED = re.compile("([^0-9\u0621-\u063A\u0641-\u064A\u0660-\u0669a-zA-Z\\[\\]\\s])")
_DIGIT_LETTER = re.compile("(?<=[0-9])(?=[\u0621-\u063A\u0641-\u064A])|(?<=[\u0621-\u063A\u0641-\u064A])(?=[0-9])")
# ... and the preprocessor's own substitutions for it, which also space the digits' other side
# ("TV9بهارات" -> "TV 9 بهارات")
_DIGITS_LETTERS = re.compile("([0-9]+)([\u0621-\u063A\u0641-\u064A\u0660-\u066C]+)")
_LETTERS_DIGITS = re.compile("([\u0621-\u063A\u0641-\u064A\u0660-\u066C]+)([0-9]+)")
# Unpaired UTF-16 surrogates (from JSON like "\ud800") are not encodable text: the sub-word
# tokenizer rejects them, so they become U+FFFD (one code point for one, offsets unchanged).
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN = regex.compile(r"[\u0621-\u063A\u0641-\u064A0-9a-zA-Z]*")  # most words: nothing to do


@functools.lru_cache(maxsize=1 << 17)  # news repeats its words: most calls are look-ups
def normalize_word(word: str) -> str:
    """Normalise one word the way AraBERT v02's preprocessor does (see the rules above).

    The result may hold spaces (the preprocessor splits "25شهيدا" and "ٱلله"), and may be
    empty (an emoji, a word of tatweel alone): callers substitute the tokenizer's unknown token.
    """
    if _PLAIN.fullmatch(word) and not _mixed_digits(word):
        return _ELONGATION.sub(r"\1\1", word)
    if _PRESENTATION.search(word):
        word = _PRESENTATION.sub(lambda m: unicodedata.normalize("NFKC", m.group()), word)
    if _COMPOSE.search(word):
        word = unicodedata.normalize("NFC", word)
    word = word.translate(_STRIP).translate(_DIGITS)
    word = _ELONGATION.sub(r"\1\1", word)
    word = _SPACED.sub(r" \1 ", word)
    word = _LETTERS_DIGITS.sub(r" \1 \2 ", _DIGITS_LETTERS.sub(r" \1 \2 ", word))
    word = _SURROGATE.sub("\ufffd", word)
    word = _REJECTED.sub(" ", word)
    return " ".join(word.split())


_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ؤ": "و", "ئ": "ي", "ى": "ي", "ة": "ه"})


def fold_word(word: str) -> str:
    """The matching form of one word: :func:`normalize_word`, then hamza, alef maqsura and teh
    marbuta folded (``غزة``, ``غزه`` -> ``غزه``; ``إدلب`` -> ``ادلب``), as real posts spell them
    either way. The one folding of the geocoder, dates and event cues (the gazetteer keeps a
    lighter key: see ``gazetteer.py``)."""
    return normalize_word(word).translate(_FOLD)


def _mixed_digits(word: str) -> bool:
    return _DIGIT_LETTER.search(word) is not None


def normalize_text(text: str) -> str:
    """Normalise every token of ``text`` and join them with single spaces."""
    return " ".join(w for w in (normalize_word(t.text) for t in tokenize(text)) if w)


# --- Sentence splitting --------------------------------------------------------------------
# A sentence ends at a line break, or after . ! ? ؟ … (and any closing quotes/brackets) when
# whitespace follows. A full stop between digits (3.5) never ends a sentence.
_SENT_END = re.compile(r"(?:(?<!\d)[.!?؟…]+|(?<=\d)[!?؟…]+|(?<=\d)\.(?!\d))[\"'»”)\]]*(?=\s)|\n+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` offsets of the sentences of ``text``, whitespace trimmed.

    Empty stretches are skipped, so ``text[start:end]`` is never empty or padded.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _SENT_END.finditer(text):
        end = m.start() if m.group().startswith("\n") else m.end()
        spans.append((pos, end))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out
