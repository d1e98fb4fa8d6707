"""Training with real-text evaluation sets, late evaluation and the time budget's warning."""

import json

import pytest

from conftest import SEED_JSONL, read_jsonl, tiny_config, write_jsonl
from marsad.training.trainer import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs on seed sentences, with a real-text dev and test set, scored from epoch 2 only."""
    tmp = tmp_path_factory.mktemp("realrun")
    records = [r for r in read_jsonl(SEED_JSONL) if r["entities"]]
    write_jsonl(records[:6], tmp / "real_dev.jsonl")
    write_jsonl(records[6:12], tmp / "real_test.jsonl")
    config = tiny_config(tmp, records[12:24], dev=records[:6], train__epochs=2, train__eval_from=2,
                         data__real_dev=[str(tmp / "real_dev.jsonl")], data__real_test=[str(tmp / "real_test.jsonl")],
                         augment__enabled=True, augment__copies=1, augment__share=0.5, augment__noise=0.5)
    logs = []
    result = train(config, tmp / "model", log=logs.append)
    return tmp / "model", result, logs


def test_real_sets_are_scored_and_reported(run):
    out, result, logs = run
    for split in ("dev", "test", "real_dev", "real_test"):
        if split != "test":
            assert set(result[split]) == {"entity_f1", "relation_f1", "relation_f1_gold_entities"}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| real_dev |" in card and "| real_test |" in card
    assert any(line.startswith("\n== real_test ==") for line in logs)
    assert json.loads((out / "metrics.json").read_text())["real_test"] == result["real_test"]


def test_early_epochs_are_not_scored(run):
    out, result, logs = run
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [("dev" in x, "real_dev" in x) for x in lines] == [(False, False), (True, True)]
    assert result["best_epoch"] == 2
    assert "not scored" in logs[[i for i, x in enumerate(logs) if x.startswith("epoch 1")][0]]


def test_budget_stop_is_a_warning_in_the_report_and_the_card(tmp_path):
    records = [r for r in read_jsonl(SEED_JSONL) if r["entities"]][:8]
    config = tiny_config(tmp_path, records, train__epochs=3, train__max_minutes=0.0001)
    logs = []
    result = train(config, tmp_path / "model", log=logs.append)
    assert result["epochs"] == 1 and result["configured_epochs"] == 3
    assert "under-trained" in result["warning"]
    assert "**Warning**" in (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
    assert any(x.startswith("WARNING") or "\nWARNING" in x for x in logs)

