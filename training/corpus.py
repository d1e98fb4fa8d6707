"""Build and check the project's corpus: markup sources -> train/dev/test JSONL, reports.

``python -m marsad.training.corpus build`` parses ``data/corpus/src/*.txt`` (bracket markup,
see :mod:`marsad.training.markup`), splits by written document within each region (about
80/10/10, so no test sentence shares a document with a training one), writes
``data/corpus/{train,dev,test}.jsonl`` and refreshes the counts in ``data/README.md``.
``python -m marsad.training.corpus report`` prints the consistency and overlap reports (exact strings,
then strings with their clitics stripped).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter, defaultdict
from pathlib import Path

from marsad.model.schema import ENTITY_LABELS, RELATION_TYPES
from marsad.model.text import tokenize

from .augment import strip_clitics
from .formats import read_jsonl, write_jsonl
from .markup import parse_markup

__all__ = ["split_documents", "corpus_stats", "consistency_report", "mention_outcomes", "mention_overlap", "stats_markdown",
           "strip_words"]

SPLITS = ("train", "dev", "test")
BEGIN, END = "<!-- counts:begin -->", "<!-- counts:end -->"


def _stable(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8")).hexdigest()


def split_documents(records: list[dict], dev: float = 0.1, test: float = 0.1, min_region: int = 40) -> dict[str, list[dict]]:
    """Whole documents to each split, region by region, in a fixed pseudo-random order.

    Regions with fewer than ``min_region`` sentences are pooled, so that a region of one or two
    documents does not land wholly in dev or test.
    """
    def region_of(meta: dict) -> str:  # a "group:" field (e.g. a later writing round) splits on its own
        return meta.get("group") or meta.get("region", "?")

    sizes = Counter(region_of(r.get("meta", {})) for r in records)
    by_region: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        meta = r.get("meta", {})
        region = region_of(meta)
        group = region if sizes[region] >= min_region else "(small regions)"
        by_region[group][meta.get("doc", r["id"])].append(r)
    out = {s: [] for s in SPLITS}
    for region in sorted(by_region):
        docs = sorted(by_region[region].items(), key=lambda kv: _stable(kv[0]))
        total = sum(len(v) for _, v in docs)
        taken = {"test": 0, "dev": 0}
        for _, recs in docs:
            if taken["test"] < test * total:
                split = "test"
            elif taken["dev"] < dev * total:
                split = "dev"
            else:
                split = "train"
            if split != "train":
                taken[split] += len(recs)
            out[split] += recs
    return out


def corpus_stats(splits: dict[str, list[dict]]) -> dict:
    """Counts per split: sentences, entities per label, relations per type, regions."""
    stats = {}
    for name, recs in splits.items():
        ents = Counter(e["label"] for r in recs for e in r["entities"])
        rels = Counter(x["label"] for r in recs for x in r["relations"])
        regions = Counter(r.get("meta", {}).get("region", "?") for r in recs)
        stats[name] = {
            "sentences": len(recs),
            "tokens": sum(len(tokenize(r["text"])) for r in recs),
            "entities": {label: ents[label] for label in ENTITY_LABELS},
            "relations": {label: rels[label] for label in RELATION_TYPES},
            "no_entity_sentences": sum(1 for r in recs if not r["entities"]),
            "regions": dict(sorted(regions.items())),
        }
    return stats


def stats_markdown(stats: dict) -> str:
    names = list(stats)
    lines = ["| | " + " | ".join(names) + " | total |", "|---|" + "---|" * (len(names) + 1)]

    def row(label, get):
        vals = [get(stats[n]) for n in names]
        lines.append(f"| {label} | " + " | ".join(str(v) for v in vals) + f" | {sum(vals)} |")

    row("sentences", lambda s: s["sentences"])
    row("tokens", lambda s: s["tokens"])
    row("sentences with no entity", lambda s: s["no_entity_sentences"])
    for label in ENTITY_LABELS:
        row(label, lambda s, label=label: s["entities"][label])
    row("**entities**", lambda s: sum(s["entities"].values()))
    for label in RELATION_TYPES:
        row(label, lambda s, label=label: s["relations"][label])
    row("**relations**", lambda s: sum(s["relations"].values()))
    regions = sorted({r for s in stats.values() for r in s["regions"]})
    lines += ["", "| region | " + " | ".join(names) + " | total |", "|---|" + "---|" * (len(names) + 1)]
    for region in regions:
        vals = [stats[n]["regions"].get(region, 0) for n in names]
        lines.append(f"| {region} | " + " | ".join(map(str, vals)) + f" | {sum(vals)} |")
    return "\n".join(lines)


def strip_words(s: str) -> str:
    """A mention with each word's leading clitics stripped (``للجيش السوري`` -> ``جيش السوري``)."""
    return " ".join(strip_clitics(w) for w in s.split())


def mention_outcomes(records: list[dict], key=lambda s: s) -> dict[str, Counter]:
    """``key(mention) -> Counter((outcome, surface string))`` over entities and untagged runs.

    Every entity string counts under its label; every run of up to five untagged whole tokens
    whose key is also an entity's key counts as ``O``.
    """
    outcomes: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        for e in r["entities"]:
            s = r["text"][e["start"]:e["end"]]
            outcomes[key(s)][e["label"], s] += 1
    names = set(outcomes)
    for r in records:
        toks = tokenize(r["text"])
        covered = [any(e["start"] <= t.start and t.end <= e["end"] for e in r["entities"]) for t in toks]
        for i in range(len(toks)):
            for j in range(i + 1, min(i + 5, len(toks)) + 1):
                if any(covered[i:j]):
                    break
                s = r["text"][toks[i].start:toks[j - 1].end]
                if key(s) in names:
                    outcomes[key(s)]["O", s] += 1
    return outcomes


def consistency_report(records: list[dict], strip_clitics: bool = False) -> list[tuple[str, Counter]]:
    """Strings that are labelled differently in different places (including left untagged).

    For every entity string, counts how often it is tagged with each label and how often it
    stands as whole tokens outside any entity (``O``). Strings with more than one outcome are
    returned, most frequent first, for review. With ``strip_clitics`` the strings compared are
    :func:`strip_words` keys, so ``للميليشيا`` (O) and ``الميليشيا`` (ACTOR) are one string.
    """
    outcomes = mention_outcomes(records, strip_words if strip_clitics else (lambda s: s))
    mixed = []
    for s, c in outcomes.items():
        labels = Counter()
        for (label, _), n in c.items():
            labels[label] += n
        if len(labels) > 1:
            mixed.append((s, labels))
    return sorted(mixed, key=lambda sc: -sum(sc[1].values()))


def mention_overlap(train: list[dict], test: list[dict]) -> float:
    """Share of test entity mentions whose exact string also occurs as an entity in train."""
    seen = {(r["text"][e["start"]:e["end"]]) for r in train for e in r["entities"]}
    mentions = [r["text"][e["start"]:e["end"]] for r in test for e in r["entities"]]
    return sum(m in seen for m in mentions) / len(mentions) if mentions else 0.0


def build(root: Path) -> dict:
    src = sorted((root / "corpus" / "src").glob("*.txt"))
    records, problems = [], []
    for f in src:
        recs, probs = parse_markup(f)
        records += recs
        problems += probs
    if problems:
        raise SystemExit("\n".join(problems) + f"\n{len(problems)} problem(s); nothing written")
    return write_splits(split_documents(records), root / "corpus", root / "README.md")


def write_splits(splits: dict[str, list[dict]], folder: Path, card: Path) -> dict:
    """Write ``folder/{split}.jsonl`` and refresh the counts between the card's markers."""
    for name, recs in splits.items():
        write_jsonl(recs, folder / f"{name}.jsonl")
    stats = corpus_stats(splits)
    if card.exists():
        text = card.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            card.write_text(f"{head}{BEGIN}\n{stats_markdown(stats)}\n{END}{tail}", encoding="utf-8")
    return stats


def load_splits(root: Path) -> dict[str, list[dict]]:
    return {name: read_jsonl(root / "corpus" / f"{name}.jsonl") for name in SPLITS}


def print_stripped_report(records: list[dict]) -> None:
    """The consistency report on clitic-stripped strings, each with its surface forms."""
    mixed = consistency_report(records, strip_clitics=True)
    forms = mention_outcomes(records, strip_words)
    print(f"\n{len(mixed)} clitic-stripped strings labelled differently in different places"
          " (leading و ف ب ل ك and ال / لل removed from each word):")
    for s, c in mixed:
        detail = ", ".join(f"{form} {label} {n}" for (label, form), n in forms[s].most_common())
        print(f"  {s}\t" + ", ".join(f"{k} {v}" for k, v in c.most_common()) + f"\t[{detail}]")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marsad.training.corpus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build", "report"])
    ap.add_argument("--data", type=Path, default=Path("data"), help="the project's data folder")
    args = ap.parse_args(argv)
    if args.command == "build":
        stats = build(args.data)
        print(stats_markdown(stats))
        return 0
    splits = load_splits(args.data)
    print(stats_markdown(corpus_stats(splits)))
    print(f"\nshare of test entity mentions also seen in train: {mention_overlap(splits['train'], splits['test']):.1%}")
    print(f"share of dev entity mentions also seen in train: {mention_overlap(splits['train'], splits['dev']):.1%}")
    everything = [r for recs in splits.values() for r in recs]
    mixed = consistency_report(everything)
    print(f"\n{len(mixed)} strings labelled differently in different places:")
    for s, c in mixed:
        print(f"  {s}\t" + ", ".join(f"{k} {v}" for k, v in c.most_common()))
    print_stripped_report(everything)
    return 0


if __name__ == "__main__":
    sys.exit(main())
