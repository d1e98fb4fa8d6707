"""Casualty-count normalisation: a CASUALTY span (plus its sentence context) to a number.

The tagger finds CASUALTY spans (``ANNOTATION.md``, "CASUALTY"); this module turns one span
into a :class:`Casualty` - how many people, whether the number is approximate, and whether
they were killed or injured. Everything here is pure, table-driven and never raises.

Approach
--------
1. **Normalise for matching only** (:func:`_normalize`): NFKC, drop diacritics and tatweel,
   map Arabic-Indic / Persian digits (and the Arabic thousands/decimal separators) to ASCII,
   unify alef forms (أ إ آ ٱ → ا), final ى → ي and ة → ه. Words are then tokenised into
   letter runs and digit runs (``1,200`` and ``2.5`` stay one token).
2. **Numbers** (:func:`parse_number`): each word is looked up, after peeling the clitics
   و/ف, ب/ل and the article ال (:func:`_variants`), in one table of number words
   (``_WORD_NUMBERS``: units, teens' ``عشر``, tens, hundreds, thousands/millions, vague
   quantities). A small accumulator (:class:`_Accumulator`) combines consecutive words the way
   Arabic composes numbers: ``خمسة عشر`` (teen), ``خمسة وعشرون`` (units before tens, joined by
   و), ``ثلاث مئة`` / ``أربعين ألفا`` (multipliers), ``ألف وخمسمئة`` (a smaller part after a
   scale). A word that cannot continue the number ends it, so ``خمسة أطفال وثلاثة`` reads 5.
   The *first* number expression in the text decides; a vague one (عشرات، مئات، آلاف، عدة،
   بضعة، عدد من) denotes no integer.
3. **Count of a span** (:func:`normalize_casualty`): the first number in the span; otherwise
   a dual victim noun from a conservative list (``_DUALS``) gives 2; otherwise a span with a
   content word and no plural noun (``_is_plural``) is an implied singular (``جندي``،
   ``القيادي``، ``والآخر``) and gives 1; a bare plural gives ``None``.
4. **Approximate**: a vague count, or an approximator (``_APPROX_BEFORE`` / ``_APPROX_AFTER``)
   inside the span, ending the left context, or opening the right context before any other
   number.
5. **Status**: cue words (``_cue``) are either *events* (مقتل، قتل، مصرع، استشهاد، حتف، أصيب،
   إصابة ...) or *victim nouns* (قتيل، قتلى، شهيد، جريح، جرحى، مصابين ...). The nearest cue
   wins, in this order (see :func:`_status`): the span's own nouns (killed wins when both
   appear: ``عشرات القتلى والمصابين``); an event on the left that governs the span (the scan
   stops at another number, unless the span follows بينهم/منهم, whose victims inherit the
   outer verb) - it comes *before* the span's nouns when the span is partitive (``قتل | أحد
   المصابين``، ``وفاة | ثلاثة من الجرحى``); a victim noun on the left (``حصيلة القتلى إلى
   20``); a cue on the right (``لقوا حتفهم``), stopping at another number or a coordinated
   event (``وإصابة 30``); and last any cue on the left.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

import regex

__all__ = ["KILLED", "INJURED", "Casualty", "normalize_casualty", "parse_number", "vague_quantity"]

KILLED = "killed"
INJURED = "injured"

CONTEXT_WORDS = 8  # how many words of `before` / `after` are looked at for the status
APPROX_AFTER_WORDS = 4  # a trailing approximator may open the right context this far out
MAX_DIGITS = 15  # longer digit runs are not counts (and would overflow int/str limits)


@dataclass(frozen=True)
class Casualty:
    """What a CASUALTY span says.

    ``count`` is ``None`` for a vague quantity (عشرات) or when no number can be read;
    ``approximate`` is True for approximators (نحو، على الأقل ...) and vague quantities;
    ``status`` is ``"killed"``, ``"injured"`` or ``None`` when no cue is found.
    """

    count: int | None
    approximate: bool
    status: str | None


# --- Normalisation -------------------------------------------------------------------------
_STRIP_RE = regex.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)
_CHAR_MAP = str.maketrans(
    {
        **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + i): str(i) for i in range(10)},  # Persian digits
        "\u066c": ",",  # Arabic thousands separator
        "\u066b": ".",  # Arabic decimal separator
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
    }
)
_TOKEN_RE = regex.compile(
    r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])(?:\.[0-9]+)?"  # 1,200 / 1,200.5
    r"|[0-9]+(?:\.[0-9]+)?"  # 1200 / 2.5
    r"|[\p{L}\p{M}]+"  # a word
)


def _normalize(text: str) -> str:
    """Matching form of ``text`` (not offset-preserving)."""
    text = unicodedata.normalize("NFKC", text)
    return _STRIP_RE.sub("", text).translate(_CHAR_MAP)


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(_normalize(text))


@lru_cache(maxsize=8192)
def _variants(word: str) -> tuple[tuple[str, bool, bool], ...]:
    """``(stem, had_waw, had_article)`` readings of ``word``, least stripped first.

    Peels a conjunction (و ف), then a preposition (ب ل; ``لل`` is ل + ال), then the article.
    """
    stage1 = [(word, False)]
    if len(word) > 2 and word[0] in "وف":
        stage1.append((word[1:], word[0] == "و"))
    stage2 = list(stage1)
    for w, waw in stage1:
        if len(w) > 3 and w.startswith("لل"):
            stage2.append(("ال" + w[2:], waw))
        elif len(w) > 2 and w[0] in "بل":
            stage2.append((w[1:], waw))
    out = [(w, waw, False) for w, waw in stage2]
    out += [(w[2:], waw, True) for w, waw in stage2 if len(w) > 3 and w.startswith("ال")]
    return tuple(out)


# --- Number words (normalised spellings) -----------------------------------------------------
UNIT, TEN, TENS, HUNDRED, HUNDREDS, SCALE, SCALE_PLURAL, SCALE_DUAL, HALF, VAGUE, DIGITS = (
    "unit", "ten", "tens", "hundred", "hundreds", "scale", "scale_plural", "scale_dual",
    "half", "vague", "digits",
)  # fmt: skip

_UNITS: dict[str, int] = {
    "واحد": 1, "واحده": 1, "واحدا": 1, "احد": 1, "احدي": 1,
    "احدهما": 1, "احداهما": 1, "احدهم": 1, "احداهن": 1, "احدهن": 1,
    "اثنان": 2, "اثنين": 2, "اثنتان": 2, "اثنتين": 2, "اثنا": 2, "اثني": 2, "اثنتا": 2,
    "اثنتي": 2, "ثنتان": 2, "ثنتين": 2,
    "ثلاث": 3, "ثلاثه": 3, "اربع": 4, "اربعه": 4, "خمس": 5, "خمسه": 5, "ست": 6, "سته": 6,
    "سبع": 7, "سبعه": 7, "ثمان": 8, "ثماني": 8, "ثمانيه": 8, "تسع": 9, "تسعه": 9,
}  # fmt: skip
_TEN_WORDS: dict[str, int] = {"عشر": 10, "عشره": 10}
_TENS: dict[str, int] = {
    "عشرون": 20, "عشرين": 20, "ثلاثون": 30, "ثلاثين": 30, "اربعون": 40, "اربعين": 40,
    "خمسون": 50, "خمسين": 50, "ستون": 60, "ستين": 60, "سبعون": 70, "سبعين": 70,
    "ثمانون": 80, "ثمانين": 80, "تسعون": 90, "تسعين": 90,
}  # fmt: skip
_HUNDRED_WORDS = ("مئه", "مائه")
_HUNDRED_PREFIXES: dict[str, int] = {
    "ثلاث": 3, "ثلث": 3, "اربع": 4, "خمس": 5, "ست": 6, "سبع": 7, "ثمان": 8, "ثماني": 8, "تسع": 9,
}  # fmt: skip
_HUNDREDS: dict[str, int] = {
    **{w: 200 for w in ("مئتان", "مئتين", "مئتا", "مئتي", "مائتان", "مائتين", "مائتا", "مائتي")},
    **{p + h: n * 100 for p, n in _HUNDRED_PREFIXES.items() for h in _HUNDRED_WORDS},
}
# Singular scales; ألفا is read as accusative "thousand" (أربعين ألفا), not the construct dual.
_SCALES: dict[str, int] = {
    "الف": 1000, "الفا": 1000, "مليون": 10**6, "مليونا": 10**6, "مليار": 10**9, "مليارا": 10**9,
}  # fmt: skip
_SCALE_PLURALS: dict[str, int] = {"الاف": 1000, "الوف": 1000, "ملايين": 10**6, "مليارات": 10**9}
_SCALE_DUALS: dict[str, int] = {
    "الفان": 2000, "الفين": 2000, "الفي": 2000,
    "مليونان": 2 * 10**6, "مليونين": 2 * 10**6, "مليارين": 2 * 10**9, "ملياران": 2 * 10**9,
}  # fmt: skip
_VAGUE: frozenset[str] = frozenset({"عشرات", "مئات", "ميات", "عده", "بضع", "بضعه", "بعض"})
# Vague only when followed by من: عدد من / عددا من / العديد من (عدد القتلى is "the number of").
_VAGUE_BEFORE_MIN: frozenset[str] = frozenset({"عدد", "عددا", "عديد"})
_HALF_WORDS: frozenset[str] = frozenset({"نصف"})

_WORD_NUMBERS: dict[str, tuple[str, int]] = {
    **{w: (UNIT, n) for w, n in _UNITS.items()},
    **{w: (TEN, n) for w, n in _TEN_WORDS.items()},
    **{w: (TENS, n) for w, n in _TENS.items()},
    **{w: (HUNDRED, 100) for w in _HUNDRED_WORDS},
    **{w: (HUNDREDS, n) for w, n in _HUNDREDS.items()},
    **{w: (SCALE, n) for w, n in _SCALES.items()},
    **{w: (SCALE_PLURAL, n) for w, n in _SCALE_PLURALS.items()},
    **{w: (SCALE_DUAL, n) for w, n in _SCALE_DUALS.items()},
    **{w: (VAGUE, 0) for w in _VAGUE},
    **{w: (HALF, 0) for w in _HALF_WORDS},
}
# Stems that may carry the article ال. Not احد (الأحد: Sunday), اثنين (الاثنين: Monday),
# ست (الست: "the lady"), مئة (في المئة: per cent) or ألف.
_ARTICLE_OK: frozenset[str] = frozenset(
    {w for w, n in _UNITS.items() if n >= 3 and w != "ست"}
    | {"اثنان", "اثنتان"}
    | set(_TEN_WORDS) | set(_TENS) | set(_SCALE_PLURALS) | _VAGUE | _VAGUE_BEFORE_MIN
)
# Real words whose clitic-stripped form is a number word.
_NOT_NUMBERS: frozenset[str] = frozenset({"لست", "ولست", "فلست"})


@dataclass(frozen=True)
class _Num:
    kind: str
    value: Decimal
    waw: bool  # joined to the previous word by و


@lru_cache(maxsize=8192)
def _word_number(word: str) -> _Num | None:
    """The number reading of one normalised token (vague-before-من handled by the caller)."""
    if word[0].isascii() and word[0].isdigit():
        digits = word.replace(",", "")
        if len(digits.split(".")[0]) > MAX_DIGITS:
            return None
        try:
            return _Num(DIGITS, Decimal(digits), False)
        except InvalidOperation:  # pragma: no cover - the token regex only lets digits through
            return None
    if word in _NOT_NUMBERS:
        return None
    for stem, waw, article in _variants(word):
        entry = _WORD_NUMBERS.get(stem)
        if entry is not None and (not article or stem in _ARTICLE_OK):
            return _Num(entry[0], Decimal(entry[1]), waw)
    return None


def _number_at(tokens: list[str], i: int) -> _Num | None:
    num = _word_number(tokens[i])
    if num is None and i + 1 < len(tokens) and tokens[i + 1] == "من":
        for stem, waw, article in _variants(tokens[i]):
            if stem in _VAGUE_BEFORE_MIN:
                return _Num(VAGUE, Decimal(0), waw)
    return num


@dataclass
class _Accumulator:
    """Builds one number from consecutive number words; :meth:`feed` says if a word fits."""

    total: Decimal = Decimal(0)  # committed thousands / millions
    group: Decimal = Decimal(0)  # the part below the last scale
    scale: Decimal | None = None  # the last scale applied
    last: str = ""

    def start(self, n: _Num) -> None:
        if n.kind == SCALE:
            self.total, self.scale = n.value, n.value
        elif n.kind == SCALE_DUAL:
            self.total, self.scale = n.value, n.value / 2
        else:
            self.group = n.value
        self.last = n.kind

    def feed(self, n: _Num) -> bool:
        kind, value, waw, g = n.kind, n.value, n.waw, self.group
        started = bool(g or self.total)
        if kind in (SCALE, SCALE_PLURAL):  # ثلاثة آلاف، أربعين ألفا، مئة ألف
            if waw or g <= 0 or (self.scale is not None and value >= self.scale):
                return False
            self.total, self.group, self.scale = self.total + g * value, Decimal(0), value
        elif kind == SCALE_DUAL:  # مليون وألفان
            if not (waw and g == 0 and self.scale is not None and value < self.scale):
                return False
            self.total += value
        elif kind == HALF:  # مليون ونصف
            if not (waw and g == 0 and self.scale is not None):
                return False
            self.total += self.scale / 2
        elif kind == HUNDRED and not waw and self.last in (UNIT, DIGITS) and 0 < g < 10:
            self.group = g * 100  # ثلاث مئة
        elif kind == TEN and not waw and self.last == UNIT and 0 < g % 100 < 10:
            self.group = g + value  # خمسة عشر، أحد عشر
        elif waw and started and self._slot_free(kind, g):
            self.group = g + value  # خمسة وعشرون، مئة وعشرون، ألف وخمسمئة
        else:
            return False
        self.last = kind
        return True

    def _slot_free(self, kind: str, g: Decimal) -> bool:
        """Whether a و-joined part of this kind can still be added to the group."""
        if kind == UNIT:
            return g % 10 == 0
        if kind == TEN:
            return g % 100 == 0
        if kind == TENS:
            return g % 100 < 10
        if kind in (HUNDRED, HUNDREDS, DIGITS):
            return g == 0 and self.total > 0
        return False

    def value(self) -> int:
        return int((self.total + self.group).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class _Reading:
    value: int | None
    vague: bool


def _read_number(tokens: list[str], i: int) -> _Reading | None:
    """The number expression starting at ``tokens[i]``, if one does."""
    first = _number_at(tokens, i)
    if first is None or first.kind == HALF:
        return None
    if first.kind in (VAGUE, SCALE_PLURAL):  # عشرات، آلاف (no multiplier before it)
        return _Reading(None, True)
    acc = _Accumulator()
    acc.start(first)
    j = i + 1
    while j < len(tokens):
        k = j + 1 if tokens[j] == "و" else j  # a detached و (خمسة و عشرون، و 20)
        num = _number_at(tokens, k) if k < len(tokens) else None
        if num is not None and k > j:
            num = replace(num, waw=True)
        if num is None or not acc.feed(num):
            break
        j = k + 1
    return _Reading(acc.value(), False)


def _first_number(tokens: list[str]) -> _Reading | None:
    for i in range(len(tokens)):
        reading = _read_number(tokens, i)
        if reading is not None:
            return reading
    return None


def parse_number(text: str) -> int | None:
    """The integer the first number expression in ``text`` denotes.

    Digits in any of the three digit sets, number words of any gender, case and clitic form,
    and combinations (``خمسة وعشرون``، ``ثلاثة آلاف``، ``2.5 مليون`` → 2500000, rounded half
    up). ``None`` when there is no number, when the first one is vague (``عشرات``) and for digit
    runs longer than 15 digits. Never raises.
    """
    if not isinstance(text, str) or not text:
        return None
    reading = _first_number(_tokens(text))
    return None if reading is None else reading.value


# --- Victim nouns: duals and plurals ---------------------------------------------------------
# -ان duals are unambiguous; -ين only where the plural is a different (broken) form, so that
# قتيلين/جنديين/طفلين are duals while مدنيين/مقاتلين/مسعفين/مصابين/صحفيين are plurals.
# آخرين is read as the dual آخرَين: a bare plural is never a CASUALTY span on its own.
_DUALS: frozenset[str] = frozenset(
    {
        "قتيلان", "قتيلين", "قتيلتان", "قتيلتين", "جريحان", "جريحين", "جريحتان", "جريحتين",
        "شهيدان", "شهيدين", "جنديان", "جنديين", "طفلان", "طفلين", "طفلتان", "طفلتين",
        "شخصان", "شخصين", "شابان", "شابين", "عنصران", "عنصرين", "رجلان", "رجلين",
        "امراتان", "امراتين", "ضابطان", "ضابطين", "شقيقان", "شقيقين", "حارسان", "حارسين",
        "ولدان", "ولدين", "ابنان", "ابنين", "نجلان", "نجلين", "طبيبان", "طبيبين",
        "قائدان", "قائدين", "مدنيان", "مسعفان", "مقاتلان", "مسلحان", "صحفيان", "مصابان",
        "مواطنان", "عسكريان", "شرطيان", "مستوطنان", "اخران", "اخرين",
        "طفليه", "طفليها", "ابنيه", "ابنيها", "نجليه", "نجليها",
    }
)  # fmt: skip
_PLURALS: frozenset[str] = frozenset(
    {
        "اطفال", "اشخاص", "جنود", "عناصر", "قتلي", "جرحي", "ضحايا", "شهداء", "نساء", "رجال",
        "افراد", "سكان", "ضباط", "قاده", "شبان", "شباب", "طلاب", "اشقاء", "ابناء", "اولاد",
        "عمال", "اسري", "حراس", "اطباء", "ناس", "اناس", "اخرون", "بنات", "مدنيون", "جثث",
    }
)  # fmt: skip


def _is_dual(token: str) -> bool:
    return any(stem in _DUALS for stem, _, _ in _variants(token))


def _is_plural(token: str) -> bool:
    """Known plural, nisba plural (مدنيين، عسكريون), م-participle plural (مقاتلين) or -ات."""
    for stem, _, _ in _variants(token):
        if stem in _DUALS:
            return False
        if stem in _PLURALS:
            return True
        if len(stem) >= 5 and (
            stem.endswith(("يين", "يون", "ات")) or (stem[0] == "م" and stem.endswith(("ين", "ون")))
        ):
            return True
    return False


# --- Approximators -------------------------------------------------------------------------
# Normalised word sequences; the first word may carry a clitic (بنحو، لأكثر من، ونيف).
_APPROX_BEFORE: tuple[tuple[str, ...], ...] = (
    ("نحو",), ("حوالي",), ("قرابه",), ("زهاء",), ("يقارب",), ("يناهز",), ("يفوق",),
    ("اكثر", "من"), ("ازيد", "من"), ("اقل", "من"), ("يقرب", "من"), ("يزيد", "عن"),
    ("يزيد", "علي"), ("يربو", "علي"), ("يقل", "عن"), ("علي", "الاقل"),
)  # fmt: skip
_APPROX_AFTER: tuple[tuple[str, ...], ...] = (
    ("علي", "الاقل"), ("تقريبا",), ("نيف",), ("او", "اكثر"), ("علي", "اقل", "تقدير"),
    ("علي", "الاكثر"),
)  # fmt: skip
_APPROX_ANY = _APPROX_BEFORE + _APPROX_AFTER
_APPROX_WORDS: frozenset[str] = frozenset(w for p in _APPROX_ANY for w in p)


def _phrase_at(tokens: list[str], i: int, phrase: tuple[str, ...]) -> bool:
    if i + len(phrase) > len(tokens):
        return False
    if not any(stem == phrase[0] for stem, _, _ in _variants(tokens[i])):
        return False
    return tuple(tokens[i + 1 : i + len(phrase)]) == phrase[1:]


def _is_number(tokens: list[str], i: int) -> bool:
    return _number_at(tokens, i) is not None


def _approximate(span: list[str], before: list[str], after: list[str]) -> bool:
    if any(_phrase_at(span, i, p) for i in range(len(span)) for p in _APPROX_ANY):
        return True
    # ... ending the left context: "نحو" | "20 مدنيا"
    for p in _APPROX_BEFORE:
        if len(before) >= len(p) and _phrase_at(before, len(before) - len(p), p):
            return True
    # ... opening the right context before any other number: "20 مدنيا" | "على الأقل"
    for i in range(min(len(after), APPROX_AFTER_WORDS)):
        if _is_number(after, i):
            break
        if any(_phrase_at(after, i, p) for p in _APPROX_AFTER):
            return True
    return False


# --- Status cues ---------------------------------------------------------------------------
# (prefixes, exact words) per status; nouns name the victims, events are verbs and masdars.
_KILLED_NOUNS = (
    ("قتيل", "قتلي", "شهيد", "شهداء", "جثث", "جثه", "جثمان", "جثامين", "ضحيت"),
    ("ضحيه", "ضحايا"),
)  # fmt: skip
_INJURED_NOUNS = (("جريح", "جرحي", "مصاب"), ())
_KILLED_EVENTS = (
    ("مقتل", "قتل", "يقتل", "تقتل", "مصرع", "استشهد", "استشهاد", "حتف", "اغتيل", "اغتيال",
     "اعدم", "اعدام"),
    ("مات", "ماتت", "ماتوا", "موت", "وفاه", "وفاته", "وفاتهم", "وفاتها", "وفيات", "توفي",
     "توفيت", "توفوا", "يتوفي", "اودي", "اودت"),
)  # fmt: skip
_INJURED_EVENTS = (("اصيب", "اصاب", "يصاب", "تصاب", "جرح", "جروح"), ())
# Checked in this order: nouns before events, so قتلى is a noun and قتل an event.
_CUE_TABLE: tuple[tuple[str, bool, tuple[tuple[str, ...], tuple[str, ...]]], ...] = (
    (KILLED, False, _KILLED_NOUNS),
    (INJURED, False, _INJURED_NOUNS),
    (KILLED, True, _KILLED_EVENTS),
    (INJURED, True, _INJURED_EVENTS),
)
# The victims of a subset (بينهم خمسة أطفال) inherit the outer verb.
_SUBSET_MARKERS: frozenset[str] = frozenset(
    {"بينهم", "بينهن", "بينها", "بينهما", "منهم", "منهن", "منها", "منهما"}
)
# A span opening with these (أحد المصابين) is partitive: a governing verb beats its noun.
_PARTITIVE_HEADS: frozenset[str] = frozenset({"احد", "احدي", "احدهم", "احدهما", "احداهما"})


@dataclass(frozen=True)
class _Cue:
    status: str
    event: bool
    waw: bool


@lru_cache(maxsize=8192)
def _cue(token: str) -> _Cue | None:
    for stem, waw, _ in _variants(token):
        for status, event, (prefixes, words) in _CUE_TABLE:
            if stem in words or stem.startswith(prefixes):
                return _Cue(status, event, waw)
    return None


def _is_partitive(span: list[str]) -> bool:
    """``أحد المصابين``، ``ثلاثة من الجرحى``: the noun names a group the victims come from."""
    if "من" in span:
        return True
    return bool(span) and any(stem in _PARTITIVE_HEADS for stem, _, _ in _variants(span[0]))


def _status(span: list[str], before: list[str], after: list[str]) -> str | None:
    """Killed / injured from the nearest cue; see the module docstring for the order."""
    subset = bool(before) and any(s in _SUBSET_MARKERS for s, _, _ in _variants(before[-1]))

    def left(events_only: bool, stop_at_numbers: bool) -> str | None:
        for i in range(len(before) - 1, -1, -1):
            if stop_at_numbers and _is_number(before, i):
                return None
            cue = _cue(before[i])
            if cue is not None and (cue.event or not events_only):
                return cue.status
        return None

    found = {cue.status for cue in map(_cue, span) if cue is not None}
    own = (KILLED if KILLED in found else INJURED) if found else None  # mixed: killed wins
    governing = left(events_only=True, stop_at_numbers=not subset)
    first, second = (governing, own) if _is_partitive(span) else (own, governing)
    if status := first or second:
        return status
    if status := left(events_only=False, stop_at_numbers=not subset):
        return status
    for i, token in enumerate(after):
        if _is_number(after, i):
            break
        cue = _cue(token)
        if cue is not None:
            if cue.event and cue.waw:  # "وإصابة 30 آخرين": a new, coordinated event
                break
            return cue.status
    return left(events_only=False, stop_at_numbers=False)


# --- Public entry point --------------------------------------------------------------------
_FUNCTION_WORDS: frozenset[str] = frozenset(
    {"و", "من", "في", "علي", "عن", "ما", "لا", "او", "بين", "ان"} | _SUBSET_MARKERS | _APPROX_WORDS
)


def _count(span: list[str]) -> tuple[int | None, bool]:
    """``(count, vague)`` of the span's own words."""
    reading = _first_number(span)
    if reading is not None:
        return reading.value, reading.vague
    if any(_is_dual(t) for t in span):
        return 2, False
    content = [t for t in span if t not in _FUNCTION_WORDS and not t.isascii()]
    if content and not any(_is_plural(t) for t in content):
        return 1, False  # implied singular: جندي، القيادي، والآخر
    return None, False


def normalize_casualty(span: str, before: str = "", after: str = "") -> Casualty:
    """Read a CASUALTY span: its count, whether it is approximate, killed or injured.

    ``span`` is the entity text, ``before`` / ``after`` the rest of its sentence; only the
    nearest words of each are used. Never raises; ``count`` is a non-negative int or ``None``.
    """
    span_t = _tokens(span) if isinstance(span, str) else []
    before_t = _tokens(before)[-CONTEXT_WORDS:] if isinstance(before, str) else []
    after_t = _tokens(after)[:CONTEXT_WORDS] if isinstance(after, str) else []
    count, vague = _count(span_t)
    approximate = vague or _approximate(span_t, before_t, after_t)
    return Casualty(count, approximate, _status(span_t, before_t, after_t))


def clear_caches() -> None:
    """Forget the word readings cached so far (for cold-start timing: every chunk starts cold)."""
    for cached in (_variants, _word_number, _cue):
        cached.cache_clear()


# --- Vague quantities, for conservative counts (ACLED's convention) ---------------------------
def vague_quantity(span: str) -> str | None:
    """The vague word (normalised: ``عشرات``, ``مئات``, ``الاف``, ``عده`` ...) when the first number
    expression of ``span`` is vague, else None. Never raises."""
    tokens = _tokens(span) if isinstance(span, str) else []
    for i in range(len(tokens)):
        reading = _read_number(tokens, i)
        if reading is None:
            continue
        if not reading.vague:
            return None
        for stem, _, _ in _variants(tokens[i]):
            if stem in _VAGUE or stem in _SCALE_PLURALS or stem in _VAGUE_BEFORE_MIN:
                return stem
        return None
    return None
