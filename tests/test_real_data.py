"""data/real/: real annotated text. Size, validity, exact source text, splits by source
document, round trips, the data card's counts, and no reserved evaluation text anywhere in data/."""

import re

import pytest

from conftest import ROOT, SHARED
from marsad.training.corpus import corpus_stats, stats_markdown
from marsad.training.formats import read_conll, validate_file, write_conll
from marsad.training.labelstudio import read_labelstudio, write_labelstudio
from marsad.training.markup import parse_markup
from marsad.training.corpus import BEGIN, END
from marsad.training.realtext import FIGNEWS_RESERVED, SOURCES, SPLITS, check_sources, load_real, reserved_texts, split_real

DATA = ROOT / "data"
SHARED_DATA = SHARED / "data"
needs_shared = pytest.mark.skipif(not (SHARED_DATA / "anercorp" / "test.txt").is_file(),
                                  reason="../shared/data (the source corpora) is not beside the repository")


@pytest.fixture(scope="module")
def splits():
    return load_real(DATA)


@pytest.fixture(scope="module")
def records(splits):
    return [r for recs in splits.values() for r in recs]


def test_size(records):
    assert len(records) >= 800
    assert sum(len(r["entities"]) for r in records) >= 2500
    assert sum(len(r["relations"]) for r in records) >= 800


@pytest.mark.parametrize("split", SPLITS)
def test_split_files_validate(split):
    n, problems = validate_file(DATA / "real" / f"{split}.jsonl")
    assert n > 50 and problems == []


def test_every_source_is_named_and_licensed(records):
    sources = {r["meta"]["source"] for r in records}
    assert sources <= set(SOURCES)
    assert {"fignews", "anercorp-train"} <= sources
    card = (DATA / "real" / "README.md").read_text(encoding="utf-8")
    for needle in ("CC BY-SA 4.0", "MIT", "FIGNEWS", "ANERcorp", "Wojood", "Benajiba"):
        assert needle in card


def test_splits_are_by_source_document(splits):
    docs = {name: {r["meta"]["doc"] for r in recs} for name, recs in splits.items()}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["dev"] and not docs["dev"] & docs["test"]
    for name in ("dev", "test"):
        assert {r["meta"]["source"] for r in splits[name]} >= {"fignews", "anercorp-train"}


def test_jsonl_is_what_the_sources_build(splits):
    built = []
    for src in sorted((DATA / "real" / "src").glob("*.txt")):
        recs, problems = parse_markup(src)
        assert problems == [], problems[:3]
        for r in recs:
            r["meta"]["region"] = r["meta"]["source"]
        built += recs
    rebuilt = split_real(built)
    assert {k: sorted(r["id"] for r in v) for k, v in rebuilt.items()} == \
        {k: sorted(r["id"] for r in v) for k, v in splits.items()}
    stored = {r["id"]: r for recs in splits.values() for r in recs}
    assert stored == {r["id"]: r for r in built}


def test_train_parties_is_the_train_records_with_a_party_or_casualty(splits):
    """``train-parties.jsonl`` (listed a second time by the configs) is exactly the train records
    naming an ACTOR or a CASUALTY, in order: place-only sentences are not doubled."""
    from marsad.training.formats import read_jsonl

    parties = read_jsonl(DATA / "real" / "train-parties.jsonl")
    expected = [r for r in splits["train"] if {e["label"] for e in r["entities"]} & {"ACTOR", "CASUALTY"}]
    assert [r["id"] for r in parties] == [r["id"] for r in expected]
    assert 0 < len(parties) < len(splits["train"])


def test_no_record_repeats_one_of_another_split(splits):
    """The build refuses a record that shares three quarters of its six-word runs with a record of
    another split (an archive title or stock post repeated with another number)."""
    from marsad.training.realtext import cross_split_copies

    assert cross_split_copies(splits) == []


def test_cross_split_copies_are_caught():
    from marsad.training.realtext import cross_split_copies

    title = "محضر جلسة المجلس البلدي في المدينة القديمة لبحث شؤون الأسواق والطرق والمياه والإنارة العامة رقم {}"
    a, b = {"id": "a", "text": title.format(246)}, {"id": "b", "text": title.format(268)}
    other = {"id": "c", "text": "وصل الوفد إلى العاصمة مساء أمس لبحث ملف المعابر مع المسؤولين هناك"}
    problems = cross_split_copies({"train": [a, other], "test": [b]})
    assert len(problems) == 1 and "a (train) and b (test)" in problems[0]
    assert cross_split_copies({"train": [a, b], "test": [other]}) == []  # one split: no leak


def test_data_card_counts_match_the_files(splits):
    card = (DATA / "real" / "README.md").read_text(encoding="utf-8")
    table = card.split(BEGIN)[1].split(END)[0].strip()
    assert table == stats_markdown(corpus_stats(splits))


def test_conll_and_label_studio_round_trips(records, tmp_path):
    write_conll(records, tmp_path / "real.conll")
    assert read_conll(tmp_path / "real.conll") == records
    write_labelstudio(records, tmp_path / "real.json")
    back = read_labelstudio(tmp_path / "real.json")
    assert [(r["id"], r["text"], r["entities"], r["relations"]) for r in back] == \
        [(r["id"], r["text"], r["entities"], r["relations"]) for r in records]


@needs_shared
def test_every_record_is_its_source_text_unchanged(records):
    for r in records:
        r.setdefault("meta", {})
    assert check_sources(records, SHARED_DATA) == []


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@needs_shared
def test_no_reserved_text_anywhere_in_data():
    """The reserved evaluation text (ANERcorp test, Wojood test, 21 FIGNEWS Arabic rows) must never
    be annotated or trained on: no file under data/ may hold any of it (spacing ignored)."""
    reserved = reserved_texts(SHARED_DATA)
    assert len(reserved["fignews-reserved"]) == len(FIGNEWS_RESERVED)
    assert len(reserved["anercorp-test"]) > 900 and len(reserved["wojood-test"]) > 300
    # short sentences ("( رويترز ) ." or a two-word headline) can occur anywhere by chance
    needles = {_squash(t) for texts in reserved.values() for t in texts if len(t.split()) >= 6}
    hay = []
    for path in sorted(DATA.rglob("*")):
        if path.is_file() and path.suffix in (".jsonl", ".txt", ".markup", ".md", ".json"):
            text = path.read_text(encoding="utf-8")
            text = re.sub(r"\]\{[ALC]\d+\}|\[", "", text)  # markup brackets out
            hay.append((path, _squash(text)))
    found = [(p.relative_to(ROOT), n[:40]) for p, h in hay for n in needles if n in h]
    assert found == []


@needs_shared
def test_reserved_check_would_catch_a_leak(tmp_path):
    """The check itself works: a reserved FIGNEWS post is refused as a record."""
    post = reserved_texts(SHARED_DATA)["fignews-reserved"][0]
    rec = {"id": "x-001", "text": post, "entities": [], "relations": [], "meta": {"source": "fignews", "doc": "x"}}
    problems = check_sources([rec], SHARED_DATA)
    assert problems and "reserved" in problems[0]
    changed = dict(rec, text="نص ليس في المصدر")
    assert "not a fignews text" in check_sources([changed], SHARED_DATA)[0]


def test_a_post_that_opens_with_a_hashtag_is_a_record(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text("# doc: fig-ar-1 | source: fignews\n#[غزة]{L1} تحت القصف\n# a comment\n#\n", encoding="utf-8")
    records, problems = parse_markup(f)
    assert problems == [] and [r["text"] for r in records] == ["#غزة تحت القصف"]
    assert records[0]["entities"][0]["label"] == "LOCATION"


@needs_shared
def test_no_near_copy_of_reserved_text(records):
    """No real record shares five words in a row with reserved text (archive titles repeated with
    another date, a wire sentence repeated about another place), nor does any written sentence of
    five words or more (the seed's one-word headings excepted: short texts are matched whole)."""
    from marsad.training.formats import read_jsonl
    from marsad.training.realtext import drop_reserved

    reserved = {t for ts in reserved_texts(SHARED_DATA).values() for t in ts}
    texts = [r["text"] for r in records]
    assert drop_reserved(texts, reserved) == texts
    written = [r["text"] for f in sorted((DATA / "corpus").glob("*.jsonl")) + [DATA / "seed.jsonl"]
               for r in read_jsonl(f) if len(r["text"].split()) >= 5]
    assert drop_reserved(written, reserved) == written


@needs_shared
def test_no_reserved_text_in_any_other_file():
    """Docs, notes in the markup sources, tests and configs quote no reserved text either: every
    Arabic line of five words or more in the repository's text files passes the same rule."""
    import re

    from marsad.training.realtext import drop_reserved

    reserved = {t for ts in reserved_texts(SHARED_DATA).values() for t in ts}
    skip = {".git", "runs", "__pycache__", ".pytest_cache"}
    lines = []
    for f in ROOT.rglob("*"):
        if f.suffix in (".md", ".txt", ".py", ".yaml", ".yml", ".toml", ".json") and not skip & set(f.relative_to(ROOT).parts):
            lines += [(f, line) for line in f.read_text(encoding="utf-8", errors="ignore").splitlines()
                      if len(line.split()) >= 5 and re.search("[\u0600-\u06ff]", line)]
    kept = set(drop_reserved([line for _, line in lines], reserved))
    assert [(str(f.relative_to(ROOT)), line[:100]) for f, line in lines if line not in kept] == []


def test_near_copies_are_caught():
    from marsad.training.realtext import drop_reserved

    # invented sentences (never reserved text): the same sentence about another place and figure
    reserved = ["قالت المصادر إن 40 طائرة مسيرة قصفت مواقع في البلدة أمس"]
    assert drop_reserved(["وأكدت الوكالة أن 12 طائرة مسيرة قصفت مواقع في القرية"], reserved) == []
    assert drop_reserved(["وأكدت الوكالة أن 12 طائرة مسيرة قصفت مواقع في القرية"], reserved, n=6) != []
    # punctuation, diacritics and tatweel do not hide a copy
    assert drop_reserved(["دمشق : من أوراق الكاتب الراحل في ( 2 / 1 / 1950 ) ."],
                         ["دمشق : من أوراقِ الكاتـب الراحل في ايار من ( 1950 ) ."]) == []
