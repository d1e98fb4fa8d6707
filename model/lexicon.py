"""What the training text says of its words, for the decoder's last two mends.

A small tagger trained on a few thousand sentences tags common words as places or actors when a
new context looks like one (``السماء``, ``بارد``, ``الأنشطة``, ``لك`` read as places in real posts),
and leaves out names it was shown (``النقب``, ``عكا``, ``خانيونس`` as a place) when their context is
new. The training text itself knows better. :class:`Lexicon` keeps, for every word of the
training text, whether it occurs outside entities, whether it occurs inside an entity of two words
or more, and the labels of the entities it was inside. The decoder (``repair_tags``):

* drops a one-word entity whose word the training text has outside entities and never inside an
  entity of that label (:meth:`Lexicon.rules_out`);
* tags a word left outside as a one-word entity of label X when the training text has that word
  only ever as a whole one-word X, never outside and never in a longer entity
  (:meth:`Lexicon.always`).

A word the training text never saw is left to the model. ``marsad train`` builds the lexicon from
the training records (``model.lexicon: true``) and saves it in the model folder (``lexicon.txt``:
one normalised word a line, then a tab, ``o`` if it occurs outside entities and ``m`` if inside a
longer one, a tab, and the labels of the entities it was inside).
"""

from __future__ import annotations

from pathlib import Path

from .tags import spans_to_tags
from .text import normalize_word, tokenize

__all__ = ["Lexicon", "LEXICON_NAME"]

LEXICON_NAME = "lexicon.txt"


class Lexicon:
    """Normalised word -> ``(outside, in_longer, labels)``: whether the training text has it outside
    entities, inside an entity of two words or more, and the labels of the entities it was inside."""

    def __init__(self, entries: dict[str, tuple[bool, bool, frozenset[str]]]):
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def rules_out(self, word: str, label: str) -> bool:
        """Whether the training text had ``word`` (normalised) outside entities and never inside a ``label``."""
        seen = self.entries.get(word)
        return seen is not None and seen[0] and label not in seen[2]

    def always(self, word: str) -> str | None:
        """The label X where the training text has ``word`` (normalised) only as a whole one-word X."""
        seen = self.entries.get(word)
        if seen is None or seen[0] or seen[1] or len(seen[2]) != 1:
            return None
        return next(iter(seen[2]))

    @classmethod
    def from_records(cls, records) -> "Lexicon":
        """The lexicon of records in the project's JSONL shape (``text`` and ``entities``)."""
        outside, longer, labels = set(), set(), {}
        for r in records:
            tokens = tokenize(r["text"])
            tags = spans_to_tags(tokens, [(e["start"], e["end"], e["label"]) for e in r.get("entities", [])])
            for i, (token, tag) in enumerate(zip(tokens, tags)):
                word = normalize_word(token.text)
                if not word:
                    continue
                labels.setdefault(word, set())
                if tag == "O":
                    outside.add(word)
                    continue
                labels[word].add(tag[2:])
                if tag.startswith("I-") or (i + 1 < len(tags) and tags[i + 1].startswith("I-")):
                    longer.add(word)
        return cls({w: (w in outside, w in longer, frozenset(ls)) for w, ls in labels.items()})

    def save(self, directory: str | Path) -> None:
        lines = (f"{w}\t{'o' * out}{'m' * longer}\t{' '.join(sorted(ls))}" for w, (out, longer, ls) in sorted(self.entries.items()))
        (Path(directory) / LEXICON_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Lexicon":
        entries = {}
        for line in (Path(directory) / LEXICON_NAME).read_text(encoding="utf-8").splitlines():
            word, flags, labels = (line.split("\t") + ["", ""])[:3]
            if word:
                entries[word] = ("o" in flags, "m" in flags, frozenset(labels.split()))
        return cls(entries)
