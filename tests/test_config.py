"""Training configs: every shipped config validates; mistakes are named with a fix."""

from pathlib import Path

import pytest

from marsad.training.config import ConfigError, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_shipped_configs():
    names = {p.name for p in CONFIGS}
    assert {"tiny.yaml", "arabert.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads_and_validates(path):
    from marsad.training.config import DistillConfig, TrainConfig

    config = load_config(path, cls=DistillConfig if path.name.startswith("distill") else TrainConfig)  # marsad distill's
    files = config.data_files()
    assert files["train"] and files["dev"]
    for split, paths in files.items():
        for p in paths:
            assert p.is_absolute()
            if "shared" not in p.parts:
                assert p.exists(), f"{path.name}: data.{split} -> {p} is missing"


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_misspelled_key_is_named_with_suggestion(tmp_path):
    p = write(tmp_path, "data: {train: [a.jsonl], dev: [b.jsonl]}\ntrain: {warmup_steps: 100}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.warmup_steps'; did you mean 'train.warmup_ratio'\?"):
        load_config(p)


def test_unknown_top_level_section(tmp_path):
    p = write(tmp_path, "modle: {encoder: scratch}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'; did you mean 'model'\?"):
        load_config(p)


@pytest.mark.parametrize("text, msg", [
    ("data: {train: [a], dev: [b]}\ntrain: {epochs: three}\n", "'train.epochs' must be an integer"),
    ("data: {train: [a], dev: [b]}\ntrain: {lr: fast}\n", "'train.lr' must be a number"),
    ("data: {train: [a], dev: [b]}\naugment: {enabled: 3}\n", "'augment.enabled' must be true or false"),
    ("data: {train: [a], dev: [b]}\ntrain: {mixed_precision: fp8}\n", "mixed_precision must be no, fp16 or bf16"),
    ("data: {train: [a]}\n", "data.dev is empty"),
    ("data: [1, 2]\n", "'data' must be a mapping"),
    ("train: {epochs: [\n", "not valid YAML"),
])
def test_type_and_value_errors(tmp_path, text, msg):
    with pytest.raises(ConfigError, match=msg):
        load_config(write(tmp_path, text))


def test_overrides_and_scientific_notation(tmp_path):
    p = write(tmp_path, "data: {train: a.jsonl, dev: [b.jsonl]}\ntrain: {lr: 5e-5}\n")
    config = load_config(p, ["train.epochs=3", "model.scratch.hidden_size=128", "augment.enabled=true"])
    assert config.train.epochs == 3 and config.train.lr == 5e-5
    assert config.model.scratch.hidden_size == 128 and config.augment.enabled is True
    assert config.data_files()["train"] == [tmp_path / "a.jsonl"]
    with pytest.raises(ConfigError, match="train.epoch'; did you mean 'train.epochs'"):
        load_config(p, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(p, ["train.epochs"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, key", [
    ("model: {scratch: {pretrain: {steps: 500}}}\n", "model.scratch.pretrain"),
    ("model: {scratch: {extra_texts: [../shared/data]}}\n", "model.scratch.extra_texts"),
    ("train: {token_dropout: 0.1}\n", "train.token_dropout"),
    ("model: {scratch: {digits: true}}\n", "model.scratch.digits"),
])
def test_removed_keys_are_named_as_removed(tmp_path, text, key):
    p = write(tmp_path, "data: {train: [a.jsonl], dev: [b.jsonl]}\n" + text)
    with pytest.raises(ConfigError, match=rf"config key '{key}' was removed \(.*no gain on real text\); delete it"):
        load_config(p)
    with pytest.raises(ConfigError, match=rf"'{key}' was removed"):  # as an override too
        load_config(write(tmp_path, "data: {train: [a.jsonl], dev: [b.jsonl]}\n"), [f"{key}=1"])
