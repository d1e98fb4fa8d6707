"""The seed article and its gold annotation."""

from conftest import ROOT, SEED_JSONL, SEED_TXT, read_jsonl
from marsad.training.formats import validate_file
from marsad.training.markup import parse_markup

SHARED_SEED = ROOT.parent / "shared" / "seeds" / SEED_TXT.name


def test_seed_is_byte_for_byte_the_shared_article():
    if SHARED_SEED.exists():
        assert SEED_TXT.read_bytes() == SHARED_SEED.read_bytes()


def test_seed_gold_validates():
    n, problems = validate_file(SEED_JSONL)
    assert n == 37 and problems == []


def test_seed_gold_texts_reproduce_the_article_in_order():
    records = read_jsonl(SEED_JSONL)
    assert "\n".join(r["text"] for r in records) == SEED_TXT.read_text(encoding="utf-8")
    assert [r["id"] for r in records] == [f"seed-{i:03d}" for i in range(1, 38)]


def test_seed_gold_is_generated_from_its_markup():
    records, problems = parse_markup(ROOT / "data" / "seed.markup")
    assert problems == []
    assert records == read_jsonl(SEED_JSONL)


def test_seed_gold_covers_the_spec_examples():
    records = read_jsonl(SEED_JSONL)
    spans = {(r["text"][e["start"]:e["end"]], e["label"]) for r in records for e in r["entities"]}
    for expected in [("عشرون مدنيا", "CASUALTY"), ("خمسة أطفال", "CASUALTY"), ("ثلاثة أشخاص", "CASUALTY"),
                     ("وتلبيسة", "LOCATION"), ("الرستن", "LOCATION"), ("قواتها", "ACTOR"),
                     ("سورية وروسية", "ACTOR"), ("هيئة تحرير الشام", "ACTOR"), ("دير الزور", "LOCATION")]:
        assert expected in spans
    labels = {e["label"] for r in records for e in r["entities"]}
    rels = {x["label"] for r in records for x in r["relations"]}
    assert labels == {"ACTOR", "LOCATION", "CASUALTY"}
    assert rels == {"CONTROLS", "ATTACKS", "WITHDRAWS_FROM", "CASUALTY_IN", "CAUSED_BY"}
