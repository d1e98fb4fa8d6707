"""From spec words to encoder inputs and back: normalisation, sub-word alignment, windows.

Everything here is pure (no torch): lists in, lists out, so it is easy to test and shared
by training and inference, which therefore see exactly the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .text import normalize_word

__all__ = ["Window", "subword_words", "align_labels", "make_windows", "choose_windows"]


def subword_words(tokenizer, sentences: list[list[str]], cache: dict | None = None) -> list[tuple[list[int], list[int]]]:
    """Sub-word ids (no special tokens) and each word's first sub-word position, per sentence.

    Words are normalised AraBERT-style first. A word the tokenizer drops entirely (control
    characters, an empty normalisation) is replaced by the unknown token so every word keeps a
    position, which is what lets predictions map back to every word's offsets.

    Pre-tokenised input is cut word by word (no sub-word crosses a word boundary), so each
    distinct normalised word is cut once, all of them in one tokenizer call, and the sentences
    are put together from those pieces. ``cache`` (a dict the caller keeps for one tokenizer)
    carries the pieces over to later calls.
    """
    unk = tokenizer.unk_token or "[UNK]"
    normed = [[normalize_word(w) or unk for w in words] for words in sentences]
    if cache is None:
        cache = {}
    new = list({w: None for words in normed for w in words if w not in cache})
    if unk not in cache and unk not in new:
        new.append(unk)
    if new:  # all new words as one pre-tokenised sequence: one call, cut back by word index
        pieces: list[list[int]] = [[] for _ in new]
        for i, w in zip(*_encode_pretokenized(tokenizer, new)):
            if w is not None:
                pieces[w].append(i)
        cache.update(zip(new, map(tuple, pieces)))
    unk_ids = cache[unk]
    out: list[tuple[list[int], list[int]]] = []
    for words in normed:
        ids: list[int] = []
        first = []
        for w in words:
            first.append(len(ids))
            ids += cache[w] or unk_ids  # a word the tokenizer drops: the unknown token
        out.append((ids, first))
    return out


def _encode_pretokenized(tokenizer, words: list[str]) -> tuple[list[int], list[int | None]]:
    """Sub-word ids and their word indices for one long pre-tokenised sequence (no specials).

    Through the fast tokenizer's backend when it neither truncates nor pads (transformers' own
    call would warn that the sequence is longer than the model's limit: it is not a model
    input), else through the tokenizer itself."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and backend.truncation is None and backend.padding is None:
        enc = backend.encode(words, is_pretokenized=True, add_special_tokens=False)
        return enc.ids, enc.word_ids
    enc = tokenizer([words], is_split_into_words=True, add_special_tokens=False)
    return enc["input_ids"][0], enc.word_ids(0)


def align_labels(word_ids: list[int | None], word_labels: list[int], ignore: int = -100) -> list[int]:
    """Sub-word labels: a word's first sub-word gets its label, the rest and specials ``ignore``.

    ``word_ids`` is the tokenizer's per-position word index (``None`` for special tokens).
    """
    out = []
    prev = None
    for w in word_ids:
        out.append(ignore if w is None or w == prev else word_labels[w])
        prev = w if w is not None else prev
    return out


@dataclass
class Window:
    """A slice of a sentence that fits the encoder: words ``[word_start, word_end)``."""

    sentence: int
    word_start: int
    word_end: int
    input_ids: list[int]  # with [CLS] ... [SEP]
    word_index: list[int]  # position of each word's first sub-word in input_ids
    token_type_ids: list[int] | None = None  # per position; 1 marks gazetteer words (see gazetteer.py)


def make_windows(
    sentence: int, ids: list[int], first: list[int], max_length: int, stride: int, cls_id: int, sep_id: int,
    word_types: list[int] | None = None,
) -> list[Window]:
    """Cut a sentence's sub-words into windows of at most ``max_length`` positions.

    Windows break between words and overlap by ``stride`` words (fewer if a window would not
    advance), so every word is seen with context on both sides in at least one window.
    """
    n = len(first)
    budget = max_length - 2
    bounds = first + [len(ids)]
    types = None
    if word_types is not None:  # every sub-word takes its word's type
        types = [word_types[w] for w in range(n) for _ in range(bounds[w + 1] - bounds[w])]
    if len(ids) <= budget:
        tt = None if types is None else [0, *types, 0]
        return [Window(sentence, 0, n, [cls_id, *ids, sep_id], [f + 1 for f in first], tt)]
    windows = []
    start = 0
    while True:
        end = start + 1
        while end < n and bounds[end + 1] - bounds[start] <= budget:
            end += 1
        s_pos, e_pos = bounds[start], bounds[end]
        cut = min(e_pos, s_pos + budget)  # a single huge word is cut to fit
        tt = None if types is None else [0, *types[s_pos:cut], 0]
        windows.append(Window(sentence, start, end, [cls_id, *ids[s_pos:cut], sep_id],
                              [first[w] - s_pos + 1 for w in range(start, end)], tt))
        if end >= n:
            return windows
        start = max(start + 1, end - min(stride, (end - start) // 2))  # overlap at most half a window


def choose_windows(windows: list[Window], n_words: int) -> list[tuple[int, int]]:
    """For each word, ``(window number, position in that window's words)``: the window where
    the word sits furthest from an edge, so its context is the fullest."""
    best: list[tuple[int, int, int]] = [(-1, -1, -1)] * n_words
    for k, w in enumerate(windows):
        for j, word in enumerate(range(w.word_start, w.word_end)):
            margin = min(word - w.word_start, w.word_end - 1 - word)
            if margin > best[word][0]:
                best[word] = (margin, k, j)
    return [(k, j) for _, k, j in best]
