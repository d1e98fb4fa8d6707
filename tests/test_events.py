"""Events with roles, dates, places and ACLED / PLOVER types; the CSV and GeoJSON exports; the HTML
report in a real browser. The seed article's gold LOCATIONs land where they are."""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import SEED_JSONL, SEED_TXT, read_jsonl, write_jsonl
from marsad.model.events import ACLED_COLUMNS, EVENT_MAP, events_from_record
from marsad.model.geo import default_geocoder, haversine_km
from marsad.model.html import render_html

# the seed article's places (GeoNames / OpenStreetMap coordinates of the towns)
SEED_TRUTH = {"حمص": (34.730, 36.710), "حماة": (35.133, 36.750), "تلبيسة": (34.840, 36.730), "الرستن": (34.927, 36.733),
              "دير الزور": (35.336, 40.140), "السويداء": (32.709, 36.570), "الرقة": (35.952, 39.009),
              "دمشق": (33.513, 36.292), "بغداد": (33.315, 44.366)}


def ent(text, sentence_text, label, **kw):
    start = sentence_text.index(text)
    return {"start": start, "end": start + len(text), "label": label, "text": text, **kw}


def record():
    text = ("وقتل عشرات المدنيين وأصيب 30 آخرون جراء غارات شنها الطيران الروسي على بحمص وحماة أمس. "
            "وسيطرت هيئة تحرير الشام على الرستن بعد اشتباكات مع الجيش السوري. وانسحب الجيش من دير الزور.")
    ents = [ent("عشرات المدنيين", text, "CASUALTY", count=None, approximate=True, status="killed", score=0.9),
            ent("30 آخرون", text, "CASUALTY", count=30, approximate=False, status="injured", score=0.9),
            ent("الطيران الروسي", text, "ACTOR", score=0.95), ent("بحمص", text, "LOCATION", score=0.99),
            ent("وحماة", text, "LOCATION", score=0.98), ent("هيئة تحرير الشام", text, "ACTOR", score=0.99),
            ent("الرستن", text, "LOCATION", score=0.97), ent("الجيش السوري", text, "ACTOR", score=0.9),
            ent("الجيش", text[text.index("وانسحب"):], "ACTOR"), ent("دير الزور", text, "LOCATION")]
    ents[8] = {**ents[8], "start": ents[8]["start"] + text.index("وانسحب"), "end": ents[8]["end"] + text.index("وانسحب")}
    rels = [{"head": 2, "tail": 3, "label": "ATTACKS", "score": 0.97}, {"head": 2, "tail": 4, "label": "ATTACKS", "score": 0.96},
            {"head": 0, "tail": 3, "label": "CASUALTY_IN", "score": 0.9}, {"head": 1, "tail": 3, "label": "CASUALTY_IN", "score": 0.8},
            {"head": 0, "tail": 2, "label": "CAUSED_BY", "score": 0.9}, {"head": 5, "tail": 6, "label": "CONTROLS", "score": 0.99},
            {"head": 8, "tail": 9, "label": "WITHDRAWS_FROM", "score": 0.95}]
    return {"text": text, "entities": ents, "relations": rels, "date": "2024-12-06"}


def test_one_event_per_place_and_type_with_roles_dates_and_counts():
    events = events_from_record(record(), "r1")
    assert [(e["event_type"], e["sub_event_type"], e["plover"], e["name_en"]) for e in events] == [
        ("Explosions/Remote violence", "Air/drone strike", "ASSAULT", "Homs"),
        ("Explosions/Remote violence", "Air/drone strike", "ASSAULT", "Ḩamāh"),
        ("Battles", "Non-state actor overtakes territory", "OCCUPY", "Ar Rastan"),
        ("Strategic developments", "Non-violent transfer of territory", "RETREAT", "Deir ez-Zor")]
    homs, hama, rastan, deir = events
    assert homs["actor1"] == "الطيران الروسي" and homs["actor2"] == "Civilians (Syria)"
    assert homs["fatalities"] == 10 and homs["injured"] == 30  # "tens" = 10, ACLED's convention
    assert hama["fatalities"] is None  # the casualties are counted once, where they happened
    assert homs["event_date"] == "2024-12-05" and homs["date_source"] == "relative"
    assert rastan["event_date"] == "2024-12-05"  # carried from the sentence before
    assert rastan["actor1"] == "هيئة تحرير الشام" and rastan["actor2"] is None
    assert deir["actor1"] == "الجيش" and deir["geo_precision"] == "exact" and deir["country"] == "SY"
    for e in events:
        assert record()["text"][e["start"]:e["end"]] == e["sentence"] and 0 < e["confidence"] <= 1


def test_mapping_table_and_no_geocoder():
    assert {p for _, _, p in EVENT_MAP.values()} == {"ASSAULT", "FIGHT", "RETREAT", "OCCUPY"}
    events = events_from_record(record(), "r1", geocoder=None, date="2024-01-01")
    assert all(e["lat"] is None and e["geo_note"] for e in events)
    assert events[0]["event_date"] == "2023-12-31"
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        events_from_record(record(), "r1", date="yesterday")


def test_seed_article_gold_places_land_within_25_km():
    geo = default_geocoder()
    locs = [e["text"] for r in read_jsonl(SEED_JSONL) for e in r["entities"] if e["label"] == "LOCATION"]
    country = geo.article_country(locs)
    assert country == "SY"
    found = set()
    for name in locs:
        g = geo.geocode(name, country)
        key = next((k for k in SEED_TRUTH if name in (k, "و" + k)), None)
        if key is not None:
            assert g["lat"] is not None and haversine_km(*SEED_TRUTH[key], g["lat"], g["lon"]) <= 25, (name, g)
            found.add(key)
        else:  # a region, a river, or a village the offline data lacks: null with a reason, or a country
            assert g["geo_precision"] in ("country", "exact") or g["geo_note"], (name, g)
    assert {"حمص", "حماة", "تلبيسة", "الرستن", "دير الزور", "السويداء"} <= found


def test_csv_and_geojson_exports(cli, trained_model, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl([{"id": "seed", "text": SEED_TXT.read_text(encoding="utf-8")},
                 {"id": "dated", "text": "قتل أمس ثلاثة مدنيين في حمص", "date": "2024-12-06"},
                 {"id": "bad-date", "text": "حمص", "date": "06/12/2024"}], src)
    out = tmp_path / "out.csv"
    code, _, err = cli("predict", "-m", trained_model, src, "-f", "csv", "--date", "2024-12-06", "-o", out, "-q")
    assert code == 1 and "1 of 3" in err  # the bad date fails its record only
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0])[:len(ACLED_COLUMNS)] == ACLED_COLUMNS
    bad = [r for r in rows if r["source"] == "bad-date"]
    assert len(bad) == 1 and '"date"' in bad[0]["notes"] and "YYYY-MM-DD" in bad[0]["notes"]
    assert all(r["event_date"] for r in rows if r["source"] != "bad-date")
    gj = tmp_path / "out.geojson"
    code, _, _ = cli("predict", "-m", trained_model, src, "-f", "geojson", "--date", "2024-12-06", "-o", gj, "-q")
    assert code == 1
    check_geojson(json.loads(gj.read_text(encoding="utf-8")))


def check_geojson(doc):
    """RFC 7946: a FeatureCollection of Features; a Point is [lon, lat] in range; geometry may be null."""
    assert doc["type"] == "FeatureCollection" and isinstance(doc["features"], list) and doc["features"]
    for f in doc["features"]:
        assert f["type"] == "Feature" and isinstance(f["properties"], dict) and "geometry" in f
        if f["geometry"] is not None:
            assert f["geometry"]["type"] == "Point"
            lon, lat = f["geometry"]["coordinates"]
            assert -180 <= lon <= 180 and -90 <= lat <= 90
            assert (lat, lon) == (f["properties"]["lat"], f["properties"]["lon"])


def test_html_report_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    page.write_text(render_html([{"id": "r1", **record()}, {"id": "bad", "error": "bad record"}], title="<test>"),
                    encoding="utf-8")
    browser.get(page.as_uri())
    points = browser.find_elements(By.CSS_SELECTOR, "svg#map-fallback circle.event-point")
    assert len(points) == 4  # tiles cannot load here: the SVG fallback shows the events
    assert browser.find_element(By.ID, "map-fallback").is_displayed()
    rows = browser.find_elements(By.CSS_SELECTOR, "#events-table tbody tr")
    assert len(rows) == 4
    date_col = [h.get_attribute("data-field") for h in browser.find_elements(By.CSS_SELECTOR, "#events-table th")].index("lat")
    header = browser.find_elements(By.CSS_SELECTOR, "#events-table th")[date_col]
    header.click()
    lats = [float(r.find_elements(By.TAG_NAME, "td")[date_col].text) for r in
            browser.find_elements(By.CSS_SELECTOR, "#events-table tbody tr")]
    assert lats == sorted(lats)
    header.click()
    lats = [float(r.find_elements(By.TAG_NAME, "td")[date_col].text) for r in
            browser.find_elements(By.CSS_SELECTOR, "#events-table tbody tr")]
    assert lats == sorted(lats, reverse=True)
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(set(png_pixels(png))) > 16  # not blank: many distinct byte values in the decoded rows


def png_pixels(png: bytes) -> bytes:
    """The decompressed image rows of a PNG (IDAT chunks), enough to tell a blank page."""
    import struct
    import zlib

    pos, data = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(data)
