"""Mention-replacement augmentation: swap LOCATION and ACTOR mentions for others of their type.

A model trained on a few thousand sentences learns the names it saw; swapping names teaches
it the contexts (``قصفت ... بلدة X``) instead. Replacement keeps attached clitics (``بحلب`` ->
``بدوما``), shifts every later offset, and leaves relations (which index entities) intact.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from pathlib import Path

import regex

from marsad.model.gazetteer import GENERIC_HEADS, read_world_cities
from marsad.model.text import PROCLITICS, tokenize

__all__ = ["MentionPools", "augment_record", "augment_records", "load_city_names", "split_clitic", "join_clitic", "strip_clitics"]

_NAME = regex.compile(r"^\p{Arabic}+(?: \p{Arabic}+){0,3}$")
# Proclitics that attach to a name, longest first.
_CLITICS = PROCLITICS


def split_clitic(mention: str, known: set[str]) -> tuple[str, str]:
    """``(prefix, bare)`` when ``mention`` is a proclitic + a name in ``known``; else ``("", mention)``.

    After ``ل`` the article's alef drops (``للجيش`` = ``ل`` + ``الجيش``); the bare form gets it back.
    """
    if mention in known:
        return "", mention
    for c in _CLITICS:
        rest = mention[len(c):]
        if not mention.startswith(c) or len(rest) < 2:
            continue
        if rest in known:
            return c, rest
        if c.endswith("ل") and rest.startswith("ل") and "ا" + rest in known:
            return c, "ا" + rest
    return "", mention


def strip_clitics(word: str) -> str:
    """One word without a leading proclitic and article: ``بالجيش``, ``والجيش``, ``للجيش`` -> ``جيش``.

    A key for comparing mentions, not a morphological analysis: a name that starts with a
    clitic letter loses it too (``لبنان`` -> ``بنان``), the same way in every form.
    """
    for c in _CLITICS:
        rest = word[len(c):]
        if word.startswith(c) and len(rest) >= 2:
            if c.endswith("ل") and rest.startswith("ل") and len(rest) > 2:
                return rest[1:]
            word = rest
            break
    return word[2:] if word.startswith("ال") and len(word) > 3 else word


def join_clitic(prefix: str, name: str) -> str:
    """Inverse of :func:`split_clitic`: ``ل`` + ``الرقة`` -> ``للرقة``."""
    if prefix.endswith("ل") and name.startswith("ال"):
        return prefix + name[1:]
    return prefix + name


class MentionPools:
    """Names to swap in, by label: corpus mentions (bare forms) plus optional city names."""

    def __init__(self, records: list[dict], cities: list[str] | None = None):
        loc, act = set(), set()
        for r in records:
            for e in r.get("entities", []):
                text = r["text"][e["start"] : e["end"]]
                if not _NAME.match(text):
                    continue
                if e["label"] == "LOCATION":
                    loc.add(text)
                elif e["label"] == "ACTOR" and " " in text:
                    act.add(text)  # multi-word forces only: single words are often adjectives or possessives
        # bare forms: a mention that is a proclitic + another known name (from the corpus or the
        # city list) is not a name of its own
        cities = {c for c in (cities or []) if _NAME.match(c)}
        bare_loc = {m for m in loc if split_clitic(m, (loc | cities) - {m})[0] == ""}
        bare_loc |= {split_clitic(m, cities)[1] for m in loc} & cities
        bare_act = {m for m in act if split_clitic(m, act - {m})[0] == "" and (m.startswith("ال") or m[0] not in "وبلفك")}
        self.known = {"LOCATION": bare_loc, "ACTOR": bare_act}
        self.pools = {"LOCATION": sorted(bare_loc | cities), "ACTOR": sorted(bare_act)}

    def draw(self, label: str, rng: random.Random, avoid: str) -> str | None:
        pool = self.pools.get(label) or []
        if len(pool) < 2:
            return None
        for _ in range(4):
            pick = rng.choice(pool)
            if pick != avoid:
                return pick
        return None


def augment_record(record: dict, pools: MentionPools, rng: random.Random, p_replace: float, suffix: str) -> dict | None:
    """A copy of ``record`` with some mentions swapped, or ``None`` if nothing was swapped."""
    text = record["text"]
    ents = sorted(enumerate(record.get("entities", [])), key=lambda x: x[1]["start"])
    new_ents: dict[int, dict] = {}
    parts, pos, shift, changed = [], 0, 0, False
    for i, e in ents:
        s, t = e["start"], e["end"]
        mention = text[s:t]
        repl = None
        if e["label"] in ("LOCATION", "ACTOR") and rng.random() < p_replace and _NAME.match(mention):
            known = pools.known[e["label"]]
            prefix, bare = split_clitic(mention, known)
            if bare in known:
                pick = pools.draw(e["label"], rng, bare)
                if pick is not None:
                    repl = join_clitic(prefix, pick)
        parts.append(text[pos:s])
        new_start = s + shift
        if repl is not None:
            parts.append(repl)
            shift += len(repl) - (t - s)
            changed = True
        else:
            parts.append(mention)
        new_ents[i] = {**e, "start": new_start, "end": t + shift}
        pos = t
    if not changed:
        return None
    parts.append(text[pos:])
    new_text = "".join(parts)
    entities = [new_ents[i] for i in range(len(record.get("entities", [])))]
    for e in entities:
        if "text" in e:
            e["text"] = new_text[e["start"] : e["end"]]
    # a replacement must not merge with its neighbours into other tokens
    bounds = {(tok.start, tok.end) for tok in tokenize(new_text)}
    starts = {b[0] for b in bounds}
    ends = {b[1] for b in bounds}
    if any(e["start"] not in starts or e["end"] not in ends for e in entities):
        return None
    out = {**record, "id": f"{record.get('id')}{suffix}", "text": new_text, "entities": entities,
           "relations": [dict(r) for r in record.get("relations", [])]}
    return out


def augment_records(records: list[dict], copies: int, p_replace: float, seed: int, cities: list[str] | None = None,
                    share: float = 1.0) -> list[dict]:
    """``copies`` augmented variants of each record that has a swappable mention (originals not
    included); with ``share`` < 1, each copy is made for that share of the records only."""
    pools = MentionPools(records, cities)
    rng = random.Random(seed)
    pick = random.Random(seed + 1)  # its own stream: share=1 gives exactly the copies it always gave
    out = []
    for c in range(copies):
        for r in records:
            if share < 1.0 and pick.random() >= share:
                continue
            aug = augment_record(r, pools, rng, p_replace, f"#aug{c + 1}")
            if aug is not None:
                out.append(aug)
    return out


def load_city_names(path: str | Path | None) -> list[str]:
    """Arabic city names from the world-cities CSV (generic heads like ``ولاية`` dropped), sorted."""
    if path is None or not Path(path).is_file():
        return []
    return sorted(n for n in read_world_cities(path) if _NAME.match(n) and n not in GENERIC_HEADS)
