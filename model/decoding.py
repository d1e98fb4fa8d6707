"""From model outputs to record parts: tag probabilities -> entities, entity pairs -> relations.

:class:`Decoder` holds one model's label sets. For a batch of whole sentences it takes the best
valid IOB2 sequence (Viterbi) of each, mends span cuts a small tagger makes on real text
(:func:`repair_tags`), turns its spans into entity dicts with offsets into the sentence (CASUALTY
spans get ``count``/``approximate``/``status``), and scores the sentence's
:func:`~marsad.model.encoding.candidate_pairs` with the relation head.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import torch

from .casualty import normalize_casualty
from .encoding import Window, candidate_pairs, choose_windows, pair_type_ids, word_spans
from .gazetteer import GENERIC_HEADS
from .schema import NO_RELATION
from .tags import viterbi_iob2_batch
from .text import normalize_word, proclitic_variants

__all__ = ["Decoder", "merge_windows", "repair_tags"]

# a definite nisba adjective (الإيرانية, والسوري, الاسرائيليين): in the training data an ACTOR
# followed by one takes it in (الحكومة الإيرانية) in 2,382 of 2,435 cases; never one after ب or ل
# (بالمدفعية, للصحفيين: 0 of 14), so those are not read as one
_NISBA = re.compile(r"^(?:ال|وال)\w{2,}(?:ي|ية|يه|يون|يين|يان|يتين)$")
# evaluative adjectives of that shape stay outside an ACTOR (the spec: ميليشيا الحوثي الإرهابية)
_EVALUATIVE = re.compile(r"(?:ارهاب|إرهاب|ناز|اجرام|إجرام|فاش|دمو|همج|وحش)(?:ي|ية|يه|يون|يين|يان|يتين)$")

# names a nisba adjective follows outside the ACTOR (حماس الفلسطينية, إسرائيل المعادية, حزب الله اللبناني):
# in the training data 29 of 30 times, with a proclitic or without
_NO_NISBA = frozenset(("حماس", "اسرائيل", "الله", "طهران"))
# head nouns of a construct that names a force or body (حركة حماس, قوات العدو, وزارة الدفاع): in the
# data an ACTOR that begins with one holds more than it in 1,937 of 1,944 cases (after a proclitic)
_HEADS = frozenset("حركة حزب منظمة تنظيم جماعة كتائب مقاتلي مقاتلو مسلحي مسلحو قوات جيش عناصر جنود ميليشيا "
                   "ميليشيات مليشيا مليشيات فصائل جبهة سرايا لواء الوية كتيبة فرقة جهاز وزارة حكومة قوي تحالف "
                   "ائتلاف شرطة وحدة وحدات فيلق سلاح قوة هيئة مجموعة مجموعات حرس ادارة سلطات خلايا طيران نشطاء "
                   "مجلس".split())
# what may sit between such a head and the name it heads (لحركة «الجهاد الإسلامي», حركة "حماس")
_QUOTES = frozenset('"«»“”\'')
# words a head never takes as its name (قوات من الجيش, قوات إضافية is no name either, but the tagger's
# lone head is wrong both ways)
_NOT_NAMES = frozenset("من في علي الي عن مع او ثم قد لا لم لن ان التي الذي الذين هذه هذا تلك ذلك كل بعض".split())
# a continent after a direction word is one place name (شرق أفريقيا, غرب آسيا): in the data the
# direction is inside the span in 42 of 51 cases (unlike a country's: شمال [سوريا])
_DIRECTIONS = frozenset("شمال جنوب شرق غرب وسط".split())
_CONTINENT = re.compile(r"^(?:ا|أ|إ|آ)(?:فريقيا|سيا|وروبا|وربا|مريكا|ميركا)$")
# a span of nothing but these (or punctuation) names nothing: الى, كان, كل, و, أحد, أكثر tagged alone
_EMPTY = _NOT_NAMES | frozenset("و ف ما كان كانت كلا كلاهما احد اكثر الكثير نحو حوالي بين".split())
# a LOCATION that ends in one of these takes the definite word after it (البحر الميت, الشرق الأوسط,
# الضفة الغربية): in the training data that word is inside the place 172 times in 175
_GEO_HEADS = frozenset("البحر المحيط الخليج الشرق الضفة الجزيرة المسجد الصحراء".split())
# a definite number after a CASUALTY belongs to it (المراقبين الأربعة): inside in 18 of 18 cases in the data
_DEF_NUMBERS = frozenset("الاثنين الاثنان الثلاثة الاربعة الخمسة الستة السبعة الثمانية التسعة العشرة".split())
# a unit's number belongs to it (الكتيبة 202, لواء المظليين 35): in the data digits after an ACTOR
# that holds one of these are inside it 74 times in 75
_UNITS = frozenset("كتيبة لواء فرقة قوي حركة وحدة سرية الكتيبة اللواء الفرقة الوحدة السرية".split())
# a one-word place name the tagger calls an ACTOR is a place after these (في إسرائيل, إلى روسيا, على
# إيران, شعب إسرائيل) or after ب (بإيران): in the training data such a gazetteer name is a one-word
# ACTOR 49 times in 1,744 (a one-word LOCATION 1,314 times); after بين it is an ACTOR 96 times in 135
# and a LOCATION 35
_PLACE_BEFORE = frozenset("في الي علي داخل شعب دولة".split())
# a listed place name the tagger left outside is a place after a generic head (مدينة ميلانو, ولاية
# نيو جيرسي), and a name of two words or more is one after في or إلى: in the training data such a
# name is the whole LOCATION 558 times in 578, outside 3 times
_PLACE_HEADS = frozenset("مدينة مقاطعة بلدية قضاء محافظة ريف منطقة ولاية ميناء".split())
_INTO = frozenset("في الي".split())
_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ى": "ي"})  # the lists above are written folded
# a generic head or a direction is never a place on its own (قطاع النفط, في جنوب بغداد, بلاد):
# alone as a one-word LOCATION 0 times in the training data's 3,303 uses of these words
_LONE_HEADS = frozenset(h.translate(_FOLD) for h in GENERIC_HEADS) | _DIRECTIONS | frozenset("قطاع بلاد الجنوب الشمال".split())

# an entity: its record dict and its (word start, word end, type index) in the sentence
Entity = tuple[dict, tuple[int, int, int]]


class Decoder:
    """Entities and relations of sentences, for a model with ``config.id2label`` and ``settings``."""

    def __init__(self, model, gazetteer=None):
        self.gazetteer = gazetteer  # a model's place names (gazetteer.py): lets a place-ACTOR mend run
        self.lexicon = getattr(model, "lexicon", None)  # what its training text says of words (lexicon.py)
        self.labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
        self.entity_labels = model.settings.entity_labels
        self.relation_labels = model.settings.relation_labels
        self.pair_types = pair_type_ids(model.settings)
        # per tag index: the entity type it begins (-1 for O and I-), whether it continues a span
        self._begin_type = np.array([self.entity_labels.index(t[2:]) if t.startswith("B-") else -1 for t in self.labels])
        self._inside = np.array([t.startswith("I-") for t in self.labels])

    def entities(self, probs: np.ndarray, sentences: list[str], tokens: list[list]) -> list[list[Entity]]:
        """Each sentence's entities from its words' tag probabilities (rows of ``probs``, (R, W, L))."""
        lengths = np.array([len(ts) for ts in tokens])
        log_probs = np.log(np.maximum(probs, np.float32(1e-9)))
        tags = viterbi_iob2_batch(log_probs, lengths, self.labels)
        for r, ts in enumerate(tokens):
            repair_tags(tags[r, : lengths[r]], [t.text for t in ts], self.labels, self.gazetteer, self.lexicon)
        chosen = np.take_along_axis(probs, tags[..., None], -1)[..., 0]
        return [self._spans(s, ts, tags[r, : lengths[r]], chosen[r]) for r, (s, ts) in enumerate(zip(sentences, tokens))]

    def _spans(self, sentence: str, tokens, tags: np.ndarray, chosen: np.ndarray) -> list[Entity]:
        """Spans of one sentence's label indices ``tags`` (valid IOB2); ``chosen`` holds each
        word's probability of its label, averaged over the span into the entity's score."""
        ents = []
        for ws in np.flatnonzero(self._begin_type[tags] >= 0).tolist():
            we = ws + 1
            while we < len(tags) and self._inside[tags[we]]:
                we += 1
            t = int(self._begin_type[tags[ws]])
            label = self.entity_labels[t]
            s, e = tokens[ws].start, tokens[we - 1].end
            ent = {"start": s, "end": e, "label": label, "text": sentence[s:e],
                   "score": round(float(chosen[ws:we].mean(dtype=np.float64)), 4)}
            if label == "CASUALTY":
                c = normalize_casualty(sentence[s:e], sentence[:s], sentence[e:])
                ent.update(count=c.count, approximate=c.approximate, status=c.status)
            ents.append((ent, (ws, we, t)))
        return ents

    def given(self, sentence: str, tokens, spans: list[tuple[int, int, str]]) -> list[Entity]:
        """Entities given as ``(start, end, label)`` character spans of ``sentence``."""
        words = word_spans(tokens, [(s, e) for s, e, _ in spans])
        return [({"start": s, "end": e, "label": label, "text": sentence[s:e]}, (ws, we, self.entity_labels.index(label)))
                for (s, e, label), (ws, we) in zip(spans, words)]

    @torch.inference_mode()
    def relations(self, model, words: torch.Tensor, entity_lists: list[list[Entity]]) -> list[list[dict]]:
        """Relations among each row's entities; ``words`` (R, W, H) holds row r's word states.
        Heads and tails index the row's entity list; pairs the head calls ``NONE`` are left out."""
        rels: list[list[dict]] = [[] for _ in entity_lists]
        pairs, owners = [], []
        for r, ents in enumerate(entity_lists):
            spans = [span for _, span in ents]
            for a, b in candidate_pairs(spans, self.pair_types):
                pairs.append((r, *spans[a][:2], *spans[b][:2], spans[a][2], spans[b][2]))
                owners.append((r, a, b))
        if not pairs:
            return rels
        p = model.relation_logits(words, torch.tensor(pairs, dtype=torch.long, device=words.device))
        score, best = p.float().softmax(-1).cpu().max(-1)
        for (r, a, b), s, k in zip(owners, score.tolist(), best.tolist()):
            if self.relation_labels[k] != NO_RELATION:
                rels[r].append({"head": a, "tail": b, "label": self.relation_labels[k], "score": round(s, 4)})
        return rels


def repair_tags(tags: np.ndarray, words: list[str], labels: list[str], gazetteer=None, lexicon=None) -> np.ndarray:
    """Mend, in place, the cut and empty spans a small tagger makes on real text; ``tags`` stays valid IOB2.

    - A definite nisba adjective right after an ACTOR joins it (``الحكومة`` + ``الإيرانية``,
      ``الخارجية`` + ``الأميركية``), whether it was tagged ``O`` or began a span of its own;
      not an evaluative one (``الإرهابية``, ``النازية``), which the spec leaves outside, nor one after
      ``حماس``, ``إسرائيل``, ``حزب الله`` or ``طهران`` (outside in 29 of 30 cases in the data).
    - An ACTOR that is a lone construct head (``حركة``, ``لمنظمة``, ``قوات``) takes the name after it,
      across a quote mark: an ACTOR span that follows (``لمنظمة`` + ``حماس``), or one word tagged
      ``O`` that is not a function word (``وزارة`` + ``الدفاع``, ``لواء`` + ``"`` + ``عتتسيوني``). In
      the data a head alone is an ACTOR 7 times in 1,944.
    - A construct head tagged ``O`` right before an ACTOR begins it (``مقاتلي`` + ``حماس``; in the
      data such a head stays outside 23 times in 1,960), and a direction word right before a
      continent begins the place (``شرق`` + ``أفريقيا``; inside in 42 of 51 cases in the data, while
      a country's stays outside: ``شمال [سوريا]``).
    - A CASUALTY span right after another one, with no word between, continues it
      (``أكثر من`` + ``560``) unless it starts with و (``قتيل`` + ``وثلاثة جرحى`` are two), and so
      does a definite number tagged O (``المراقبين`` + ``الأربعة``); digits tagged O after an ACTOR
      that holds a unit noun continue it (``الكتيبة`` + ``202``).
    - A LOCATION that ends in ``البحر``, ``المحيط``, ``الخليج``, ``الشرق``, ``الضفة``, ``الجزيرة``,
      ``المسجد`` or ``الصحراء`` takes a definite word tagged O after it (``[الخليج] العربي``).
    - With a ``gazetteer``: a LOCATION that covers part of a name of two words or more, the rest
      tagged O or LOCATION, covers all of it (``[دير] الزور``, ``[ساو] [باولو]``: in the training
      data such a name is one whole LOCATION in 449 of 459 cases); a one-word ACTOR that is a place
      name after ``في``, ``إلى``, ``على``, ``داخل``, ``شعب`` or ``دولة``, or after a ب proclitic,
      is a LOCATION (``في [إسرائيل]``, ``[بإيران]``): the spec's place, not the state acting. A
      one-word place name after ``بين`` is an ACTOR (``بين [إسرائيل] وحماس``). A listed name tagged
      ``O`` after a generic head is a LOCATION (``مدينة [ميلانو]``, ``ولاية [نيو جيرسي]``), and so is
      one of two words or more after ``في`` or ``إلى`` (558 of 578 such names in the data).
    - A span of nothing but function words or punctuation (``الى``, ``كان``, ``و``, ``أكثر``) is
      dropped, and so is a one-word LOCATION that is a generic head or a direction alone
      (``[قطاع] النفط``, ``في [جنوب] بغداد``: never a place alone in the data's 3,303 uses).
    - With a ``lexicon`` (the model's training text, :mod:`~marsad.model.lexicon`), last: a
      one-word entity whose word the training text has outside entities and never inside one of
      that label is dropped (``السماء``, ``بارد`` or ``لك`` as a place), and a name the training
      text only ever has as a whole entity of one label becomes one where the tagger left it
      outside or cut it (``النقب``, ``عكا``, ``[باهر]`` of ``صور باهر`` as places).

    Words are matched as normalised (diacritics and tatweel dropped). Labels a model lacks skip a
    rule. Each mend was kept for raising real-text entity F1 with every model it was measured on
    (2 to 5 models, relation F1 level or up); the README's lever table holds the numbers.
    """
    o, b_act, i_act, b_cas, i_cas, b_loc, i_loc = _repair_ids(tuple(labels))
    norm = [normalize_word(w) for w in words]  # each word normalised once
    n = len(tags)
    for k in range(1, n):
        prev, cur = int(tags[k - 1]), int(tags[k])
        if i_act is not None and cur == b_act and prev == o and _is_one(norm[k - 1], _HEADS):
            tags[k - 1 : k + 1] = (b_act, i_act)  # an O head before an ACTOR: مقاتلي + حماس
            continue
        if i_loc is not None and cur == b_loc and prev == o and _is_one(norm[k - 1], _DIRECTIONS) and _CONTINENT.match(norm[k]):
            tags[k - 1 : k + 1] = (b_loc, i_loc)  # شرق + أفريقيا
            continue
        if i_act is not None and prev == b_act and cur != i_act and _is_one(norm[k - 1], _HEADS):
            j = k
            while j < n and tags[j] == o and words[j] in _QUOTES:
                j += 1
            name = j < n and (tags[j] == b_act or (tags[j] == o and j <= k + 1 and _name_like(norm[j])))
            if name:
                tags[k : j + 1] = i_act
                continue
        if i_act is not None and prev in (b_act, i_act) and cur in (o, b_act) and _nisba(norm[k]) \
                and not _is_one(norm[k - 1], _NO_NISBA):
            tags[k] = i_act  # the I-ACTOR words of a span it began now continue the first
        elif i_cas is not None and prev in (b_cas, i_cas) and cur == b_cas and not norm[k].startswith("و"):
            tags[k] = i_cas
        elif i_cas is not None and prev in (b_cas, i_cas) and cur == o and norm[k].translate(_FOLD) in _DEF_NUMBERS:
            tags[k] = i_cas
        elif i_act is not None and prev in (b_act, i_act) and cur == o and norm[k].isdigit() and _in_unit(tags, norm, k, i_act):
            tags[k] = i_act
    if i_loc is not None:
        _mend_places(tags, words, norm, (o, b_act, i_act, b_loc, i_loc), gazetteer)
    _drop_empty(tags, norm, labels, o)
    if lexicon is not None:
        _lexicon_mends(tags, norm, labels, o, lexicon)
    return tags


def _mend_places(tags: np.ndarray, words: list[str], norm: list[str], ids: tuple, gazetteer) -> None:
    """:func:`repair_tags`' LOCATION mends: a geographic head takes its adjective; with a gazetteer,
    a place cut inside a listed name gets all of it, and one-word names read as ACTOR or LOCATION
    by the word before them."""
    o, b_act, i_act, b_loc, i_loc = ids
    n = len(tags)
    for k in np.flatnonzero(tags == b_loc).tolist():
        if (k + 1 == n or tags[k + 1] != i_loc) and _is_one(norm[k], _LONE_HEADS):
            tags[k] = o  # a lone head: قطاع (النفط), جنوب (بغداد)
    for k in range(1, n):
        if tags[k] == o and tags[k - 1] in (b_loc, i_loc) and norm[k].startswith("ال") and _is_one(norm[k - 1], _GEO_HEADS) \
                and (k + 1 == n or tags[k + 1] != i_loc):
            tags[k] = i_loc
    if gazetteer is None:
        return
    for i, j in gazetteer.matches(words):  # a place cut inside a name of two words or more gets all of it
        seg = tags[i:j]
        if j - i > 1 and b_loc in seg and seg[0] != i_loc and all(t in (o, b_loc, i_loc) for t in seg) \
                and (j == n or tags[j] != i_loc):
            tags[i], tags[i + 1 : j] = b_loc, i_loc
        elif i and (seg == o).all() and (j == n or tags[j] == o) and (
                _is_one(norm[i - 1], _PLACE_HEADS) or (j - i > 1 and norm[i - 1].translate(_FOLD) in _INTO)):
            tags[i], tags[i + 1 : j] = b_loc, i_loc  # مدينة [ميلانو], في [نيو جيرسي]
    if i_act is None:
        return
    for k in np.flatnonzero((tags == b_act) | (tags == b_loc)).tolist():
        if k + 1 == n or tags[k + 1] not in (i_act, i_loc):
            if tags[k] == b_act and _place_actor(norm, k, gazetteer):
                tags[k] = b_loc
            elif tags[k] == b_loc and k and norm[k - 1] == "بين" and gazetteer.is_name(norm[k].translate(_FOLD)):
                tags[k] = b_act  # بين [إسرائيل] و...: the parties to something


def _drop_empty(tags: np.ndarray, norm: list[str], labels: list[str], o: int) -> None:
    """Turn to O every span of nothing but function words or punctuation."""
    begin, inside = _span_flags(tuple(labels))
    for k in np.flatnonzero(begin[tags]).tolist():
        end = k + 1
        while end < len(tags) and inside[tags[end]]:
            end += 1
        if all(_empty(w) for w in norm[k:end]):
            tags[k:end] = o


def _lexicon_mends(tags: np.ndarray, norm: list[str], labels: list[str], o: int, lexicon) -> None:
    """Turn to O every one-word span whose word the lexicon rules out for the span's label; then
    make each name the training text only has as a whole entity one, where the tags in it are O or
    that label and no span crosses its edges."""
    begin, inside = _span_flags(tuple(labels))
    for k in np.flatnonzero(begin[tags]).tolist():
        if (k + 1 == len(tags) or not inside[tags[k + 1]]) and lexicon.rules_out(norm[k], labels[tags[k]][2:]):
            tags[k] = o
    for i, j, label in lexicon.matches(norm):
        if f"B-{label}" not in labels:
            continue
        b, inner = labels.index(f"B-{label}"), labels.index(f"I-{label}")
        if all(t in (o, b, inner) for t in tags[i:j]) and tags[i] != inner and (j == len(tags) or tags[j] != inner):
            tags[i], tags[i + 1 : j] = b, inner


@lru_cache(maxsize=8)
def _repair_ids(labels: tuple[str, ...]) -> tuple[int | None, ...]:
    """The indices of O, B-/I-ACTOR, B-/I-CASUALTY and B-/I-LOCATION in a label set (``None`` where it lacks one),
    worked out once per label set rather than once per sentence."""
    index = {t: i for i, t in enumerate(labels)}
    return tuple(index.get(t) for t in ("O", "B-ACTOR", "I-ACTOR", "B-CASUALTY", "I-CASUALTY", "B-LOCATION", "I-LOCATION"))


@lru_cache(maxsize=8)
def _span_flags(labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per label index: whether it begins a span (B-), whether it continues one (I-)."""
    return np.array([t.startswith("B-") for t in labels]), np.array([t.startswith("I-") for t in labels])


def _is_one(word: str, words: frozenset[str]) -> bool:
    """Whether ``word``, folded, is one of ``words`` as it stands or after a proclitic."""
    return any(v in words for v in proclitic_variants(word.translate(_FOLD)))


def _in_unit(tags: np.ndarray, norm: list[str], k: int, i_act: int) -> bool:
    """Whether the ACTOR that ends before word ``k`` holds a unit noun (كتيبة, اللواء...)."""
    s = k - 1
    while s > 0 and tags[s] == i_act:
        s -= 1
    return any(_is_one(w, _UNITS) for w in norm[s:k])


def _place_actor(norm: list[str], k: int, gazetteer) -> bool:
    """Whether word ``k`` is a place name read as a place: after a word of ``_PLACE_BEFORE``, or after ب."""
    word = norm[k].translate(_FOLD)
    if k and norm[k - 1].translate(_FOLD) in _PLACE_BEFORE:
        return gazetteer.is_name(word)
    stem = word[2:] if word.startswith("وب") else word[1:] if word.startswith("ب") else ""
    return bool(stem) and gazetteer.is_name(stem) and not gazetteer.is_name(word)  # not بايدن: ايدن is a town


def _name_like(word: str) -> bool:
    return any(ch.isalpha() for ch in word) and not any(ch.isdigit() for ch in word) and word.translate(_FOLD) not in _NOT_NAMES


def _empty(word: str) -> bool:
    return not any(ch.isalnum() for ch in word) or _is_one(word, _EMPTY)


def _nisba(word: str) -> bool:
    return bool(_NISBA.match(word)) and not _EVALUATIVE.search(word)


def merge_windows(groups: list[range], windows: list[Window], parts: dict) -> tuple[torch.Tensor, np.ndarray]:
    """Word states (R, W, H) and tag probabilities (R, W, L) of sentences longer than a window,
    one row each: each word from the window where it sits furthest from an edge
    (:func:`~marsad.model.encoding.choose_windows`). ``groups`` holds each sentence's window
    numbers, ``parts`` each of those windows' ``(word states, probs)``."""
    states, probs = parts[groups[0][0]]
    width = max(windows[ks[-1]].word_end for ks in groups)
    words = states.new_zeros(len(groups), width, states.size(-1))
    probs = np.zeros((len(groups), width, probs.shape[-1]), dtype=np.float32)
    for r, ks in enumerate(groups):
        for w, (k, j) in enumerate(choose_windows([windows[k] for k in ks], windows[ks[-1]].word_end)):
            h, p = parts[ks[k]]
            words[r, w], probs[r, w] = h[j], p[j]
    return words, probs
