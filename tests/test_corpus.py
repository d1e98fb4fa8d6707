"""The project's corpus: size, validity, splits by document, and the data card's counts."""

from collections import Counter

import pytest

from conftest import ROOT
from marsad.training.corpus import (BEGIN, END, SPLITS, consistency_report, corpus_stats, load_splits, mention_overlap,
                                    stats_markdown, strip_words)
from marsad.training.formats import validate_file
from marsad.training.markup import parse_markup

DATA = ROOT / "data"


@pytest.fixture(scope="module")
def splits():
    return load_splits(DATA)


def test_corpus_size(splits):
    records = [r for recs in splits.values() for r in recs]
    assert len(records) >= 1500
    assert sum(len(r["entities"]) for r in records) >= 2500
    assert sum(len(r["relations"]) for r in records) >= 800


@pytest.mark.parametrize("split", SPLITS)
def test_split_files_validate(split):
    n, problems = validate_file(DATA / "corpus" / f"{split}.jsonl")
    assert n > 100 and problems == []


def test_splits_are_by_document_and_about_80_10_10(splits):
    docs = {name: {r["meta"]["doc"] for r in recs} for name, recs in splits.items()}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["dev"] and not docs["dev"] & docs["test"]
    total = sum(len(v) for v in splits.values())
    assert 0.7 < len(splits["train"]) / total < 0.85
    for name in ("dev", "test"):
        assert 0.07 < len(splits[name]) / total < 0.16


def test_jsonl_is_what_the_sources_build(splits):
    built = {}
    for src in sorted((DATA / "corpus" / "src").glob("*.txt")):
        records, problems = parse_markup(src)
        assert problems == [], problems[:3]
        built.update({r["id"]: r for r in records})
    stored = {r["id"]: r for recs in splits.values() for r in recs}
    assert stored == built


def test_data_card_counts_match_the_files(splits):
    card = (DATA / "README.md").read_text(encoding="utf-8")
    assert BEGIN in card and END in card
    table = card.split(BEGIN)[1].split(END)[0].strip()
    assert table == stats_markdown(corpus_stats(splits))


def test_every_label_and_relation_in_every_split(splits):
    for name, recs in splits.items():
        labels = Counter(e["label"] for r in recs for e in r["entities"])
        rels = Counter(x["label"] for r in recs for x in r["relations"])
        assert set(labels) == {"ACTOR", "LOCATION", "CASUALTY"}, name
        assert len(rels) == 5, name


def test_mention_overlap_report_is_computed(splits):
    share = mention_overlap(splits["train"], splits["test"])
    assert 0.0 < share < 0.9


def _record(text, *spans):
    """A hand-made record with the given ``(mention, label)`` entities."""
    ents = [{"start": text.index(m), "end": text.index(m) + len(m), "label": label} for m, label in spans]
    return {"id": "t", "text": text, "entities": ents, "relations": []}


def test_clitic_stripped_consistency_sees_what_the_exact_check_does_not():
    records = [_record("هاجمت الميليشيا بلدة عديلة", ("الميليشيا", "ACTOR")),
               _record("قصف الجيش مخازن للميليشيا", ("الجيش", "ACTOR"))]
    assert strip_words("للميليشيا") == strip_words("الميليشيا") == "ميليشيا"
    assert strip_words("بالجيش السوري") == strip_words("والجيش السوري") == strip_words("للجيش السوري") == "جيش سوري"
    assert consistency_report(records) == []
    assert consistency_report(records, strip_clitics=True) == [("ميليشيا", Counter({"ACTOR": 1, "O": 1}))]
