"""The offline geocoder (``marsad.model.geo``): Arabic spellings with clitics to coordinates,
the article's country deciding between namesakes, null with a reason, and the cached index."""

from __future__ import annotations

import time

import pytest

from conftest import SHARED
from marsad.model.geo import Geocoder, default_geocoder, haversine_km

WORLD_CITIES = SHARED / "data" / "world_cities_ar" / "world-cities.csv"

# (spelling as news writes it, article country, true latitude, true longitude, ISO code)
PLACES = [
    ("بحمص", "SY", 34.730, 36.710, "SY"), ("حماة", "SY", 35.133, 36.750, "SY"), ("وتلبيسة", "SY", 34.840, 36.730, "SY"),
    ("الرستن", "SY", 34.927, 36.733, "SY"), ("والرستن", "SY", 34.927, 36.733, "SY"), ("بدير الزور", "SY", 35.336, 40.140, "SY"),
    ("للسويداء", "SY", 32.709, 36.570, "SY"), ("درعا", "SY", 32.625, 36.106, "SY"), ("البوكمال", "SY", 34.453, 40.919, "SY"),
    ("بحلب", "SY", 36.202, 37.134, "SY"), ("ودمشق", "SY", 33.513, 36.292, "SY"), ("إدلب", "SY", 35.931, 36.634, "SY"),
    ("الرقة", "SY", 35.952, 39.009, "SY"), ("باللاذقية", "SY", 35.520, 35.792, "SY"), ("طرطوس", "SY", 34.889, 35.887, "SY"),
    ("القامشلي", "SY", 37.052, 41.231, "SY"), ("منبج", "SY", 36.528, 37.955, "SY"), ("وتدمر", "SY", 34.560, 38.267, "SY"),
    ("بغداد", "IQ", 33.315, 44.366, "IQ"), ("بالموصل", "IQ", 36.340, 43.130, "IQ"), ("البصرة", "IQ", 30.508, 47.783, "IQ"),
    ("الفلوجة", "IQ", 33.350, 43.783, "IQ"), ("وكركوك", "IQ", 35.468, 44.392, "IQ"), ("أربيل", "IQ", 36.191, 44.009, "IQ"),
    ("بيروت", "LB", 33.894, 35.502, "LB"), ("صيدا", "LB", 33.563, 35.368, "LB"), ("وبعلبك", "LB", 34.006, 36.218, "LB"),
    ("طرابلس", "LB", 34.437, 35.850, "LB"), ("طرابلس", "LY", 32.887, 13.191, "LY"), ("بنغازي", "LY", 32.117, 20.067, "LY"),
    ("مصراتة", "LY", 32.377, 15.092, "LY"), ("صنعاء", "YE", 15.369, 44.191, "YE"), ("بعدن", "YE", 12.785, 45.019, "YE"),
    ("الحديدة", "YE", 14.798, 42.954, "YE"), ("تعز", "YE", 13.580, 44.021, "YE"), ("غزة", "PS", 31.502, 34.467, "PS"),
    ("وخان يونس", "PS", 31.344, 34.304, "PS"), ("برفح", "PS", 31.297, 34.245, "PS"), ("جنين", "PS", 32.461, 35.300, "PS"),
    ("نابلس", "PS", 32.222, 35.262, "PS"), ("القاهرة", "EG", 30.044, 31.236, "EG"), ("بالإسكندرية", "EG", 31.200, 29.918, "EG"),
    ("العريش", "EG", 31.132, 33.803, "EG"), ("الخرطوم", "SD", 15.501, 32.559, "SD"), ("الفاشر", "SD", 13.628, 25.349, "SD"),
    ("مقديشو", "SO", 2.046, 45.318, "SO"), ("عمان", "JO", 31.956, 35.945, "JO"), ("الرياض", "SA", 24.713, 46.675, "SA"),
    ("كابل", "AF", 34.555, 69.207, "AF"), ("مدينة حمص", "SY", 34.730, 36.710, "SY"), ("دير الزور", None, 35.336, 40.140, "SY"),
]


@pytest.fixture(scope="module")
def geo():
    return default_geocoder()


def test_spellings_with_clitics_land_within_25_km(geo):
    assert len(PLACES) >= 40 and len({p[4] for p in PLACES}) >= 8
    wrong = []
    for name, country, lat, lon, iso in PLACES:
        g = geo.geocode(name, country)
        if g["lat"] is None or g["country"] != iso or haversine_km(lat, lon, g["lat"], g["lon"]) > 25:
            wrong.append((name, country, g))
    assert not wrong, wrong


def test_entity_fields(geo):
    g = geo.geocode("وتلبيسة", "SY")
    assert set(g) >= {"geonameid", "name_en", "country", "admin1", "lat", "lon", "geo_precision"}
    assert g["geo_precision"] == "exact" and isinstance(g["geonameid"], int) and g["admin1"].startswith("SY.")


def test_ambiguous_and_missing_are_null_with_a_reason(geo):
    amb = geo.geocode("طرابلس")  # Tripoli: Libya or Lebanon, and the article says neither
    assert amb["lat"] is None and "ambiguous" in amb["geo_note"]
    missing = geo.geocode("والروسي", "SY")
    assert missing["lat"] is None and "not in the gazetteer" in missing["geo_note"]
    assert geo.geocode("", "SY")["geo_note"]


def test_countries_and_near_places(geo):
    if not WORLD_CITIES.exists():
        pytest.skip(f"{WORLD_CITIES} is absent (Arabic country names come from it)")
    syria = geo.geocode("سوريا")
    assert syria["country"] == "SY" and syria["geo_precision"] == "country" and syria["lat"] is not None
    near = geo.geocode("بريف حمص الشمالي", "SY")
    assert near["name_en"] == "Homs" and near["geo_precision"] == "near" and near["geo_note"]
    assert geo.article_country(["حمص", "سوريا", "دير الزور", "بغداد"]) == "SY"


def test_works_without_world_cities_and_loads_fast_from_cache(tmp_path):
    first = Geocoder(None, cache=tmp_path)  # builds and caches the index
    assert first.geocode("بحمص")["name_en"] == "Homs"
    assert list(tmp_path.glob("index-*.json.gz"))
    t = time.perf_counter()
    again = Geocoder(None, cache=tmp_path)
    assert time.perf_counter() - t < 1.0
    assert again.geocode("وتلبيسة", "SY")["name_en"] == first.geocode("وتلبيسة", "SY")["name_en"]


def test_a_missing_world_cities_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="world_cities=None"):
        Geocoder(tmp_path / "nope.csv", cache=tmp_path)
