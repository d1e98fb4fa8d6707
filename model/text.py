"""Arabic text handling with exact character offsets.

Three pure pieces that everything else builds on:

* :func:`tokenize` - the word tokeniser of the annotation spec (``ANNOTATION.md`` "Tokens"):
  a token is a maximal run of letters, digits, combining marks, tatweel and underscore; any
  other non-space character is a token by itself. Clitics stay attached (``بحمص`` is one token).
* :func:`normalize_word` - AraBERT v02-style normalisation of one word (diacritics, tatweel,
  Arabic-Indic digits, presentation forms, elongation), applied *per word* so that a prediction
  on the normalised word maps back to the word's offsets in the original text.
* :func:`split_sentences` - sentence spans of an article (line breaks and sentence-final
  punctuation), as offsets into the article.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import regex

__all__ = ["Token", "tokenize", "normalize_word", "normalize_text", "split_sentences"]

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


# --- AraBERT v02-style normalisation -------------------------------------------------------
# Harakat, Quranic annotation marks, superscript alef; all removed like ArabertPreprocessor's
# strip_tashkeel. Tatweel (U+0640) is removed like strip_tatweel.
_DIACRITICS = "".join(
    chr(c)
    for r in ((0x0610, 0x061A), (0x064B, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06DC), (0x06DF, 0x06E8), (0x06EA, 0x06ED))
    for c in range(r[0], r[1] + 1)
)
_STRIP = str.maketrans("", "", _DIACRITICS + "\u0640")
# Arabic-Indic (U+0660..) and Extended Arabic-Indic (Persian, U+06F0..) digits -> ASCII.
_DIGITS = str.maketrans({**{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06F0 + i): str(i) for i in range(10)}})
_PRESENTATION = re.compile("[\uFB50-\uFDFF\uFE70-\uFEFF]")
_ELONGATION = re.compile(r"(\w)\1{2,}")
# Unpaired UTF-16 surrogates (from JSON like "\ud800") are not encodable text: the sub-word
# tokenizer rejects them, so they become U+FFFD (one code point for one, offsets unchanged).
_SURROGATE = re.compile("[\ud800-\udfff]")


@functools.lru_cache(maxsize=1 << 17)  # news repeats its words: most calls are look-ups
def normalize_word(word: str) -> str:
    """Normalise one word the way AraBERT v02's preprocessor does (the steps that matter).

    Presentation forms are decomposed (NFKC, only for those blocks), diacritics and tatweel
    dropped, Eastern digits mapped to ASCII, and letters repeated three times or more reduced
    to two; unpaired surrogates become U+FFFD. The result may be empty (a word of tatweel
    alone); callers substitute the tokenizer's unknown token then.
    """
    presentation = _PRESENTATION.search(word) is not None
    if presentation:
        word = _PRESENTATION.sub(lambda m: unicodedata.normalize("NFKC", m.group()), word)
    word = word.translate(_STRIP).translate(_DIGITS)
    if presentation:  # isolated-form harakat decompose to space + mark: no stray spaces
        word = " ".join(word.split())
    if _SURROGATE.search(word):
        word = _SURROGATE.sub("\ufffd", word)
    return _ELONGATION.sub(r"\1\1", word)


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
