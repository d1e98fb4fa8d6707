"""Event dates: absolute dates in Arabic text, and relative ones resolved against a publication date.

* Absolute (``date_source = "text"``): ``23 يناير 2024``, ``7 أكتوبر`` (the year of the
  publication date, or the year before when that would put it more than a week after it),
  ``٢٣ كانون الثاني ٢٠٢٤`` (Levantine month names, Arabic-Indic digits), ``2024/01/23`` and
  ``23/1/2024`` (day first, as Arabic news writes it).
* Relative (``date_source = "relative"``, needs the publication date): اليوم، الليلة (the
  same day); أمس، البارحة، الليلة الماضية (the day before); أول أمس (two days before); a weekday
  (الجمعة، يوم السبت، صباح الأحد، مساء الخميس ...) is the last such day on or before the
  publication date; الأسبوع الماضي is seven days before.

:func:`find_date` reads one piece of text; :func:`parse_date` checks a publication date given
by a user (``YYYY-MM-DD``). Nothing here raises on odd text.
"""

from __future__ import annotations

import datetime as dt

import regex

from .text import fold_word

__all__ = ["find_date", "parse_date", "DATE_SOURCES"]

DATE_SOURCES = ("text", "relative", "publication")
FUTURE_SLACK_DAYS = 7  # a yearless date further than this after publication is last year's

_MONTHS = {
    "يناير": 1, "كانون الثاني": 1, "جانفي": 1, "فبراير": 2, "شباط": 2, "فيفري": 2, "مارس": 3, "اذار": 3,
    "ابريل": 4, "نيسان": 4, "افريل": 4, "مايو": 5, "ايار": 5, "ماي": 5, "يونيو": 6, "حزيران": 6, "جوان": 6,
    "يوليو": 7, "تموز": 7, "جويلية": 7, "اغسطس": 8, "اب": 8, "اوت": 8, "سبتمبر": 9, "ايلول": 9,
    "اكتوبر": 10, "تشرين الاول": 10, "نوفمبر": 11, "تشرين الثاني": 11, "ديسمبر": 12, "كانون الاول": 12,
}  # fmt: skip
_WEEKDAYS = {"الاثنين": 0, "الثلاثاء": 1, "الاربعاء": 2, "الخميس": 3, "الجمعه": 4, "السبت": 5, "الاحد": 6}
_ASCII_DIGITS = str.maketrans({**{chr(0x0660 + i): str(i) for i in range(10)}, **{chr(0x06F0 + i): str(i) for i in range(10)}})
_MONTH_RE = "|".join(sorted((m.replace(" ", r"\s+") for m in _MONTHS), key=len, reverse=True))
_ABSOLUTE = regex.compile(rf"(?<!\d)(\d{{1,2}})\s+(?:من\s+)?(?:شهر\s+)?[وبل]?({_MONTH_RE})(?:\s+(?:عام\s+|سنه\s+)?(\d{{4}}))?(?!\p{{L}})")
_NUMERIC = regex.compile(r"(?<!\d)(?:(\d{4})[/-](\d{1,2})[/-](\d{1,2})|(\d{1,2})[/-](\d{1,2})[/-](\d{4}))(?!\d)")
_RELATIVE = regex.compile(
    r"(?<!\p{L})(?:(اول\s+(?:ا)?مس)|(اليوم|الليله)(?!\s+(?:ال)?(?:ماضي|سابق))|(?:ب|في\s+)?(?:ال)?(امس|البارحه|الليله\s+الماضيه)"
    r"|(الاسبوع\s+(?:الماضي|المنصرم))|((?:يوم|صباح|مساء|ليله|ظهر|فجر)\s+)?(" + "|".join(_WEEKDAYS) + r"))(?!\p{L})"
)


def _fold(text: str) -> str:
    """Word-by-word AraBERT normalisation (Arabic-Indic digits to ASCII) and hamza / ى / ة folded."""
    return " ".join(fold_word(w) for w in text.split())


def parse_date(value) -> dt.date:
    """A publication date from ``YYYY-MM-DD`` (a ``date`` passes through); ValueError says what is wrong."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a date must be a string YYYY-MM-DD, got {type(value).__name__}")
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-12-06") from None


def _make(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _absolute(text: str, raw: str, pub: dt.date | None) -> dt.date | None:
    """The first written date: numeric in ``raw``, with month names in (folded) ``text``."""
    m = _NUMERIC.search(raw.translate(_ASCII_DIGITS))
    if m:
        y, mo, d = (m[1], m[2], m[3]) if m[1] else (m[6], m[5], m[4])
        if (found := _make(int(y), int(mo), int(d))) is not None:
            return found
    for m in _ABSOLUTE.finditer(text):
        day, month = int(m[1]), _MONTHS[regex.sub(r"\s+", " ", m[2])]
        if m[3]:
            found = _make(int(m[3]), month, day)
        elif pub is not None:
            found = _make(pub.year, month, day)
            if found is not None and (found - pub).days > FUTURE_SLACK_DAYS:
                found = _make(pub.year - 1, month, day)
        else:
            found = None
        if found is not None:
            return found
    return None


def _relative(text: str, pub: dt.date) -> dt.date | None:
    """The first relative day expression in (folded) ``text``, resolved against ``pub``."""
    for m in _RELATIVE.finditer(text):
        if m[1]:
            return pub - dt.timedelta(days=2)
        if m[2]:
            return pub
        if m[3]:
            return pub - dt.timedelta(days=1)
        if m[4]:
            return pub - dt.timedelta(days=7)
        if m[6]:
            return pub - dt.timedelta(days=(pub.weekday() - _WEEKDAYS[m[6]]) % 7)
    return None


def find_date(text: str, pub: dt.date | None = None) -> tuple[dt.date | None, str | None]:
    """``(date, source)`` of the first date ``text`` states: a written date (``"text"``), else a
    relative one resolved against ``pub`` (``"relative"``); ``(None, None)`` when there is none."""
    if not isinstance(text, str) or not text:
        return None, None
    folded = _fold(text)
    found = _absolute(folded, text, pub)
    if found is not None:
        return found, "text"
    if pub is not None and (found := _relative(folded, pub)) is not None:
        return found, "relative"
    return None, None
