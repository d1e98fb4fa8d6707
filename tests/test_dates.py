"""Event dates (``marsad.model.dates``): written dates and relative ones against the publication date."""

from __future__ import annotations

import datetime as dt

import pytest

from marsad.model.dates import find_date, parse_date

PUB = dt.date(2024, 12, 6)  # a Friday


@pytest.mark.parametrize("text, expected, source", [
    ("قالت المعارضة اليوم الجمعة إن قواتها وصلت", "2024-12-06", "relative"),
    ("قتل ثلاثة أمس في حلب", "2024-12-05", "relative"),
    ("سقطت قذيفة الليلة الماضية", "2024-12-05", "relative"),
    ("وقع الهجوم أول أمس", "2024-12-04", "relative"),
    ("غارات صباح السبت", "2024-11-30", "relative"),
    ("مساء الخميس", "2024-12-05", "relative"),
    ("يوم الاثنين", "2024-12-02", "relative"),
    ("خلال الأسبوع الماضي", "2024-11-29", "relative"),
    ("في 23 يناير 2024", "2024-01-23", "text"),
    ("منذ 7 أكتوبر", "2024-10-07", "text"),
    ("في ٢٣ كانون الثاني ٢٠٢٤", "2024-01-23", "text"),
    ("في 15 ديسمبر", "2023-12-15", "text"),  # more than a week after publication: last year's
    ("بتاريخ 2024/03/05", "2024-03-05", "text"),
    ("بتاريخ ٥/٣/٢٠٢٤", "2024-03-05", "text"),
])
def test_dates(text, expected, source):
    found, how = find_date(text, PUB)
    assert (found.isoformat(), how) == (expected, source)


def test_no_date_and_no_publication_date():
    assert find_date("قتل ثلاثة في حلب", PUB) == (None, None)
    assert find_date("قتل أمس", None) == (None, None)  # relative needs the publication date
    assert find_date("7 أكتوبر", None) == (None, None)  # no year, nothing to take it from
    assert find_date("23 يناير 2024")[0] == dt.date(2024, 1, 23)
    assert find_date("في 31 فبراير 2024", PUB) == (None, None)
    assert find_date(None, PUB) == (None, None)


def test_parse_date_errors_say_the_format():
    assert parse_date("2024-12-06") == PUB
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date("06/12/2024")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_date(20241206)
