"""Real-text noise: make a gold record look like a post or a wire story, offsets kept exact.

The written corpus is clean MSA; real posts carry hashtags, URLs, emoji, Latin words,
hamza-less and dialectal spellings, joined names, digits of three kinds, tatweel, diacritics
and obfuscated names (``حمـ.ـاس``). :func:`noisy_record` applies a few of these edits to a copy
of a record and moves every entity offset with them, so the labels still follow the spec:

- ``hashtag``: ``#`` before a mention (a token of its own, outside the span), a multi-word
  mention joined with ``_`` (``#قطاع_غزة``: one token, still the span), or a hashtag word (O);
- ``web``: a URL, an @mention, an emoji or a Latin word between tokens (always O);
- ``spelling``: hamza-less alef, final ى/ي and ة/ه swaps (one character for one);
- ``joined``: a two-word place whose first word is a name head written joined (``خانيونس``);
- ``numbers``: counts as words, ASCII digits or Arabic-Indic digits;
- ``marks``: tatweel inside words and diacritics on letters;
- ``obfuscate``: ``ـ.ـ`` inside an actor's name (``داعـ.ـش``; the span covers all pieces).

Every result is checked: spans on spec token boundaries and ``text[start:end]`` equal to each
span's ``text``; an edit that would break that is dropped. Deterministic for a given ``rng``.
"""

from __future__ import annotations

import random

import regex

from marsad.model.text import tokenize

__all__ = ["NOISE_OPS", "noisy_record", "noisy_records"]

NOISE_OPS = ("hashtag", "web", "spelling", "joined", "numbers", "marks", "obfuscate")

_WEB = ("https://t.co/x7Qm2Lp9Ka", "http://bit.ly/3kQz8Wd", "@AJArabic", "@Reuters", "@alarabiya_brk",
        "🔴", "⚡", "🇵🇸", "💔", "📌", "BREAKING", "Gaza", "video", "UPDATE", "#عاجل", "#فيديو", "عاجل|")
_HASHTAG_WORDS = ("عاجل", "خبر_عاجل", "الحرب", "أخبار", "فلسطين_تقاوم", "طوفان_الأقصى")
_HAMZA = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا"})
_JOIN_HEADS = ("خان", "بيت", "دير", "عين", "كفر", "تل", "أبو", "ابو", "أم", "ام", "جبل", "بني", "بنت", "رأس", "راس")
_UNITS = {"واحد": 1, "اثنان": 2, "اثنين": 2, "ثلاثة": 3, "ثلاث": 3, "أربعة": 4, "أربع": 4, "خمسة": 5, "خمس": 5,
          "ستة": 6, "ست": 6, "سبعة": 7, "سبع": 7, "ثمانية": 8, "ثماني": 8, "تسعة": 9, "تسع": 9, "عشرة": 10,
          "عشر": 10, "عشرين": 20, "عشرون": 20, "ثلاثين": 30, "ثلاثون": 30, "أربعين": 40, "أربعون": 40,
          "خمسين": 50, "خمسون": 50, "مئة": 100, "مائة": 100}
_WORDS = {v: k for k, v in reversed(list(_UNITS.items()))}
_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_ASCII = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")
_MARKS = ("\u064e", "\u064f", "\u0650", "\u0651", "\u0652", "\u064b")
# letters that join to the next one (tatweel after them reads naturally)
_JOINING = set("بتثجحخسشصضطظعغفقكلمنهي")
_ARABIC_WORD = regex.compile(r"^\p{Arabic}+$")


class _Edits:
    """Edits on a text as ``(position, deleted length, inserted text)``, applied at once."""

    def __init__(self, text: str):
        self.text = text
        self.items: list[tuple[int, int, str]] = []

    def add(self, pos: int, delete: int, insert: str) -> None:
        if any(not (pos + delete <= p or p + d <= pos) or (p == pos and d == delete == 0) for p, d, _ in self.items):
            return  # overlapping edits: keep the first
        self.items.append((pos, delete, insert))

    def apply(self, entities: list[dict]) -> tuple[str, list[dict]]:
        items = sorted(self.items)
        out, prev = [], 0
        for p, d, ins in items:
            out += [self.text[prev:p], ins]
            prev = p + d
        out.append(self.text[prev:])
        text = "".join(out)

        def moved(x: int, is_end: bool) -> int:
            shift = 0
            for p, d, ins in items:
                # an insertion at a span's start lands before it; at its end, after it
                if p + d < x or (p + d == x and (d > 0 or not is_end)):
                    shift += len(ins) - d
            return x + shift

        ents = []
        for e in entities:
            s, t = moved(e["start"], False), moved(e["end"], True)
            ents.append({**e, "start": s, "end": t, **({"text": text[s:t]} if "text" in e else {})})
        return text, ents


def _inside(entities: list[dict], pos: int) -> bool:
    return any(e["start"] < pos < e["end"] for e in entities)


def _op_hashtag(text, ents, edits, rng):
    cands = [e for e in ents if e["label"] in ("LOCATION", "ACTOR")]
    if cands and rng.random() < 0.8:
        e = rng.choice(cands)
        mention = text[e["start"]:e["end"]]
        if all(_ARABIC_WORD.match(w) for w in mention.split(" ")):
            edits.add(e["start"], 0, "#")
            for i, ch in enumerate(mention):
                if ch == " ":
                    edits.add(e["start"] + i, 1, "_")
        return
    edits.add(len(text), 0, f" #{rng.choice(_HASHTAG_WORDS)}")


def _op_web(text, ents, edits, rng):
    gaps = [i for i, ch in enumerate(text) if ch == " " and not _inside(ents, i)]
    item = rng.choice(_WEB)
    where = rng.random()
    if where < 0.4 or not gaps:
        edits.add(len(text), 0, f" {item}")
    elif where < 0.6:
        edits.add(0, 0, f"{item} ")
    else:
        edits.add(rng.choice(gaps), 0, f" {item}")


def _op_spelling(text, ents, edits, rng):
    for t in tokenize(text):
        w = t.text
        if any(ch in "أإآ" for ch in w) and rng.random() < 0.7:
            new = w.translate(_HAMZA)
            edits.add(t.start, len(w), new)
        elif w.endswith("ى") and rng.random() < 0.5:
            edits.add(t.end - 1, 1, "ي")
        elif len(w) > 3 and w.endswith("ي") and rng.random() < 0.2:
            edits.add(t.end - 1, 1, "ى")
        elif w.endswith("ة") and rng.random() < 0.3:
            edits.add(t.end - 1, 1, "ه")


def _op_joined(text, ents, edits, rng):
    for e in ents:
        words = text[e["start"]:e["end"]].split(" ")
        if e["label"] == "LOCATION" and len(words) == 2 and any(words[0].endswith(h) for h in _JOIN_HEADS):
            edits.add(e["start"] + len(words[0]), 1, "")


def _op_numbers(text, ents, edits, rng):
    for e in ents:
        if e["label"] != "CASUALTY":
            continue
        for t in tokenize(text[e["start"]:e["end"]]):
            pos = e["start"] + t.start
            w = t.text
            bare = w[1:] if w[:1] in ("و", "ب") and w[1:] in _UNITS else w
            if bare in _UNITS:
                n = str(_UNITS[bare])
                edits.add(pos + len(w) - len(bare), len(bare), n if rng.random() < 0.6 else n.translate(_INDIC))
            elif w.isdigit():
                ascii_ = w.translate(_ASCII)
                if ascii_ != w:
                    edits.add(pos, len(w), ascii_)
                elif rng.random() < 0.5:
                    edits.add(pos, len(w), w.translate(_INDIC))
                elif int(w) in _WORDS:
                    edits.add(pos, len(w), _WORDS[int(w)])


def _op_marks(text, ents, edits, rng):
    toks = [t for t in tokenize(text) if _ARABIC_WORD.match(t.text) and len(t.text) > 3]
    for t in rng.sample(toks, min(len(toks), 3)):
        i = rng.randrange(1, len(t.text) - 1)
        if rng.random() < 0.5 and t.text[i - 1] in _JOINING:
            edits.add(t.start + i, 0, "ـ" * rng.randint(1, 3))
        else:
            edits.add(t.start + i, 0, rng.choice(_MARKS))


def _op_obfuscate(text, ents, edits, rng):
    for e in ents:
        mention = text[e["start"]:e["end"]]
        if e["label"] != "ACTOR" or not _ARABIC_WORD.match(mention) or len(mention) < 4:
            continue
        i = rng.randrange(2, len(mention) - 1)
        if mention[i - 1] in _JOINING:
            edits.add(e["start"] + i, 0, "ـ.ـ")
            return


_OPS = {"hashtag": _op_hashtag, "web": _op_web, "spelling": _op_spelling, "joined": _op_joined,
        "numbers": _op_numbers, "marks": _op_marks, "obfuscate": _op_obfuscate}


def _valid(text: str, entities: list[dict]) -> bool:
    toks = tokenize(text)
    starts, ends = {t.start for t in toks}, {t.end for t in toks}
    return all(e["start"] in starts and e["end"] in ends and e["start"] < e["end"] for e in entities)


def noisy_record(record: dict, rng: random.Random, ops=NOISE_OPS, n_ops: tuple[int, int] = (1, 3),
                 suffix: str = "#noise") -> dict | None:
    """A copy of ``record`` with one to three real-text edits, or ``None`` if none applied."""
    text, ents = record["text"], record.get("entities", [])
    chosen = rng.sample(list(ops), min(len(ops), rng.randint(*n_ops)))
    new_text, new_ents = text, [dict(e) for e in ents]
    for op in chosen:  # one op at a time, each checked, so one bad edit never spoils the others
        edits = _Edits(new_text)
        _OPS[op](new_text, new_ents, edits, rng)
        if not edits.items:
            continue
        cand_text, cand_ents = edits.apply(new_ents)
        if _valid(cand_text, cand_ents):
            new_text, new_ents = cand_text, cand_ents
    if new_text == text:
        return None
    return {**record, "id": f"{record.get('id')}{suffix}", "text": new_text, "entities": new_ents,
            "relations": [dict(r) for r in record.get("relations", [])]}


def noisy_records(records: list[dict], share: float, seed: int, ops=NOISE_OPS) -> list[dict]:
    """Noisy versions of ``share`` of ``records`` (the others returned unchanged), in order."""
    rng = random.Random(seed)
    out = []
    for r in records:
        noisy = noisy_record(r, rng, ops, suffix="") if rng.random() < share else None
        out.append(noisy if noisy is not None else r)
    return out
