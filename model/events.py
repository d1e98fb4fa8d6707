"""ACLED-style event records: a sentence's entities and relations grouped into one row.

Analysts build tables of events (who did what, where, with how many killed or injured); this
view gives one record per sentence that reports a relation or a casualty count.
"""

from __future__ import annotations

from .text import split_sentences

__all__ = ["events_from_record", "EVENT_TYPES"]

# relation label -> the event type it signals
EVENT_TYPES = {
    "ATTACKS": "attack",
    "CAUSED_BY": "attack",
    "CASUALTY_IN": "casualties",
    "CONTROLS": "territory_control",
    "WITHDRAWS_FROM": "withdrawal",
}


def events_from_record(record: dict, record_id=None) -> list[dict]:
    """Events of one extracted record, in text order."""
    text = record.get("text") or ""
    ents = record.get("entities", [])
    rels = record.get("relations", [])
    events = []
    for n, (s, e) in enumerate(split_sentences(text)):
        idx = [i for i, ent in enumerate(ents) if ent["start"] >= s and ent["end"] <= e]
        inside = set(idx)
        srels = [r for r in rels if r["head"] in inside and r["tail"] in inside]
        cas = [ents[i] for i in idx if ents[i]["label"] == "CASUALTY"]
        if not srels and not cas:
            continue
        linked = {r["head"] for r in srels} | {r["tail"] for r in srels}
        # actors and locations that take part in a relation; all of them if none does
        actors = [ents[i] for i in idx if ents[i]["label"] == "ACTOR" and (i in linked or not srels)]
        places = [ents[i] for i in idx if ents[i]["label"] == "LOCATION" and (i in linked or not srels)]
        killed = [c for c in cas if c.get("status") == "killed"]
        injured = [c for c in cas if c.get("status") == "injured"]
        events.append({
            "record_id": record_id,
            "event": len(events),
            "event_types": sorted({EVENT_TYPES[r["label"]] for r in srels} | ({"casualties"} if cas else set())),
            "sentence": text[s:e],
            "start": s,
            "end": e,
            "actors": [a["text"] for a in actors],
            "locations": [p["text"] for p in places],
            "killed": _total(killed),
            "injured": _total(injured),
            "approximate": any(c.get("approximate") for c in cas),
            "casualties": [{k: c.get(k) for k in ("text", "count", "status", "approximate", "start", "end")} for c in cas],
            "relations": [{"head": ents[r["head"]]["text"], "label": r["label"], "tail": ents[r["tail"]]["text"],
                           **({"score": r["score"]} if "score" in r else {})} for r in srels],
        })
    return events


def _total(cas: list[dict]) -> int | None:
    """The largest stated count: subsets (``بينهم خمسة أطفال``) are part of the whole, so
    summing would double-count; ``None`` when no count is known."""
    counts = [c["count"] for c in cas if isinstance(c.get("count"), int)]
    return max(counts) if counts else None
