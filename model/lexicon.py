"""What the training text says of its words and names, for the decoder's last two mends.

A small tagger trained on a few thousand sentences tags common words as places or actors when a
new context looks like one (``السماء``, ``بارد``, ``الأنشطة``, ``لك`` read as places in real posts),
and leaves out or cuts names it was shown (``النقب``, ``عكا`` as places, ``[باهر]`` of ``صور باهر``)
when their context is new. The training text itself knows better. :class:`Lexicon` keeps:

* for every word of the training text that occurs outside entities, the labels of the entities
  it was ever inside (:meth:`Lexicon.rules_out`);
* the names (one word or more) that the training text only ever has as a whole entity of one
  label: every occurrence of those words in a row is exactly such an entity (:meth:`Lexicon.matches`).

The decoder (``repair_tags``) drops a one-word entity whose word the training text has outside
entities and never inside an entity of that label, and then tags each such name as a whole
entity of its label where the tagger left its words outside or tagged part of it with that label.
A word the training text never saw is left to the model.

``marsad train`` builds the lexicon from the training records (``model.lexicon: true``) and saves
it in the model folder as ``lexicon.json``: ``{"words": {word: [labels]}, "names": [[label,
[word, ...]], ...]}``, words normalised as the decoder reads them. It is read-only once built: a
copy of a model (``copy.deepcopy``, as the bf16 path makes) shares it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .encoding import word_spans
from .text import normalize_word, tokenize

__all__ = ["Lexicon", "LEXICON_NAME"]

LEXICON_NAME = "lexicon.json"


class Lexicon:
    """``words``: each normalised word seen outside entities -> the labels it was inside;
    ``names``: word tuple -> label."""

    def __init__(self, words: dict[str, frozenset[str]], names: dict[tuple[str, ...], str]):
        self.words, self.names = words, names
        self.lengths: dict[str, list[int]] = {}  # first word -> the lengths of its names, longest first
        for name in names:
            self.lengths.setdefault(name[0], []).append(len(name))
        for n in self.lengths.values():
            n.sort(reverse=True)

    def __len__(self) -> int:
        return len(self.words)

    def __deepcopy__(self, memo) -> "Lexicon":
        return self  # read-only: a copied model shares it (copying its ~35k entries took 0.2 s)

    def rules_out(self, word: str, label: str) -> bool:
        """Whether the training text had ``word`` (normalised) outside entities and never inside a ``label``."""
        seen = self.words.get(word)
        return seen is not None and label not in seen

    def matches(self, norm: list[str]) -> list[tuple[int, int, str]]:
        """``(first word, end, label)`` of each name in normalised words, left to right, the longest at each word."""
        out, i = [], 0
        while i < len(norm):
            n = next((n for n in self.lengths.get(norm[i], ()) if i + n <= len(norm) and tuple(norm[i : i + n]) in self.names), 0)
            if n:
                out.append((i, i + n, self.names[tuple(norm[i : i + n])]))
                i += n
            else:
                i += 1
        return out

    @classmethod
    def from_records(cls, records) -> "Lexicon":
        """The lexicon of records in the project's JSONL shape (``text`` and ``entities``)."""
        texts = []  # (normalised words, {first word of an entity: (its end, its label)})
        outside, inside = set(), {}
        for r in records:
            tokens = tokenize(r["text"])
            ents = r.get("entities", [])
            norm = [normalize_word(t.text) for t in tokens]
            spans = {i: (j, e["label"]) for (i, j), e in zip(word_spans(tokens, [(e["start"], e["end"]) for e in ents]), ents)}
            label_of = [None] * len(norm)
            for i, (j, label) in spans.items():
                label_of[i:j] = [label] * (j - i)
            texts.append((norm, spans))
            for word, label in zip(norm, label_of):
                if label is None:
                    outside.add(word)
                else:
                    inside.setdefault(word, set()).add(label)
        words = {w: frozenset(inside.get(w, ())) for w in outside if w}
        return cls(words, _whole_names(texts))

    def save(self, directory: str | Path) -> None:
        data = {"words": {w: sorted(ls) for w, ls in sorted(self.words.items())},
                "names": sorted([label, list(name)] for name, label in self.names.items())}
        (Path(directory) / LEXICON_NAME).write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "Lexicon":
        data = json.loads((Path(directory) / LEXICON_NAME).read_text(encoding="utf-8"))
        return cls({w: frozenset(ls) for w, ls in data["words"].items()},
                   {tuple(name): label for label, name in data["names"]})


def _whole_names(texts: list[tuple[list[str], dict[int, tuple[int, str]]]]) -> dict[tuple[str, ...], str]:
    """The entity strings of ``(normalised words, entity spans)`` whose every occurrence in them
    is a whole entity of one label."""
    seen: dict[tuple[str, ...], set[str]] = {}
    for norm, spans in texts:
        for i, (j, _) in spans.items():
            if all(norm[i:j]):
                seen.setdefault(tuple(norm[i:j]), set())
    lengths: dict[str, set[int]] = {}
    for name in seen:
        lengths.setdefault(name[0], set()).add(len(name))
    for norm, spans in texts:
        for i, word in enumerate(norm):
            for n in lengths.get(word, ()):
                name = tuple(norm[i : i + n])
                if name in seen:  # a whole entity (its label), or the words with another extent or none ("O")
                    end, label = spans.get(i, (None, None))
                    seen[name].add(label if end == i + n else "O")
    return {name: next(iter(labels)) for name, labels in seen.items() if len(labels) == 1 and "O" not in labels}
