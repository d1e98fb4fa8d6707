"""A place-name gazetteer as an input feature.

A small model trained on a few thousand sentences cannot know every town; a list of place
names can. Words that (after an attached clitic) match a gazetteer name get token type 1
instead of 0, so the encoder sees "this looks like a known place" as part of its input, and
context still decides (``صور`` is Tyre or "pictures"). The segment embedding BERT already has
carries the feature, so the saved folder stays a standard checkpoint: a plain
``pipeline("token-classification")`` simply runs it without the feature.

The names come from a CSV of cities and countries (``../shared/data/world_cities_ar``, CC BY
4.0) when a model is trained, and are saved in the model folder (``gazetteer.txt``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from .text import normalize_word, proclitic_variants

__all__ = ["Gazetteer", "GAZETTEER_NAME", "GENERIC_HEADS", "read_world_cities"]

GAZETTEER_NAME = "gazetteer.txt"
# Generic heads of place names ("مدينة حمص" is listed as a city name): dropped to keep the name.
GENERIC_HEADS = frozenset({"مدينة", "بلدة", "قرية", "حي", "محافظة", "ولاية", "منطقة", "مخيم", "إقليم", "اقليم", "ريف", "مقاطعة"})
# Alef forms and alef maqsura folded, but not ئ / ؤ / ة as the geocoder's fold_word does: that
# would make رئيس ("head") the city رييس, and a saved model's feature must not change under it.
_MATCH = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي"})


def _key(word: str) -> str:
    return normalize_word(word).translate(_MATCH)


class Gazetteer:
    """Names as tuples of normalised words; :meth:`flags` marks the words of a sentence."""

    def __init__(self, names):
        self.names: set[tuple[str, ...]] = set()
        for name in names:
            words = tuple(_key(w) for w in name.split() if w)
            if words and any(len(w) > 1 for w in words):
                self.names.add(words)
        # first word -> the lengths of the names it starts: most words start none
        self.lengths: dict[str, set[int]] = {}
        for n in self.names:
            self.lengths.setdefault(n[0], set()).add(len(n))
        # word -> (its forms that start a name, their names' lengths longest first): a cache
        self._starts: dict[str, tuple[tuple[str, ...], list[int]]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def is_name(self, word: str) -> bool:
        """Whether ``word`` as it stands (no clitic peeled) is a one-word name of the list."""
        return (_key(word),) in self.names

    def clear_cache(self) -> None:
        """Forget the words seen so far."""
        self._starts.clear()

    def flags(self, words: list[str]) -> list[int]:
        """1 for every word inside a gazetteer match (longest match first), else 0."""
        out = [0] * len(words)
        for i, j in self.matches(words):
            out[i:j] = [1] * (j - i)
        return out

    def matches(self, words: list[str]) -> list[tuple[int, int]]:
        """``(first word, end)`` of each name found, left to right, the longest at each word."""
        keys = [_key(w) for w in words]
        out = []
        i = 0
        while i < len(words):
            starts, lengths = self._starts.get(keys[i]) or self._name_starts(keys[i])
            hit = next((n for n in lengths if n <= len(words) - i
                        and any((v, *keys[i + 1 : i + n]) in self.names for v in starts)), 0)
            if hit:
                out.append((i, i + hit))
                i += hit
            else:
                i += 1
        return out

    def _name_starts(self, key: str) -> tuple[tuple[str, ...], list[int]]:
        """The forms of ``key`` (itself, without a proclitic) that start a name, and those names'
        lengths, longest first; remembered (a long-running service keeps the cache bounded)."""
        if len(self._starts) > 1 << 18:
            self._starts.clear()
        starts = tuple(v for v in proclitic_variants(key) if v in self.lengths)
        self._starts[key] = (starts, sorted({n for v in starts for n in self.lengths[v]}, reverse=True))
        return self._starts[key]

    # --- files -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        path = Path(directory) / GAZETTEER_NAME
        path.write_text("\n".join(sorted(" ".join(n) for n in self.names)) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Gazetteer":
        path = Path(directory) / GAZETTEER_NAME
        return cls(path.read_text(encoding="utf-8").splitlines())

    @classmethod
    def from_csv(cls, path: str | Path) -> "Gazetteer":
        """City and country names (Arabic columns) of a world-cities CSV; generic heads dropped."""
        names = set(read_world_cities(path, "CityNameAr"))
        for country in read_world_cities(path, "CountryNameAr"):
            names.add(country)
            words = country.split()
            if len(words) >= 3:  # الولايات المتحدة الأمريكية -> الولايات المتحدة
                names.add(" ".join(words[:2]))
        return cls(names)


def read_world_cities(path: str | Path, column: str = "CityNameAr") -> list[str]:
    """The distinct names in one Arabic column of a world-cities CSV (``../shared/data/world_cities_ar``),
    in file order, each without a generic head (``مدينة حمص`` -> ``حمص``). The one reader of that
    file, for the gazetteer and for augmentation."""
    names: dict[str, None] = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            words = (row.get(column) or "").split()
            if len(words) > 1 and words[0] in GENERIC_HEADS:
                words = words[1:]
            if words:
                names[" ".join(words)] = None
    return list(names)
