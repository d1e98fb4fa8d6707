"""ACLED / PLOVER-style event records: one row per (place, event type) in a sentence.

Analysts build tables of events (who did what, where, when, with how many killed or injured);
:func:`events_from_record` turns one extracted record into such rows:

* **Type**: from the relations, with the sentence's wording to pick a sub-type
  (:data:`EVENT_MAP`, below). A sentence with casualties and no relation is still an event.
* **Roles**: ``actor1`` is the agent (the head of ATTACKS / CONTROLS / WITHDRAWS_FROM, the actor
  a CAUSED_BY names); ``actor2`` the target actor, where the sentence names one after the agent
  and it is no agent itself, or ``Civilians (<country>)`` when civilians were the victims.
* **Place**: the LOCATION the relation names (or the sentence's first place), geocoded offline
  (:mod:`.geo`): ``geonameid``, ``country``, ``admin1``, ``latitude``, ``longitude``,
  ``geo_precision`` and, when null or approximate, ``geo_note`` saying why.
* **Date**: the sentence's own date, else the last date an earlier sentence gave, else the
  publication date (``record["date"]``), with ``date_source`` text / relative / publication.
* **Counts**: ``fatalities`` is ACLED's conservative count (the largest stated figure; a vague
  one reads :data:`VAGUE_COUNTS`: "tens" 10, "hundreds" 100 ...); ``injured`` is kept apart.
* Each event keeps its ``sentence``, ``start`` / ``end`` offsets and a ``confidence`` (the
  lowest score of the relations and the place entity behind it).

The fields of the earlier sentence-level view (``event_types``, ``actors``, ``locations``,
``killed``, ``casualties``, ``relations``) are kept for existing readers.
"""

from __future__ import annotations

import datetime as dt

from .casualty import vague_quantity
from .dates import find_date, parse_date
from .geo import GEO_FIELDS
from .text import fold_word, split_sentences

__all__ = ["events_from_record", "EVENT_TYPES", "EVENT_MAP", "VAGUE_COUNTS", "ACLED_COLUMNS"]

# relation label -> the short event type of the sentence-level view (kept for existing readers)
EVENT_TYPES = {
    "ATTACKS": "attack",
    "CAUSED_BY": "attack",
    "CASUALTY_IN": "casualties",
    "CONTROLS": "territory_control",
    "WITHDRAWS_FROM": "withdrawal",
}

# (kind, cue) -> (ACLED event_type, ACLED sub_event_type, PLOVER event). The kind is the relation
# that makes the event (CASUALTY: casualties without an ATTACKS); the cue is the first group of
# _CUES whose word stem occurs in the sentence ("" when none does).
EVENT_MAP = {
    ("ATTACKS", "air"): ("Explosions/Remote violence", "Air/drone strike", "ASSAULT"),
    ("ATTACKS", "shelling"): ("Explosions/Remote violence", "Shelling/artillery/missile attack", "ASSAULT"),
    ("ATTACKS", "explosive"): ("Explosions/Remote violence", "Remote explosive/landmine/IED", "ASSAULT"),
    ("ATTACKS", "clash"): ("Battles", "Armed clash", "FIGHT"),
    ("ATTACKS", ""): ("Battles", "Armed clash", "FIGHT"),
    ("CONTROLS", "clash"): ("Battles", "Non-state actor overtakes territory", "OCCUPY"),
    ("CONTROLS", ""): ("Strategic developments", "Non-violent transfer of territory", "OCCUPY"),
    ("WITHDRAWS_FROM", ""): ("Strategic developments", "Non-violent transfer of territory", "RETREAT"),
    ("CASUALTY", "air"): ("Explosions/Remote violence", "Air/drone strike", "ASSAULT"),
    ("CASUALTY", "shelling"): ("Explosions/Remote violence", "Shelling/artillery/missile attack", "ASSAULT"),
    ("CASUALTY", "explosive"): ("Explosions/Remote violence", "Remote explosive/landmine/IED", "ASSAULT"),
    ("CASUALTY", "clash"): ("Battles", "Armed clash", "FIGHT"),
    ("CASUALTY", "civilians"): ("Violence against civilians", "Attack", "ASSAULT"),
    ("CASUALTY", ""): ("Battles", "Armed clash", "FIGHT"),
}
# cue -> word stems (hamza-folded, as fold_word folds them); checked in this order
_CUES = (
    ("air", ("غاره", "غارات", "طيران", "طائره", "طاءره", "طاىره", "مسيره", "مسيرات", "جويه")),
    ("shelling", ("قصف", "مدفعي", "صاروخ", "صواريخ", "قذيفه", "قذائف", "قذايف", "هاون", "راجمات")),
    ("explosive", ("انفجار", "عبوه", "لغم", "الغام", "مفخخه", "مفخخ", "تفجير", "ناسفه")),
    ("clash", ("اشتباك", "اشتباكات", "معارك", "معركه", "مواجهات", "قتال", "هجوم")),
)
_CIVILIANS = ("مدني", "اطفال", "طفل", "نساء", "امراه", "مواطن", "سكان", "مسعف", "صحفي")
# ACLED's conservative reading of vague counts (normalised words from casualty.vague_quantity)
VAGUE_COUNTS = {"عشرات": 10, "دزينه": 12, "دزينات": 12, "مئات": 100, "ميات": 100, "الاف": 1000, "الوف": 1000,
                "ملايين": 1000000, "مليارات": 1000000000, "بضع": 3, "بضعه": 3, "عده": 3, "عدد": 3, "عديد": 3,
                "بعض": 1}
ACLED_COLUMNS = ("event_date", "event_type", "sub_event_type", "actor1", "actor2", "country", "admin1", "location",
                 "latitude", "longitude", "geo_precision", "fatalities", "source", "notes")
_KIND_OF = {"ATTACKS": "ATTACKS", "CONTROLS": "CONTROLS", "WITHDRAWS_FROM": "WITHDRAWS_FROM"}
_OLD_TYPE = {"ATTACKS": "attack", "CONTROLS": "territory_control", "WITHDRAWS_FROM": "withdrawal", "CASUALTY": "casualties"}


def _geo_key_text(text: str) -> list[str]:
    return [fold_word(w) for w in text.split()]


def _cue(sentence: str, kind: str, civilians: bool) -> str:
    """Which wording group the sentence has, for :data:`EVENT_MAP`."""
    words = [_bare(w) for w in _geo_key_text(sentence)]
    for name, stems in _CUES:
        if any(w.startswith(stems) for w in words):
            if (kind, name) in EVENT_MAP:
                return name
    return "civilians" if civilians and (kind, "civilians") in EVENT_MAP else ""


def _bare(word: str) -> str:
    """A folded word without its leading clitics and article (``وبالغارات`` -> ``غارات``)."""
    word = word.lstrip("وفبل") if len(word) > 4 else word
    return word[2:] if word.startswith("ال") and len(word) > 4 else word


def _is_civilian(cas: dict) -> bool:
    return any(_bare(w).startswith(_CIVILIANS) for w in _geo_key_text(cas.get("text") or ""))


def conservative_count(cas: dict) -> int | None:
    """A casualty entity's count, ACLED's way: the stated number, or the floor of a vague one."""
    if isinstance(cas.get("count"), int):
        return cas["count"]
    word = vague_quantity(cas.get("text") or "")
    return VAGUE_COUNTS.get(word) if word else None


def _max(values) -> int | None:
    vals = [v for v in values if isinstance(v, int)]
    return max(vals) if vals else None


def _actor_name(text: str) -> str:
    """An actor's name without a clitic before its article (``والجيش`` -> ``الجيش``, ``للقوات`` -> ``القوات``)."""
    if text.startswith("لل") and len(text) > 4:
        return "ال" + text[2:]
    for c in ("وبال", "وال", "فال", "بال", "كال"):
        if text.startswith(c) and len(text) > len(c) + 1:
            return "ال" + text[len(c):]
    return text


# --- grouping a sentence's relations into events ---------------------------------------------
def _new_group(kind: str, place: int | None) -> dict:
    return {"kind": kind, "place": place, "agents": [], "casualties": [], "rels": []}


def _groups(ents: list[dict], idx: list[int], srels: list[dict], place_key) -> list[dict]:
    """Events of one sentence: one per (place, kind), in order of first mention."""
    groups: dict[tuple, dict] = {}

    def group(kind, place):
        key = (kind, place_key(place))
        if key not in groups:
            groups[key] = _new_group(kind, place)
        return groups[key]

    for r in srels:
        if r["label"] in _KIND_OF:
            g = group(_KIND_OF[r["label"]], r["tail"])
            g["rels"].append(r)
            if r["head"] not in g["agents"]:
                g["agents"].append(r["head"])
    linked = {r["tail"] for r in srels if ents[r["tail"]]["label"] == "LOCATION"}
    unlinked = [i for i in idx if ents[i]["label"] == "LOCATION" and i not in linked]
    fallback = unlinked[0] if unlinked else None
    for c in (i for i in idx if ents[i]["label"] == "CASUALTY"):
        _place_casualty(c, srels, groups, group, fallback, place_key)
    return sorted(groups.values(), key=lambda g: (ents[g["place"]]["start"] if g["place"] is not None else -1))


def _place_casualty(c: int, srels: list[dict], groups: dict, group, fallback, place_key) -> None:
    """Put casualty ``c`` in the attack at its place, else a casualty event at its place."""
    places = [r["tail"] for r in srels if r["head"] == c and r["label"] == "CASUALTY_IN"]
    by = [r for r in srels if r["head"] == c and r["label"] == "CAUSED_BY"]
    rels = [r for r in srels if r["head"] == c and r["label"] == "CASUALTY_IN"]
    if not places:
        attacks = [g for g in groups.values() if g["kind"] == "ATTACKS" and
                   (not by or any(r["tail"] in g["agents"] for r in by))]
        places = [attacks[0]["place"]] if attacks else [fallback]
    for p in places[:1]:  # counted once: at the first place it is tied to
        key = ("ATTACKS", place_key(p))
        g = groups[key] if key in groups else group("CASUALTY", p)
        g["casualties"].append(c)
        g["rels"] += rels + by
        g["agents"] += [r["tail"] for r in by if r["tail"] not in g["agents"]]


_TARGET_CUES = ("علي", "ضد", "تجمعات", "مواقع", "صفوف", "اليات", "عناصر", "مقرات", "معاقل", "استهدف", "تستهدف",
                "يستهدف", "استهداف", "مع", "بين")


def _actor2(ctx: dict, g: dict, cue: str) -> int | None:
    """The other side: in a clash without agents, the second actor of the sentence; else the first
    actor after the agent, no agent itself, within three words after a target cue (على، ضد ...)."""
    ents, idx, text = ctx["ents"], ctx["idx"], ctx["text"]
    actors = [i for i in idx if ents[i]["label"] == "ACTOR" and i not in ctx["agents"]]
    if g["kind"] not in ("ATTACKS", "CASUALTY"):
        return None
    if not g["agents"]:
        if g["kind"] == "CASUALTY" and cue == "clash" and len(actors) >= 2:
            g["agents"].append(actors[0])
            return actors[1]
        return None
    after = ents[g["agents"][0]]["end"]
    for i in actors:
        before = _geo_key_text(text[after:ents[i]["start"]])[-3:]
        if ents[i]["start"] >= after and any(w.startswith(_TARGET_CUES) or _bare(w).startswith(_TARGET_CUES)
                                             for w in before):
            return i
    return None


# --- one event row ---------------------------------------------------------------------------
def _event_row(ctx: dict, g: dict, sent: tuple[int, int], when: tuple) -> dict:
    """The event record of one group (see the module docstring for the fields)."""
    ents, text = ctx["ents"], ctx["text"]
    s, e = sent
    sentence = text[s:e]
    cas = [ents[i] for i in g["casualties"]]
    killed = [c for c in cas if c.get("status") == "killed"]
    injured = [c for c in cas if c.get("status") == "injured"]
    civ = any(_is_civilian(c) for c in killed + injured)
    cue = _cue(sentence, g["kind"], civ)
    etype, sub, plover = EVENT_MAP[(g["kind"], cue)]
    a2 = _actor2(ctx, g, cue)
    place = ents[g["place"]] if g["place"] is not None else None
    geo = ctx["geocode"](place["text"]) if place is not None else {k: None for k in GEO_FIELDS}
    if place is None:
        geo = {**geo, "geo_note": "the sentence names no place"}
    country = ctx["country_name"](geo.get("country") or ctx["country"])
    actor2 = _actor_name(ents[a2]["text"]) if a2 is not None else (f"Civilians ({country})" if civ and country else
                                                                     "Civilians" if civ else None)
    scores = [r["score"] for r in g["rels"] if isinstance(r.get("score"), (int, float))]
    if place is not None and isinstance(place.get("score"), (int, float)):
        scores.append(place["score"])
    agents = [_actor_name(ents[i]["text"]) for i in g["agents"]]
    return {
        "record_id": ctx["rid"], "event": None, "event_date": when[0].isoformat() if when[0] else None,
        "date_source": when[1], "event_type": etype, "sub_event_type": sub, "plover": plover,
        "actor1": agents[0] if agents else None, "assoc_actor_1": "; ".join(agents[1:]) or None, "actor2": actor2,
        "location": place["text"] if place is not None else None, "country_name": ctx["country_name"](geo.get("country")),
        **{k: geo.get(k) for k in GEO_FIELDS}, "geo_note": geo.get("geo_note"),
        "fatalities": _max(conservative_count(c) for c in killed), "injured": _max(conservative_count(c) for c in injured),
        "approximate": any(c.get("approximate") for c in cas), "sentence": sentence, "start": s, "end": e,
        "confidence": round(min(scores), 4) if scores else None,
        # the sentence-level view's fields
        "event_types": [_OLD_TYPE[g["kind"]]], "actors": agents, "locations": [place["text"]] if place else [],
        "killed": _max(c.get("count") for c in killed),
        "casualties": [{k: c.get(k) for k in ("text", "count", "status", "approximate", "start", "end")} for c in cas],
        "relations": [{"head": ents[r["head"]]["text"], "label": r["label"], "tail": ents[r["tail"]]["text"],
                       **({"score": r["score"]} if "score" in r else {})} for r in g["rels"]],
    }


def _context(record: dict, record_id, geocoder, date) -> dict:
    """What every event of a record shares: the entities, the article's country, a geocode cache."""
    ents = record.get("entities") or []
    pub = date if date is not None else record.get("date")
    pub = parse_date(pub) if pub not in (None, "") else None
    mentions = [e["text"] for e in ents if e.get("label") == "LOCATION"]
    country = geocoder.article_country(mentions) if geocoder else None
    cache: dict[str, dict] = {}

    def geocode(name: str) -> dict:
        if name not in cache:
            cache[name] = geocoder.geocode(name, country) if geocoder else {
                **{k: None for k in GEO_FIELDS}, "geo_note": "geocoding is off"}
        return cache[name]

    def country_name(iso):
        return geocoder.country_info.get(iso, [iso])[0] if geocoder and iso else iso

    return {"ents": ents, "text": record.get("text") or "", "rid": record_id, "pub": pub, "country": country,
            "geocode": geocode, "country_name": country_name}


def events_from_record(record: dict, record_id=None, *, geocoder="default", date=None) -> list[dict]:
    """Events of one extracted record, in text order (see the module docstring).

    ``geocoder``: a :class:`~.geo.Geocoder`, ``"default"`` (the shared one) or None (no
    coordinates). ``date``: the publication date (``YYYY-MM-DD`` or a date); by default
    ``record["date"]``. A date that cannot be read is a ValueError naming it.
    """
    if geocoder == "default":
        from .geo import default_geocoder

        geocoder = default_geocoder()
    ctx = _context(record, record_id, geocoder, date)
    rels = record.get("relations") or []
    ents, events = ctx["ents"], []
    carried: tuple[dt.date | None, str | None] = (None, None)
    for s, e in split_sentences(ctx["text"]):
        idx = [i for i, ent in enumerate(ents) if ent["start"] >= s and ent["end"] <= e]
        inside = set(idx)
        srels = [r for r in rels if r["head"] in inside and r["tail"] in inside]
        own = find_date(ctx["text"][s:e], ctx["pub"])
        carried = own if own[0] is not None else carried
        when = carried if carried[0] is not None else ((ctx["pub"], "publication") if ctx["pub"] else (None, None))
        ctx["idx"] = idx
        ctx["agents"] = {r["head"] for r in srels if r["label"] in _KIND_OF} | {
            r["tail"] for r in srels if r["label"] == "CAUSED_BY"}
        place_key = _place_key(ents, ctx["geocode"])
        for g in _groups(ents, idx, srels, place_key):
            ev = _event_row(ctx, g, (s, e), when)
            ev["event"] = len(events)
            events.append(ev)
    return events


def _place_key(ents: list[dict], geocode):
    """Two mentions of one place (``حمص``, ``بحمص``) are one place: keyed by what they geocode to."""
    def key(i):
        if i is None:
            return None
        g = geocode(ents[i]["text"])
        return g.get("geonameid") or (g.get("geo_precision") == "country" and g.get("country")) or ents[i]["text"]
    return key


def acled_row(ev: dict) -> dict:
    """One event as ACLED's columns (``country`` as a name, ``geo_precision`` 1 exact / 2 near / 3 country),
    followed by marsad's own: injured, PLOVER, date source, geonameid, confidence, offsets."""
    return {
        "event_date": ev.get("event_date"), "event_type": ev.get("event_type"), "sub_event_type": ev.get("sub_event_type"),
        "actor1": ev.get("actor1"), "actor2": ev.get("actor2"), "country": ev.get("country_name") or ev.get("country"),
        "admin1": ev.get("admin1"), "location": ev.get("name_en") or ev.get("location"),
        "latitude": ev.get("lat"), "longitude": ev.get("lon"),
        "geo_precision": {"exact": 1, "near": 2, "country": 3}.get(ev.get("geo_precision")),
        "fatalities": ev.get("fatalities"), "source": ev.get("record_id"), "notes": ev.get("sentence"),
        "injured": ev.get("injured"), "plover_event": ev.get("plover"), "date_source": ev.get("date_source"),
        "location_ar": ev.get("location"), "country_code": ev.get("country"), "geonameid": ev.get("geonameid"),
        "geo_note": ev.get("geo_note"), "assoc_actor_1": ev.get("assoc_actor_1"), "confidence": ev.get("confidence"),
        "start": ev.get("start"), "end": ev.get("end"),
    }
