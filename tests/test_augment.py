"""Mention-replacement augmentation."""

import pytest

from conftest import SEED_JSONL, SHARED, read_jsonl
from marsad.training.augment import MentionPools, augment_records, join_clitic, load_city_names, split_clitic
from marsad.training.formats import validate_record


def test_split_and_join_clitics():
    known = {"حلب", "الجيش السوري", "الرقة"}
    assert split_clitic("بحلب", known) == ("ب", "حلب")
    assert split_clitic("وحلب", known) == ("و", "حلب")
    assert split_clitic("للجيش السوري", known) == ("ل", "الجيش السوري")
    assert split_clitic("حلب", known) == ("", "حلب")
    assert split_clitic("بيروت", known) == ("", "بيروت")
    assert join_clitic("ل", "الرقة") == "للرقة"
    assert join_clitic("وب", "دوما") == "وبدوما"


def test_augmented_records_are_valid_and_keep_relations():
    records = read_jsonl(SEED_JSONL)
    out = augment_records(records, copies=2, p_replace=0.8, seed=3)
    assert len(out) > 20
    by_id = {r["id"]: r for r in records}
    for r in out:
        assert validate_record(r) == [], r["id"]
        orig = by_id[r["id"].split("#")[0]]
        assert r["relations"] == orig["relations"]
        assert [e["label"] for e in r["entities"]] == [e["label"] for e in orig["entities"]]
        for e, o in zip(r["entities"], orig["entities"]):
            if e["label"] == "CASUALTY":
                assert e["text"] == orig["text"][o["start"]:o["end"]]  # casualties are never swapped
    assert any(r["text"] != by_id[r["id"].split("#")[0]]["text"] for r in out)


def test_deterministic_with_seed():
    records = read_jsonl(SEED_JSONL)
    assert augment_records(records, 1, 0.7, seed=5) == augment_records(records, 1, 0.7, seed=5)
    assert augment_records(records, 1, 0.7, seed=5) != augment_records(records, 1, 0.7, seed=6)


def test_clitic_survives_replacement():
    rec = {"id": "x", "text": "قصفت قوات النظام بحلب وحمص.", "entities": [
        {"start": 5, "end": 16, "label": "ACTOR"}, {"start": 17, "end": 21, "label": "LOCATION"},
        {"start": 22, "end": 26, "label": "LOCATION"}], "relations": [{"head": 0, "tail": 1, "label": "ATTACKS"}]}
    other = {"id": "y", "text": "دخل الجيش إدلب ودوما", "entities": [
        {"start": 10, "end": 14, "label": "LOCATION"}, {"start": 15, "end": 20, "label": "LOCATION"}], "relations": []}
    assert [other["text"][e["start"]:e["end"]] for e in other["entities"]] == ["إدلب", "ودوما"]
    pools = MentionPools([rec, other], cities=["حلب", "دوما"])
    assert "حلب" in pools.known["LOCATION"] and "بحلب" not in pools.pools["LOCATION"]
    out = augment_records([rec, other], copies=3, p_replace=1.0, seed=1, cities=["حلب", "دوما"])
    swapped = [r for r in out if r["id"].startswith("x")]
    assert swapped
    for r in swapped:
        loc = r["entities"][1]
        assert r["text"][loc["start"]:loc["end"]].startswith("ب")


def test_no_city_file_gives_no_names():
    assert load_city_names(None) == []


def test_city_names_from_shared_data():
    path = SHARED / "data" / "world_cities_ar" / "world-cities.csv"
    if not path.exists():
        pytest.skip(f"{path} is not there (../shared beside the repository)")
    names = load_city_names(path)
    assert len(names) > 1000 and "كابل" in names and not any(n.startswith("ولاية ") for n in names)


def test_share_makes_copies_for_part_of_the_records():
    records = read_jsonl(SEED_JSONL)
    full = augment_records(records, 1, 0.8, seed=4)
    half = augment_records(records, 1, 0.8, seed=4, share=0.5)
    assert 0 < len(half) < len(full)
    assert {r["id"] for r in half} < {r["id"] for r in records} | {r["id"] + "#aug1" for r in records}
    assert augment_records(records, 1, 0.8, seed=4, share=1.0) == full
    assert half == augment_records(records, 1, 0.8, seed=4, share=0.5)
