"""Config errors and broken model folders: a one-line error that names the key or file and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import (
    SEED_JSONL, SEED_TXT, one_line_error, overfit_records, read_jsonl, write_jsonl, yaml_config,
)
from marsad.model import Extractor
from marsad.model.modeling import MarsadModel, ModelLoadError
from marsad.training.cli import main

SUBPROCESS_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                  "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _edit_yaml(path: Path, edit) -> Path:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, extra, want", [
    (lambda d: d.__setitem__("sed", d.pop("seed")), [], "unknown config key 'sed'; did you mean 'seed'?"),
    (lambda d: d["train"].__setitem__("epochz", 3), [], "unknown config key 'train.epochz'; did you mean 'train.epochs'?"),
    (lambda d: d["model"]["scratch"].__setitem__("vocab_sise", 9), [],
     "unknown config key 'model.scratch.vocab_sise'; did you mean 'model.scratch.vocab_size'?"),
    (None, ["train.lerning_rate=0.1"], "unknown config key 'train.lerning_rate'"),
    (None, ["train.epoch=3"], "did you mean 'train.epochs'?"),
    (lambda d: d["train"].__setitem__("epochs", "many"), [], "'train.epochs' must be an integer, got 'many'"),
    (lambda d: d["train"].__setitem__("lr", [1]), [], "'train.lr' must be a number, got [1]"),
    (lambda d: d.__setitem__("model", 5), [], "'model' must be a mapping of keys to values, got int"),
    (None, ["train.batch_size=0"], "train.batch_size must be at least 1, got 0"),
    (None, ["train.epochs"], "must look like key=value"),
    (lambda d: d["data"].__setitem__("train", ["/no/such/train.jsonl"]), [], "data.train names /no/such/train.jsonl, which does not exist"),
], ids=["misspelled top key", "misspelled key", "misspelled nested key", "unknown override", "misspelled override",
        "string for int", "list for float", "section not a mapping", "out of range", "override without =", "missing data file"])
def test_config_errors(cli, tmp_path, edit, extra, want):
    path = yaml_config(tmp_path)
    if edit:
        _edit_yaml(path, edit)
    out = tmp_path / "run"
    # overrides both before and after the options
    code, _, err = cli("train", path, *extra, "-o", out)
    assert code == 1
    line = one_line_error(err, "train")
    assert want in line
    if edit:  # a problem in the file names the file
        assert str(path.name) in line
    if extra and "=" in extra[0]:
        code, _, err2 = cli("train", path, "-o", out, *extra)
        assert code == 1 and want in one_line_error(err2, "train")
    assert not (out / "checkpoint").exists()


def test_config_file_missing_or_not_yaml(cli, tmp_path):
    code, _, err = cli("train", tmp_path / "nope.yaml")
    assert code == 1 and "no such config file" in one_line_error(err, "train")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [1, 2\n", encoding="utf-8")
    code, _, err = cli("train", bad)
    assert code == 1 and f"{bad}:3: not valid YAML" in one_line_error(err, "train")
    bad.write_bytes(b"train:\n  epochs: \xff\n")
    code, _, err = cli("train", bad)
    assert code == 1 and "not UTF-8" in one_line_error(err, "train")


def test_training_data_with_wrong_labels(cli, tmp_path):
    path = yaml_config(tmp_path)
    recs = overfit_records()[:4]
    recs[2]["entities"][0]["label"] = "PLACE"
    write_jsonl(recs, tmp_path / "train.jsonl")
    code, _, err = cli("train", path, "-o", tmp_path / "run")
    assert code == 1
    assert err.startswith("marsad train: error: ") and "problem(s) in the data; fix them" in err.splitlines()[0]
    assert f"{tmp_path / 'train.jsonl'}:3 [{recs[2]['id']}]: entity 0: label 'PLACE' is not one of ACTOR, LOCATION, CASUALTY" in err


def test_evaluate_data_with_labels_the_model_does_not_know(cli, tmp_path, trained_model):
    recs = read_jsonl(SEED_JSONL)[:2]
    recs[1]["entities"][0]["label"] = "WEAPON"
    write_jsonl(recs, tmp_path / "gold.jsonl")
    code, _, err = cli("evaluate", "-m", trained_model, tmp_path / "gold.jsonl")
    assert code == 1
    assert f"{tmp_path / 'gold.jsonl'}:2: label WEAPON is not one the model knows (ACTOR, LOCATION, CASUALTY)" in err


# --- broken model folders ----------------------------------------------------------------------
def _config_edit(fn):
    def edit(d: Path):
        c = json.loads((d / "config.json").read_text(encoding="utf-8"))
        fn(c)
        (d / "config.json").write_text(json.dumps(c), encoding="utf-8")
    return edit


def _drop_weights(prefix):
    def edit(d: Path):
        from safetensors.torch import load_file, save_file

        state = load_file(str(d / "model.safetensors"))
        save_file({k: v for k, v in state.items() if not k.startswith(prefix)}, str(d / "model.safetensors"))
    return edit


def _truncate(n):
    def edit(d: Path):
        p = d / "model.safetensors"
        p.write_bytes(p.read_bytes()[:n])
    return edit


MODEL_BREAKERS = {
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing; the folder is incomplete"),
    "no config": (lambda d: (d / "config.json").unlink(), "config.json is missing; the folder is incomplete"),
    "newer marsad": (_config_edit(lambda c: c["marsad"].__setitem__("format_version", 99)),
                     "saved by a newer marsad (format 99, this one reads 1); upgrade marsad"),
    "plain encoder": (_config_edit(lambda c: c.pop("marsad")), "no 'marsad' block: it is a plain encoder"),
    "unknown setting": (_config_edit(lambda c: c["marsad"].__setitem__("future_knob", 1)), "unknown keys in the config's 'marsad' block"),
    "other labels": (_config_edit(lambda c: c.__setitem__("id2label", {"0": "O", "1": "B-WEAPON"})), "does not match the entity labels"),
    "config not json": (lambda d: (d / "config.json").write_text("{not json", encoding="utf-8"), "config.json cannot be read as a model config"),
    "config not utf-8": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe{}"), "config.json cannot be read as a model config"),
    "unknown architecture": (_config_edit(lambda c: c.__setitem__("model_type", "no-such-model")), "config.json cannot be read as a model config"),
    "other shapes": (_config_edit(lambda c: c.__setitem__("hidden_size", 128)), "weights do not fit the config"),
    "weights truncated": (_truncate(2000), "model.safetensors is corrupted or not a safetensors file"),
    "weights empty": (_truncate(0), "model.safetensors is corrupted or not a safetensors file"),
    "weights random": (lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096)), "model.safetensors is corrupted"),
    "weights missing": (_drop_weights("classifier."), "weights missing from model.safetensors for classifier"),
    "tokenizer broken": (lambda d: (d / "tokenizer.json").write_text("garbage", encoding="utf-8"), "tokenizer files are missing or broken"),
}


@pytest.mark.parametrize("name", list(MODEL_BREAKERS))
def test_broken_model_folder(cli, model_copy, name):
    breaker, want = MODEL_BREAKERS[name]
    breaker(model_copy)
    with pytest.raises(ModelLoadError, match=str(model_copy)) as exc:
        Extractor.from_pretrained(model_copy, device="cpu")
    assert want in str(exc.value)
    code, out, err = cli("predict", "-m", model_copy, SEED_TXT)
    assert code == 1 and out == ""
    line = one_line_error(err, "predict")
    assert want in line and str(model_copy) in line


def test_model_folder_missing(cli, tmp_path):
    code, _, err = cli("predict", "-m", tmp_path / "nope", SEED_TXT)
    assert code == 1
    assert "no such model folder; train one with `marsad train" in one_line_error(err, "predict")
    code, _, err = cli("evaluate", "-m", SEED_TXT, SEED_JSONL)  # a file, not a folder
    assert code == 1 and "no such model folder" in one_line_error(err, "evaluate")


def test_model_folder_without_tokenizer_files(model_copy):
    (model_copy / "tokenizer.json").unlink()
    (model_copy / "tokenizer_config.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        Extractor.from_pretrained(model_copy, device="cpu")


def test_model_with_nan_weights_is_refused(model_copy):
    from safetensors.torch import load_file, save_file

    state = load_file(str(model_copy / "model.safetensors"))
    state["relation_head.type_emb.weight"][:] = float("nan")
    save_file(state, str(model_copy / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="corrupted|finite|NaN"):
        MarsadModel.from_pretrained(model_copy)


def test_device_or_precision_this_machine_lacks(cli, trained_model):
    import torch

    code, _, err = cli("predict", "-m", trained_model, SEED_TXT, "--device", "cpu", "--precision", "fp16")
    assert code == 2 and "precision fp16 needs a CUDA GPU; on CPU use bf16" in one_line_error(err, "predict")
    if not torch.cuda.is_available():
        code, _, err = cli("evaluate", "-m", trained_model, SEED_JSONL, "--device", "cuda")
        assert code == 2 and "no CUDA GPU is available; use" in one_line_error(err, "evaluate")


def test_debug_shows_the_traceback(cli, tmp_path):
    with pytest.raises(ModelLoadError):
        main(["--debug", "predict", "-m", str(tmp_path / "nope"), str(SEED_TXT)])


def test_real_process_prints_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xd9\x82\xff")
    proc = subprocess.run([sys.executable, "-m", "marsad.training.cli", "predict", "-m", str(tmp_path), str(bad)],
                          capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == f"marsad predict: error: {bad}:1: invalid UTF-8 at byte 2 (column 3); re-save the file as UTF-8"
