"""Real Arabic text: the sources in ``../shared/data``, the reserved evaluation text, and ``data/real/``.

``data/real/`` holds real news sentences and posts annotated by the project (``ANNOTATION.md``),
written in the bracket markup of :mod:`marsad.training.markup` in ``data/real/src/*.txt``, one
record a line, each document opened by a header that names its source::

    # doc: fig-ar-10 | source: fignews | lang: Arabic
    # doc: aner-b042 | source: anercorp-train

Commands (run from the repository root, ``--shared`` points at the shared data folder):

- ``python -m marsad.training.realtext pool -o DIR`` writes the unannotated candidate text, one
  file per source, in that markup layout (annotators add brackets and relations in place);
- ``python -m marsad.training.realtext build`` checks every record against its source (the text
  must be the source's text, character for character, and never reserved text), splits by source
  document into ``data/real/{train,dev,test}.jsonl`` (plus ``train-parties.jsonl``: the train
  records naming an ACTOR or a CASUALTY) and refreshes the counts in ``data/real/README.md``.

**Reserved for independent evaluation** (never annotated, trained on or tuned against): the
ANERcorp test split, the Wojood sample test split, and the FIGNEWS rows whose source language is
Arabic and whose ID is in :data:`FIGNEWS_RESERVED`. :func:`reserved_texts` returns them;
``tests/test_real_data.py`` fails if any of them appears anywhere in ``data/``.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys

import regex
from collections import Counter
from pathlib import Path

from marsad.model.text import normalize_word, tokenize

from .corpus import _stable, stats_markdown, write_splits
from .formats import read_jsonl, write_jsonl
from .markup import parse_markup

__all__ = [
    "FIGNEWS_RESERVED", "SOURCES", "read_fignews", "read_conll_sentences", "reserved_texts",
    "source_texts", "split_real", "check_files", "build_real", "cross_split_copies", "is_conflict_sentence", "unlabelled_texts", "drop_reserved",
]

FIGNEWS_RESERVED = frozenset({
    "556", "571", "1042", "1426", "1575", "2469", "3546", "5353", "5718", "6429", "6570",
    "6876", "8693", "9365", "9479", "9874", "10055", "12514", "13281", "39073", "40741",
})
FIGNEWS_FILE = "fignews2024/FIGNEWS-2024-TEXT-IAA.tsv"
ANER_TRAIN, ANER_TEST = "anercorp/train.txt", "anercorp/test.txt"
WOJOOD_TRAIN, WOJOOD_TEST = "wojood_sample/train.txt", "wojood_sample/test.txt"
SPLITS = ("train", "dev", "test")
PARTY_LABELS = ("ACTOR", "CASUALTY")
_WORDLIKE = regex.compile(r"[\p{L}\p{Nd}]")
NEAR_COPY = 5  # words in a row shared with reserved text that make a text a near-copy of it
# a record sharing this share of its six-word runs with a record of another split repeats it (an archive
# title or stock post with another number): it would carry training text into dev or test
CROSS_SPLIT_SHARE = 0.75

#: source name (as written in a ``# doc:`` header) -> what it is, its licence and attribution
SOURCES = {
    "fignews": "FIGNEWS 2024 shared-task posts (CAMeL Lab), MIT; the posts are third-party",
    "anercorp-train": "ANERcorp train split (Benajiba et al. 2007; CAMeL Lab re-release), CC BY-SA 4.0",
    "wojood-train": "Wojood public sample, train split (Jarrar et al., LREC 2022), MIT",
    "aqmar": "AQMAR Arabic Wikipedia NER corpus (Mohit et al., EACL 2012), CC BY-SA 3.0",
}

_CONFLICT = re.compile(
    r"(قتل|قتيل|مقتل|جرح|جريح|اصاب|أصاب|اصيب|أصيب|مصرع|هجوم|هجمات|غار[ةه]|غارات|قصف|انفجار|تفجير|"
    r"انتحاري|مسلح|القوات|قوات|الجيش|جيش|الاحتلال|عسكري|معارك|اشتباك|المتمردين|متمرد|ميليشيا|"
    r"مليشيا|صاروخ|قذائف|قذيفة|كمين|اغتيال|الحرب|حرب|سيطر|انسحاب|انسحب|اجتياح|توغل|شهيد|شهداء)"
)


def is_conflict_sentence(text: str) -> bool:
    """A coarse keyword screen for sentences with conflict content (used to pick candidates)."""
    return bool(_CONFLICT.search(text))


def read_fignews(shared: Path) -> list[dict]:
    """Every FIGNEWS row as ``{"key", "id", "lang", "text"}``: Arabic originals as written, the
    other languages' posts as their Arabic machine translation. ``key`` is ``fig-<lang>-<ID>``."""
    csv.field_size_limit(10**9)
    rows = []
    with open(shared / FIGNEWS_FILE, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lang = row["Source Language"].strip()
            text = row["Text"] if lang == "Arabic" else row["Arabic MT"]
            text = (text or "").strip()
            if not text:
                continue
            rows.append({"key": f"fig-{lang[:2].lower()}-{row['ID'].strip()}", "id": row["ID"].strip(),
                         "lang": lang, "text": text})
    return rows


def read_conll_sentences(path: Path) -> list[str]:
    """Sentences of a ``token TAG...`` file (blank line between sentences), tokens joined by a
    space; Wojood's ``$#$`` joiner tokens are dropped."""
    sents, toks = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            if toks:
                sents.append(" ".join(toks))
            toks = []
            continue
        if parts[0] != "$#$":
            toks.append(parts[0])
    if toks:
        sents.append(" ".join(toks))
    return sents


def reserved_texts(shared: Path) -> dict[str, list[str]]:
    """The reserved evaluation texts, by source."""
    shared = Path(shared)
    fig = ([r["text"] for r in read_fignews(shared) if r["lang"] == "Arabic" and r["id"] in FIGNEWS_RESERVED]
           if (shared / FIGNEWS_FILE).is_file() else [])

    def conll(rel):
        return read_conll_sentences(shared / rel) if (shared / rel).is_file() else []

    return {"anercorp-test": conll(ANER_TEST), "wojood-test": conll(WOJOOD_TEST), "fignews-reserved": fig}


def _reserved_set(shared: Path) -> set[str]:
    return {t for texts in reserved_texts(shared).values() for t in texts}


def source_texts(shared: Path) -> dict[str, set[str]]:
    """The texts each annotatable source offers (reserved text excluded)."""
    reserved = _reserved_set(shared)
    fig = {r["text"] for r in read_fignews(shared)
           if not (r["lang"] == "Arabic" and r["id"] in FIGNEWS_RESERVED)}
    aqmar = set()
    for f in sorted((shared / "aqmar").glob("*.txt")):
        aqmar.update(read_conll_sentences(f))
    out = {
        "fignews": fig,
        "anercorp-train": set(read_conll_sentences(shared / ANER_TRAIN)),
        "wojood-train": set(read_conll_sentences(shared / WOJOOD_TRAIN)),
        "aqmar": aqmar,
    }
    return {k: v - reserved for k, v in out.items()}


def unlabelled_texts(shared: Path) -> list[str]:
    """Every real Arabic text in the shared corpora folder except the reserved evaluation text:
    FIGNEWS posts (Arabic originals and Arabic translations), ANERcorp train, Wojood train and
    val, AQMAR. Empty when ``shared`` holds none of them. For the scratch vocabulary."""
    shared = Path(shared)
    texts: list[str] = []
    if (shared / FIGNEWS_FILE).is_file():
        texts += [r["text"] for r in read_fignews(shared)
                  if not (r["lang"] == "Arabic" and r["id"] in FIGNEWS_RESERVED)]
    for rel in (ANER_TRAIN, WOJOOD_TRAIN, "wojood_sample/val.txt"):
        if (shared / rel).is_file():
            texts += read_conll_sentences(shared / rel)
    for f in sorted((shared / "aqmar").glob("*.txt")) if (shared / "aqmar").is_dir() else []:
        texts += read_conll_sentences(f)
    return drop_reserved(texts, _reserved_set(shared))


def _words(text: str) -> list[str]:
    """The words of ``text`` for near-copy matching: spec tokens with a letter or digit,
    normalised (diacritics, tatweel, digits), punctuation left out."""
    return [normalize_word(t.text) for t in tokenize(text) if _WORDLIKE.search(t.text)]


def drop_reserved(texts: list[str], reserved, n: int | None = None) -> list[str]:
    """``texts`` without any that shares a run of ``n`` words (default :data:`NEAR_COPY`) with a
    reserved text, so that chunks, re-spaced copies and near-copies of reserved sentences (the same
    archive title with another date, the same wire sentence about another place) go too; texts
    shorter than ``n`` words go when a reserved text contains all of them."""
    n = n or NEAR_COPY
    reserved = set(reserved)
    res_words = [_words(t) for t in reserved]
    grams = {tuple(w[i:i + n]) for w in res_words for i in range(max(0, len(w) - n + 1))}
    short = [" ".join(w) for w in res_words]

    def leaks(text: str) -> bool:
        if text in reserved:  # also a reserved "sentence" of punctuation alone
            return True
        w = _words(text)
        if len(w) < n:
            return bool(w) and any(" ".join(w) in r for r in short)
        return any(tuple(w[i:i + n]) in grams for i in range(len(w) - n + 1))

    return [t for t in texts if not leaks(t)]


def cross_split_copies(splits: dict[str, list[dict]], n: int = 6, share: float = CROSS_SPLIT_SHARE) -> list[str]:
    """One problem line for each pair of records in different splits where one shares ``share``
    or more of its ``n``-word runs with the other (the shorter one's runs counted)."""
    runs = [(name, r["id"], {tuple(w[i:i + n]) for i in range(len(w) - n + 1)})
            for name, recs in splits.items() for r in recs for w in [_words(r["text"])]]
    where: dict[tuple, set[int]] = {}
    for k, (_, _, grams) in enumerate(runs):
        for g in grams:
            where.setdefault(g, set()).add(k)
    problems = []
    for k, (name, rid, grams) in enumerate(runs):
        shared = Counter(j for g in grams for j in where[g] if j > k and runs[j][0] != name)
        for j, c in shared.items():
            if c >= share * min(len(grams), len(runs[j][2])):
                problems.append(f"{rid} ({name}) and {runs[j][1]} ({runs[j][0]}) share {c} of their {n}-word runs: "
                                "remove one, or give both documents the same '| group:' so they share a split")
    return problems


def write_pool(shared: Path, out: Path, block: int = 10) -> dict[str, int]:
    """Unannotated candidates in markup layout: FIGNEWS posts one document each (reserved rows
    left out); ANERcorp and Wojood train sentences with conflict content, in blocks of ``block``
    consecutive source sentences (a block is one document)."""
    out.mkdir(parents=True, exist_ok=True)
    reserved = _reserved_set(shared)
    counts = {}
    lines = []
    for r in read_fignews(shared):
        if (r["lang"] == "Arabic" and r["id"] in FIGNEWS_RESERVED) or r["text"] in reserved:
            continue
        text = " ".join(r["text"].split("\n"))
        if text != r["text"]:
            continue  # keep records identical to the source; no FIGNEWS post has a newline today
        lines += [f"# doc: {r['key']} | source: fignews | lang: {r['lang']}", r["text"], ""]
    (out / "fignews.txt").write_text("\n".join(lines), encoding="utf-8")
    counts["fignews"] = sum(1 for x in lines if x.startswith("# doc"))
    for name, rel, prefix in (("anercorp-train", ANER_TRAIN, "aner"), ("wojood-train", WOJOOD_TRAIN, "woj")):
        sents = read_conll_sentences(shared / rel)
        lines, n = [], 0
        for b in range(0, len(sents), block):
            chosen = [s for s in sents[b:b + block] if is_conflict_sentence(s) and s not in reserved
                      and len(s.split()) >= 5]
            if not chosen:
                continue
            lines.append(f"# doc: {prefix}-b{b // block:04d} | source: {name}")
            lines += chosen + [""]
            n += len(chosen)
        (out / f"{prefix}.txt").write_text("\n".join(lines), encoding="utf-8")
        counts[name] = n
    return counts


def split_real(records: list[dict], dev: float = 0.15, test: float = 0.15) -> dict[str, list[dict]]:
    """Whole source documents to each split by a hash of the document id (``meta.group`` when
    given, else ``meta.doc``): a document's split never changes when others are added."""
    out = {s: [] for s in SPLITS}
    for r in records:
        meta = r.get("meta", {})
        key = meta.get("group") or meta.get("doc", r["id"])
        h = int(_stable(key)[:8], 16) / 16**8
        out["test" if h < test else "dev" if h < test + dev else "train"].append(r)
    return out


def check_sources(records: list[dict], shared: Path) -> list[str]:
    """Problems: unknown sources, text that is not its source's text, reserved text."""
    problems = []
    texts = source_texts(shared)
    reserved = _reserved_set(shared)
    # near-copies too: a record sharing a run of NEAR_COPY words with reserved text (a repeated
    # archive title with another date, a re-sent wire paragraph) is left out as well
    near = {r["text"] for r in records} - set(drop_reserved([r["text"] for r in records], reserved))
    for r in records:
        where = f"{r.get('meta', {}).get('file', '?')} [{r['id']}]"
        source = r.get("meta", {}).get("source")
        if source not in SOURCES:
            problems.append(f"{where}: source {source!r} is not one of {', '.join(SOURCES)}; "
                            "name it in the document's '# doc:' header")
            continue
        if r["text"] in reserved:
            problems.append(f"{where}: this text is reserved for independent evaluation; remove it")
        elif r["text"] in near:
            problems.append(f"{where}: this text shares {NEAR_COPY} words in a row with text reserved for "
                            "independent evaluation; remove it")
        elif r["text"] not in texts[source]:
            problems.append(f"{where}: the text is not a {source} text as written there; "
                            "copy it from the source unchanged (only brackets and relations are added)")
    return problems


def check_files(files: list[Path], shared: Path) -> tuple[list[dict], list[str]]:
    """Parse markup files and check them: markup and schema, the text of every record against its
    source, no reserved text, no text annotated twice, no record id twice."""
    records, problems = [], []
    for f in files:
        recs, probs = parse_markup(f)
        for r in recs:
            r["meta"]["file"] = str(f)
        records += recs
        problems += probs
    problems += check_sources(records, shared)
    seen = Counter(r["text"] for r in records)
    problems += [f"a text is annotated {n} times: {t[:60]}..." for t, n in seen.items() if n > 1]
    ids = Counter(r["id"] for r in records)
    problems += [f"record id {i} appears {n} times: give the documents different '# doc:' names" for i, n in ids.items() if n > 1]
    return records, problems


def build_real(root: Path, shared: Path) -> dict:
    """Parse ``root/real/src/*.txt``, check it (:func:`check_files`), write the splits and counts."""
    records, problems = check_files(sorted((root / "real" / "src").glob("*.txt")), shared)
    if problems:
        raise SystemExit("\n".join(problems) + f"\n{len(problems)} problem(s); nothing written")
    for r in records:
        r["meta"].pop("file", None)
        r["meta"]["region"] = r["meta"]["source"]
    splits = split_real(records)
    problems = cross_split_copies(splits)
    if problems:
        raise SystemExit("\n".join(problems) + f"\n{len(problems)} problem(s); nothing written")
    # the train records that name a party or a casualty: configs list them a second time, so the
    # rarer conflict content weighs double while place-only sentences are seen once an epoch
    parties = [r for r in splits["train"] if any(e["label"] in PARTY_LABELS for e in r["entities"])]
    write_jsonl(parties, root / "real" / "train-parties.jsonl")
    return write_splits(splits, root / "real", root / "real" / "README.md")


def load_real(root: Path) -> dict[str, list[dict]]:
    return {name: read_jsonl(root / "real" / f"{name}.jsonl") for name in SPLITS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marsad.training.realtext", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["pool", "check", "build"])
    ap.add_argument("files", nargs="*", type=Path, help="check: the markup files to check (default: all of data/real/src)")
    ap.add_argument("--data", type=Path, default=Path("data"), help="the project's data folder")
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"), help="the shared corpora")
    ap.add_argument("-o", "--output", type=Path, default=Path("/tmp/marsad-real-pool"),
                    help="pool: where to write the candidate files")
    args = ap.parse_args(argv)
    if not (args.shared / FIGNEWS_FILE).exists():
        print(f"error: {args.shared} does not hold the shared corpora; pass --shared DIR", file=sys.stderr)
        return 2
    if args.command == "pool":
        for name, n in write_pool(args.shared, args.output).items():
            print(f"{name}: {n} candidate records")
        print(f"written to {args.output}")
        return 0
    if args.command == "check":
        records, problems = check_files(args.files or sorted((args.data / "real" / "src").glob("*.txt")), args.shared)
        for p in problems:
            print(p, file=sys.stderr)
        n_ent = sum(len(r["entities"]) for r in records)
        n_rel = sum(len(r["relations"]) for r in records)
        print(f"{len(records)} records, {n_ent} entities, {n_rel} relations, {len(problems)} problems")
        return 1 if problems else 0
    print(stats_markdown(build_real(args.data, args.shared)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
