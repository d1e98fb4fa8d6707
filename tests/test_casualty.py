"""Table tests for marsad.model.casualty (count / approximate / status of CASUALTY spans)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marsad.model.casualty import INJURED, KILLED, Casualty, normalize_casualty, parse_number

# --- parse_number --------------------------------------------------------------------------
DIGIT_CASES = [
    ("20 مدنيا", 20),
    ("1,200 شخص", 1200),
    ("1200", 1200),
    ("٣ أطفال", 3),
    ("١٥", 15),
    ("۱۲ نفرا", 12),  # Persian digits
    ("١٬٢٠٠", 1200),  # Arabic thousands separator
    ("40 ألفا", 40_000),
    ("٤٠ ألف شخص", 40_000),
    ("3 آلاف", 3000),
    ("2.5 مليون", 2_500_000),
    ("٢٫٥ مليون", 2_500_000),  # Arabic decimal separator
    ("1.5", 2),  # rounded half up
    ("20, 30", 20),  # a list, not a thousands group
    ("0", 0),
]

UNIT_CASES = [
    ("واحد", 1), ("واحدة", 1), ("واحدًا", 1),
    ("اثنان", 2), ("اثنين", 2), ("اثنتان", 2), ("اثنتين", 2),
    ("ثلاث", 3), ("ثلاثة", 3), ("أربع", 4), ("أربعة", 4), ("خمس", 5), ("خمسة", 5),
    ("ست", 6), ("ستة", 6), ("سبع", 7), ("سبعة", 7), ("ثمان", 8), ("ثماني", 8), ("ثمانية", 8),
    ("تسع", 9), ("تسعة", 9), ("عشر", 10), ("عشرة", 10),
]  # fmt: skip

TEEN_CASES = [
    ("أحد عشر", 11), ("إحدى عشرة", 11), ("اثنا عشر", 12), ("اثني عشر", 12),
    ("اثنتا عشرة", 12), ("ثلاثة عشر", 13), ("أربع عشرة", 14), ("خمسة عشر", 15),
    ("خمس عشرة", 15), ("ستة عشر", 16), ("سبعة عشر", 17), ("ثماني عشرة", 18), ("تسعة عشر", 19),
]  # fmt: skip

TENS_CASES = [
    ("عشرون", 20), ("عشرين", 20), ("ثلاثون", 30), ("ثلاثين", 30), ("أربعون", 40),
    ("أربعين", 40), ("خمسون", 50), ("خمسين", 50), ("ستون", 60), ("ستين", 60),
    ("سبعون", 70), ("سبعين", 70), ("ثمانون", 80), ("ثمانين", 80), ("تسعون", 90), ("تسعين", 90),
    ("خمسة وعشرون", 25), ("ثلاث وأربعين", 43), ("واحد وثلاثون", 31), ("إحدى وعشرين", 21),
    ("اثنان وخمسون", 52), ("ثمانية وتسعين", 98), ("خمسة و عشرون", 25),  # detached و
]  # fmt: skip

HUNDRED_CASES = [
    ("مئة", 100), ("مائة", 100), ("مئتان", 200), ("مئتين", 200), ("مائتي", 200), ("مائتا", 200),
    ("ثلاثمئة", 300), ("ثلاثمائة", 300), ("ثلاث مئة", 300), ("ثلاث مائة", 300),
    ("أربعمئة", 400), ("خمسمائة", 500), ("ستمئة", 600), ("سبعمائة", 700), ("ثمانمئة", 800),
    ("ثمانيمائة", 800), ("تسعمئة", 900), ("مئة وعشرون", 120), ("مئة وخمسة عشر", 115),
    ("ثلاثمئة وخمسة وعشرون", 325), ("مئتين وخمسين", 250),
]  # fmt: skip

THOUSAND_CASES = [
    ("ألف", 1000), ("ألفان", 2000), ("ألفين", 2000), ("آلاف", None), ("ثلاثة آلاف", 3000),
    ("أربعين ألفا", 40_000), ("أربعين ألفًا", 40_000), ("عشرة آلاف", 10_000),
    ("خمسة عشر ألفا", 15_000), ("مئة ألف", 100_000), ("خمسمئة ألف", 500_000),
    ("مئتي ألف", 200_000), ("ألف وخمسمئة", 1500), ("ألفين وثلاثمئة", 2300),
    ("ثلاثة آلاف ومئتان", 3200), ("ألف ونصف", 1500), ("مليون", 1_000_000),
    ("ثلاثة ملايين", 3_000_000), ("مليون ونصف", 1_500_000),
    ("مليون وخمسمئة ألف", 1_500_000),
]  # fmt: skip

CLITIC_AND_SPELLING_CASES = [
    ("وخمسة", 5), ("بخمسة", 5), ("لثلاثة", 3), ("والثلاثة", 3), ("للعشرين", 20),
    ("وعشرون", 20), ("فثلاثة", 3),
    ("ثَلاثَةُ", 3), ("خمـــسة", 5), ("عِشْرُونَ", 20), ("أَرْبَعِينَ أَلْفًا", 40_000),
    ("ﻻ", None),  # presentation form, not a number
]  # fmt: skip

# The first number expression decides; a word that cannot continue a number ends it.
FIRST_EXPRESSION_CASES = [
    ("قتل ثلاثة أشخاص وأصيب خمسة آخرون", 3),
    ("خمسة أطفال وثلاثة", 5),
    ("مقتل 20 مدنيا", 20),
    ("خمسة ثلاثة", 5),  # two units without و do not add up
    ("خمسة وثلاثة", 5),  # nor with و (units never follow units)
    ("ألف ألف", 1000),
    ("أكثر من ٤٠ ألف شخص", 40_000),
    ("خمسة منهم", 5),
    ("أحد المسعفين", 1),
    ("أحدهما", 1),
]

NONE_CASES = [
    "", " ", "😀🔥", "hello world", "قتل أشخاص", "عشرات القتلى", "العشرات", "مئات المدنيين",
    "عدد من الجرحى", "بضعة", "عدة أشخاص",
    "يوم الأحد",  # Sunday, not "one"
    "يوم الاثنين",  # Monday, not "two"
    "في المئة",  # per cent
    "لست أدري",  # ل + ست is not six
    "أثناء الهجوم",  # not اثنا
    "عدد القتلى",  # "the number of", not vague without من
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    DIGIT_CASES
    + UNIT_CASES
    + TEEN_CASES
    + TENS_CASES
    + HUNDRED_CASES
    + THOUSAND_CASES
    + CLITIC_AND_SPELLING_CASES
    + FIRST_EXPRESSION_CASES,
)
def test_parse_number(text, expected):
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", NONE_CASES)
def test_parse_number_none(text):
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 20_000, None),
        ("1" * 20_000, None),  # too long to be a count
        ("٣" * 20_000, None),
        ("ـ" * 20_000, None),  # tatweel only
        ("َ" * 20_000, None),  # diacritics only
        ("و" * 20_000, None),
        ("ألف " * 5000, 1000),
        ("قتل 5 " + "ا" * 20_000, 5),
        ("نص " * 6000 + "عشرون قتيلا", 20),
    ],
)
def test_parse_number_long_inputs(text, expected):
    assert parse_number(text) == expected


def test_parse_number_non_string():
    assert parse_number(None) is None  # type: ignore[arg-type]


# --- normalize_casualty: counts --------------------------------------------------------------
# Duals: -ان is always a dual; -ين only where the plural is a different form.
DUAL_CASES = [
    ("قتيلان", 2), ("قتيلين", 2), ("جريحان", 2), ("جريحين", 2), ("جنديان", 2),
    ("جنديين", 2), ("طفلان", 2), ("طفلين", 2), ("شخصين", 2), ("شابين", 2), ("عنصرين", 2),
    ("مدنيان", 2), ("مسعفان", 2), ("آخران", 2), ("آخرين", 2), ("القتيلين", 2), ("وجريحان", 2),
    ("طفليه", 2),
    ("مدنيين اثنين", 2), ("طفلين اثنين", 2),
    # plurals that look like an oblique dual: no count
    ("مدنيين", None), ("المدنيين", None), ("مقاتلين", None), ("مسعفين", None),
    ("مصابين", None), ("صحفيين", None), ("عسكريين", None), ("قتلى", None), ("جرحى", None),
    ("آخرون", None), ("أطفال", None), ("فتيات", None),
]  # fmt: skip

SINGULAR_CASES = [
    ("جندي", 1), ("مدني", 1), ("طفل", 1), ("قتيل", 1), ("قتيلا", 1), ("شخص", 1),
    ("القيادي", 1), ("أحدهما", 1), ("والآخر", 1), ("أحد المسعفين", 1),
    ("أحد المسعفين القتلى", 1), ("نجل قائد", 1), ("جندي إسرائيلي", 1), ("امرأة", 1),
    ("شخص واحد", 1),
    ("", None), ("...", None), ("من", None),
]  # fmt: skip

SUBSET_CASES = [
    ("خمسة منهم", 5),
    ("ثلاثة من عناصر", 3),
    ("أربعة من جنوده", 4),
    ("اثنان منهم", 2),
]


@pytest.mark.parametrize(("span", "count"), DUAL_CASES + SINGULAR_CASES + SUBSET_CASES)
def test_count(span, count):
    assert normalize_casualty(span).count == count


# --- normalize_casualty: approximate and vague ----------------------------------------------
APPROX_CASES = [
    # (span, before, after, count, approximate)
    ("نحو 40 مقاتلا", "", "", 40, True),
    ("أكثر من ٤٠ ألف شخص", "", "", 40_000, True),
    ("قرابة مئة", "", "", 100, True),
    ("حوالي 30 شخصا", "", "", 30, True),
    ("حوالى 30 شخصا", "", "", 30, True),
    ("زهاء ألف", "", "", 1000, True),
    ("ما يزيد عن 50 مدنيا", "", "", 50, True),
    ("ما لا يقل عن عشرة أشخاص", "", "", 10, True),
    ("أقل من عشرين", "", "", 20, True),
    ("أزيد من 60 قتيلا", "", "", 60, True),
    ("بنحو 12 شخصا", "", "", 12, True),
    ("20 مدنيا", "قتل", "على الأقل في الغارة", 20, True),
    ("20", "قتل", "مدنيا على الأقل", 20, True),
    ("40 مقاتلا", "قتل نحو", "", 40, True),  # approximator left outside the span
    ("عشرون ونيف", "", "", 20, True),
    ("20 مدنيا", "قتل", "", 20, False),
    # approximators of a different number do not count
    ("خمسة آخرون", "قتل نحو ثلاثين شخصا وأصيب", "", 5, False),
    ("20 شخصا", "قتل", "وأصيب 30 على الأقل", 20, False),
    ("20 شخصا", "قتل", "وأصيب نحو 30", 20, False),
]

VAGUE_CASES = [
    "عشرات القتلى والمصابين",
    "العشرات",
    "مئات المدنيين",
    "آلاف",
    "عشرات الآلاف",
    "عدد من الجرحى",
    "عددا من المدنيين",
    "العديد من القتلى",
    "بضعة أشخاص",
    "عدة أشخاص",
]


@pytest.mark.parametrize(("span", "before", "after", "count", "approximate"), APPROX_CASES)
def test_approximate(span, before, after, count, approximate):
    result = normalize_casualty(span, before, after)
    assert (result.count, result.approximate) == (count, approximate)


@pytest.mark.parametrize("span", VAGUE_CASES)
def test_vague(span):
    result = normalize_casualty(span)
    assert result.count is None
    assert result.approximate is True


# --- normalize_casualty: status ------------------------------------------------------------
STATUS_CASES = [
    # (span, before, after, status)
    ("20 مدنيا", "مقتل", "", KILLED),
    ("20 مدنيا", "أسفر القصف عن مقتل", "وإصابة 30 آخرين", KILLED),
    ("5 أشخاص", "إصابة", "", INJURED),
    ("قتيلان", "", "", KILLED),  # the noun itself
    ("ثلاثة جرحى", "", "", INJURED),
    ("جريحان", "", "", INJURED),
    ("شهيدا", "ارتقى 12", "", KILLED),
    # mixed killed + injured in one span: killed wins
    ("عشرات القتلى والمصابين", "", "", KILLED),
    ("50 شخصا بين قتيل وجريح", "", "", KILLED),
    # the nearest cue wins
    ("ثلاثة أشخاص", "قتل", "وأصيب خمسة آخرون", KILLED),
    ("خمسة آخرون", "قتل ثلاثة أشخاص وأصيب", "", INJURED),
    ("جندي", "أسفر الهجوم عن مقتل", "وإصابة اثنين آخرين", KILLED),
    ("اثنين آخرين", "أسفر الهجوم عن مقتل جندي وإصابة", "", INJURED),
    # the span's own noun beats a cue that belongs to an earlier count
    ("عشرات الجرحى", "سقط 20 قتيلا و", "", INJURED),
    ("20 قتيلا", "أصيب 3 جنود في هجوم أدى إلى سقوط", "", KILLED),
    # ... and beats a left event that governs another count
    ("قتيلين", "أسفر القصف عن إصابة شخص وسقوط", "", KILLED),
    # a partitive span ("one of the wounded died"): the governing event beats its noun
    ("أحد المصابين", "قتل", "", KILLED),
    ("أحد الجرحى", "استشهد", "", KILLED),
    ("ثلاثة من الجرحى", "أعلن عن وفاة", "", KILLED),
    # a victim noun on the left names the toll
    ("20", "ارتفعت حصيلة القتلى إلى", "", KILLED),
    ("35 شخصا", "ارتفع عدد الجرحى إلى", "", INJURED),
    # subsets inherit the outer verb
    ("5 أطفال", "مقتل 20 مدنيا بينهم", "وإصابة 30 آخرين", KILLED),
    ("خمسة منهم", "أصيب 12 شخصا", "", INJURED),
    # cues on the right
    ("20 شخصا", "لقي", "حتفهم", KILLED),
    ("ثلاثة مدنيين", "", "أصيبوا بجروح", INJURED),
    ("ثلاثة مدنيين", "", "قتلوا في الغارة", KILLED),
    # clitics, diacritics, other verb forms
    ("20 مدنيا", "ومقتل", "", KILLED),
    ("20 مدنيا", "بعد مَصْرَع", "", KILLED),
    ("20 مدنيا", "أدى إلى استشهاد", "", KILLED),
    ("20 مدنيا", "أودى بحياة", "", KILLED),
    ("ثلاثة", "وجرح", "", INJURED),
    ("ثلاثة أشخاص", "أسفر عن إصابة", "بجروح خطيرة", INJURED),
    # no cue at all
    ("20 مدنيا", "", "", None),
    ("خمسة أطفال", "نقل", "إلى المستشفى", None),
]


@pytest.mark.parametrize(("span", "before", "after", "status"), STATUS_CASES)
def test_status(span, before, after, status):
    assert normalize_casualty(span, before, after).status == status


# --- whole results -------------------------------------------------------------------------
FULL_CASES = [
    ("مقتل", "20 مدنيا", "", Casualty(20, False, KILLED)),
    ("أسفر عن", "نحو 40 مقاتلا", "على الأقل", Casualty(40, True, None)),
    ("", "عشرات القتلى والمصابين", "", Casualty(None, True, KILLED)),
    ("قتل", "أكثر من ٤٠ ألف شخص", "", Casualty(40_000, True, KILLED)),
    ("", "قتيلان", "", Casualty(2, False, KILLED)),
    ("مقتل", "القيادي", "في التنظيم أبو عمر", Casualty(1, False, KILLED)),
    ("قتل ثلاثة أشخاص وأصيب", "خمسة آخرون", "", Casualty(5, False, INJURED)),
    ("لَقِيَ", "٣ أطفالٍ", "حتفَهم", Casualty(3, False, KILLED)),
]


@pytest.mark.parametrize(("before", "span", "after", "expected"), FULL_CASES)
def test_normalize_casualty(before, span, after, expected):
    assert normalize_casualty(span, before, after) == expected


def test_defaults_and_long_context():
    long = "كلام " * 4000
    result = normalize_casualty("20 قتيلا", long + "مقتل", "على الأقل " + long)
    assert result == Casualty(20, True, KILLED)
    assert normalize_casualty("قتيل " * 5000).count == 1


# --- never raises --------------------------------------------------------------------------
_VOCAB = [
    "قتل", "مقتل", "أصيب", "إصابة", "وإصابة", "جرحى", "قتلى", "قتيلان", "آخرين", "خمسة",
    "وعشرون", "عشر", "مئة", "ألف", "آلاف", "ألفا", "ونصف", "عشرات", "عدد", "من", "منهم",
    "بينهم", "نحو", "على", "الأقل", "أكثر", "20", "٣", "1,200", "2.5", "و", "ال", "لست",
    "أحدهما", "مدنيين", "جنديين", "،", ".", "٫", "٬", "ـ", "ً",
]  # fmt: skip
_arabic_text = st.lists(st.sampled_from(_VOCAB), max_size=30).map(" ".join)
_any_text = st.one_of(st.text(max_size=200), _arabic_text)


def _check(result: Casualty) -> None:
    assert result.count is None or (isinstance(result.count, int) and result.count >= 0)
    assert isinstance(result.approximate, bool)
    assert result.status in (KILLED, INJURED, None)


@settings(max_examples=200, deadline=None)
@given(_any_text, _any_text, _any_text)
def test_normalize_casualty_never_raises(span, before, after):
    _check(normalize_casualty(span, before, after))


@settings(max_examples=200, deadline=None)
@given(_any_text)
def test_parse_number_never_raises(text):
    value = parse_number(text)
    assert value is None or (isinstance(value, int) and value >= 0)
