"""From spec words to encoder inputs and back: the one feature builder of training and inference.

Training (``marsad.training.data.featurize``) and the ``Extractor`` build their inputs here,
so the model sees the same features in both (``tests/test_features.py`` checks it):

* :func:`sentence_windows`: words -> normalised sub-words -> windows of at most ``max_length``
  positions (a sentence longer than that is cut into overlapping windows); with a scratch
  vocabulary that carries :data:`CLITIC_MARKERS`, an unknown word with a known stem after a
  proclitic is the stem's token and one marker a proclitic (:func:`clitic_split`);
* :func:`word_spans`: character spans -> word spans;
* :func:`candidate_pairs`: the ordered entity pairs the relation head scores (type-compatible,
  at most :data:`MAX_PAIR_DISTANCE` words apart); training labels them, inference scores them;
* :func:`length_batches` and :func:`pad_windows`: windows -> padded inference batches
  (training pads with ``marsad.training.data.collate``).

Nothing here imports torch: lists in, lists (or numpy arrays) out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .text import normalize_word

__all__ = ["Window", "MAX_PAIR_DISTANCE", "CLITIC_MARKERS", "clitic_split", "sentence_windows", "subword_words",
           "make_windows", "window_labels", "choose_windows", "word_spans", "pair_type_ids", "candidate_pairs",
           "pairs_by_window", "length_batches", "pad_windows"]

#: marker tokens of the proclitics a scratch vocabulary can carry (``model.scratch.clitics``): a word
#: the vocabulary lacks as a whole, but whose stem after a proclitic it has (``بلبنان`` -> ``لبنان``),
#: is read as the stem's token followed by one marker a proclitic, so the stem shares its embedding
#: with its bare form. Punctuation-wrapped, so no text ever tokenizes to a marker.
CLITIC_MARKERS = {c: f"[+{c}]" for c in "وفبلك"}
# proclitic clusters tried in this order (shortest first: strip as little as the vocabulary allows);
# "لل" is ل before an article whose alif is elided (للجزائر = ل + الجزائر)
_CLUSTERS = ("و", "ف", "ب", "ل", "ك", "وب", "ول", "وك", "فب", "فل", "فك")
_ELIDED = ("لل", "ولل", "فلل")

# words between the starts of a pair's entities, at most: corpus relations span a few dozen, and
# entities further apart belong to a run-on text (a scraped page without full stops), not a sentence
MAX_PAIR_DISTANCE = 120


def sentence_windows(tokenizer, sentences: list[list[str]], settings, gazetteer=None,
                     cache: dict | None = None) -> list[list[Window]]:
    """Each sentence's windows (:func:`make_windows`; none for a sentence without words).

    ``sentences`` are lists of spec words; ``settings`` gives ``max_length`` and ``stride``;
    a ``gazetteer`` marks its words with token type 1; ``cache`` is :func:`subword_words`'."""
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for i, (words, (ids, first)) in enumerate(zip(sentences, subword_words(tokenizer, sentences, cache))):
        types = gazetteer.flags(words) if gazetteer is not None else None
        out.append(make_windows(i, ids, first, settings.max_length, settings.stride, cls_id, sep_id, types)
                   if first else [])
    return out


def subword_words(tokenizer, sentences: list[list[str]], cache: dict | None = None) -> list[tuple[list[int], list[int]]]:
    """Sub-word ids (no special tokens) and each word's first sub-word position, per sentence.

    Words are normalised AraBERT-style first. A word the tokenizer drops entirely (control
    characters, an empty normalisation) is replaced by the unknown token so every word keeps a
    position, which is what lets predictions map back to every word's offsets.

    Pre-tokenised input is cut word by word (no sub-word crosses a word boundary), so each
    distinct normalised word is cut once, all of them in one tokenizer call, and the sentences
    are put together from those pieces. ``cache`` (a dict the caller keeps for one tokenizer)
    carries the pieces over to later calls.

    A vocabulary with :data:`CLITIC_MARKERS` reads a word :func:`clitic_split` cuts as its stem's
    token then the markers, with no tokenizer call; ``cache`` then also keeps the vocabulary's
    whole words (under a key no word can be), so clearing it rebuilds them once.
    """
    unk = tokenizer.unk_token or "[UNK]"
    normed = [[normalize_word(w) or unk for w in words] for words in sentences]
    if cache is None:
        cache = {}
    if _CLITICS not in cache:
        cache[_CLITICS] = _clitic_vocab(tokenizer)
    vocab = cache[_CLITICS]
    new = list({w: None for words in normed for w in words if w not in cache})
    if vocab is not None:  # words read as a known stem and proclitic markers need no tokenizer call
        for w in new:
            split = clitic_split(w, vocab)
            if split is not None:
                cache[w] = (vocab[split[0]], *(vocab[CLITIC_MARKERS[c]] for c in split[1]))
        new = [w for w in new if w not in cache]
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


_CLITICS = ("clitic vocabulary",)  # the cache key of _clitic_vocab's answer (never a word: words are str)


def _clitic_vocab(tokenizer) -> dict[str, int] | None:
    """The whole-word tokens of a vocabulary that carries the proclitic markers, else ``None``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or any(backend.token_to_id(m) is None for m in CLITIC_MARKERS.values()):
        return None  # five look-ups, not a copy of the vocabulary (AraBERT's has 64,000 tokens)
    return {t: i for t, i in tokenizer.get_vocab().items() if not t.startswith("##")}


def clitic_split(word: str, vocab) -> tuple[str, str] | None:
    """``(stem, proclitics)`` when ``vocab`` lacks ``word`` but has its stem (3 letters or more)
    after one of the proclitic clusters, the shortest first; else ``None``."""
    if word in vocab or " " in word:
        return None
    for c in _CLUSTERS:
        if word.startswith(c) and len(word) - len(c) >= 3 and word[len(c):] in vocab:
            return word[len(c):], c
    for c in _ELIDED:
        if word.startswith(c) and len(word) - len(c) >= 2 and "ال" + word[len(c):] in vocab:
            return "ال" + word[len(c):], c[:-1]
    return None


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


def window_labels(window: Window, word_labels: list[int], ignore: int = -100) -> list[int]:
    """Per position of ``window``: a word's first sub-word gets its label (``word_labels`` holds
    the whole sentence's), its other sub-words and ``[CLS]``/``[SEP]`` get ``ignore``."""
    out = [ignore] * len(window.input_ids)
    for pos, label in zip(window.word_index, word_labels[window.word_start : window.word_end]):
        out[pos] = label
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


def word_spans(tokens, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Word range ``[start, end)`` of each ``(start, end)`` character span; the spans lie on the
    ``tokens``' boundaries (validated records' entities do)."""
    starts = {t.start: i for i, t in enumerate(tokens)}
    ends = {t.end: i + 1 for i, t in enumerate(tokens)}
    return [(starts[s], ends[e]) for s, e in spans]


def pair_type_ids(settings) -> set[tuple[int, int]]:
    """The (head, tail) entity-type indices of ``settings.pair_types``."""
    labels = list(settings.entity_labels)
    return {(labels.index(h), labels.index(t)) for h, t in settings.pair_types}


def candidate_pairs(entities: list[tuple[int, int, int]], pair_types: set[tuple[int, int]],
                    max_distance: int = MAX_PAIR_DISTANCE) -> list[tuple[int, int]]:
    """The ordered pairs ``(head, tail)`` of ``entities`` (``(word start, word end, type)``)
    the relation head sees, in training and at inference: two different entities whose types
    are one of ``pair_types``, whose starts are at most ``max_distance`` words apart."""
    return [(a, b) for a, (hs, _, ht) in enumerate(entities) for b, (ts, _, tt) in enumerate(entities)
            if a != b and (ht, tt) in pair_types and abs(ts - hs) <= max_distance]


def pairs_by_window(windows: list[Window], entities: list[tuple[int, int, int]],
                    pairs: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Per window, the pairs it trains: each pair goes to the first window that holds both its
    entities whole. At inference a long sentence's words take their states from different
    windows; in training a pair is read from one window, and a pair no window holds (possible
    only in sentences longer than a window) is left out."""
    out: list[list[tuple[int, int]]] = [[] for _ in windows]
    for a, b in pairs:
        lo, hi = min(entities[a][0], entities[b][0]), max(entities[a][1], entities[b][1])
        k = next((k for k, w in enumerate(windows) if w.word_start <= lo and hi <= w.word_end), None)
        if k is not None:
            out[k].append((a, b))
    return out


def length_batches(order: list[int], windows: list[Window], batch_tokens: int, batch_size: int,
                   batch_cost: int) -> Iterator[list[int]]:
    """Consecutive runs of length-sorted windows, each at most ``batch_tokens`` padded positions
    (a longer window alone) and ``batch_size`` rows, cut where they cost least in all: padded
    positions plus ``batch_cost`` positions' worth for every encoder call (dynamic programming;
    a greedy fill pads short windows to long ones when a call covers few sentences)."""
    widths = np.fromiter((len(windows[k].input_ids) for k in order), dtype=np.int64, count=len(order))
    n = len(widths)
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: least cost of windows [0, j)
    cut = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that best split starts
    for j in range(1, n + 1):
        w = int(widths[j - 1])  # the widest window of a batch ending at j
        lo = max(0, j - max(1, min(batch_size, batch_tokens // w)))
        cost = best[lo:j] + w * np.arange(j - lo, 0, -1)
        k = int(cost.argmin())
        best[j], cut[j] = cost[k] + batch_cost, lo + k
    bounds = []
    j = n
    while j > 0:
        bounds.append((int(cut[j]), j))
        j = int(cut[j])
    for i, j in reversed(bounds):
        yield order[i:j]


def pad_windows(windows: list[Window], pad_id: int) -> tuple[np.ndarray, ...]:
    """``(input ids, attention mask, word index, token types)`` of ``windows``, padded."""
    width = max(len(w.input_ids) for w in windows)
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask, types = np.zeros_like(ids), np.zeros_like(ids)
    widx = np.zeros((len(windows), max(len(w.word_index) for w in windows)), dtype=np.int64)
    for r, w in enumerate(windows):
        ids[r, : len(w.input_ids)] = w.input_ids
        mask[r, : len(w.input_ids)] = 1
        widx[r, : len(w.word_index)] = w.word_index
        if w.token_type_ids is not None:
            types[r, : len(w.token_type_ids)] = w.token_type_ids
    return ids, mask, widx, types
