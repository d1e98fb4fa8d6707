"""Untrusted artifacts: model folders and configs from strangers never run code (no pickles, no
remote code)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import (
    GOOD, SEED_TXT, check_record, evil_pickle, one_line_error, overfit_records, tiny_config,
    yaml_config,
)
from marsad.model import Extractor
from marsad.model.modeling import ModelLoadError

QUIET = lambda *a, **k: None  # noqa: E731
SUBPROCESS_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                  "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_pickle_weights_are_never_loaded(cli, model_copy, tmp_path):
    marker = tmp_path / "UNPICKLED"
    (model_copy / "model.safetensors").unlink()
    (model_copy / "pytorch_model.bin").write_bytes(evil_pickle(marker))
    with pytest.raises(ModelLoadError, match="only safetensors weights are read, never pickle files"):
        Extractor.from_pretrained(model_copy, device="cpu")
    code, _, err = cli("predict", "-m", model_copy, SEED_TXT)
    assert code == 1 and "never pickle files" in one_line_error(err, "predict")
    assert not marker.exists()


def test_pickle_beside_safetensors_is_ignored(model_copy, tmp_path):
    marker = tmp_path / "UNPICKLED"
    for name in ("pytorch_model.bin", "model.pt", "training_args.bin", "model.ckpt"):
        (model_copy / name).write_bytes(evil_pickle(marker))
    [rec] = Extractor.from_pretrained(model_copy, device="cpu").extract(GOOD)
    check_record(rec, GOOD)
    assert not marker.exists()


EVIL_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast
class EvilConfig(BertConfig):
    model_type = "evil"
class EvilModel(BertModel):
    config_class = EvilConfig
class EvilTokenizer(PreTrainedTokenizerFast):
    pass
"""


def _plant_remote_code(folder: Path, marker: Path, model_type: str | None = None) -> None:
    (folder / "evil.py").write_text(EVIL_MODULE.format(marker=str(marker)), encoding="utf-8")
    c = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    c["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel",
                     "AutoModelForTokenClassification": "evil.EvilModel", "AutoTokenizer": [None, "evil.EvilTokenizer"]}
    if model_type:
        c["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(c), encoding="utf-8")
    t = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    t["auto_map"] = {"AutoTokenizer": [None, "evil.EvilTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(t), encoding="utf-8")


def test_model_folder_code_is_never_run(cli, model_copy, tmp_path, monkeypatch):
    import transformers

    marker = tmp_path / "CODE_RAN"
    _plant_remote_code(model_copy, marker)
    monkeypatch.setattr("builtins.input", lambda *a: "y")  # even a "yes" to a prompt changes nothing
    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModel):
        orig = cls.from_pretrained

        def spy(*args, _orig=orig, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _orig(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    # a bert model with an auto_map: the custom classes are ignored
    [rec] = Extractor.from_pretrained(model_copy, device="cpu").extract(GOOD)
    check_record(rec, GOOD)
    assert seen and all(flag is False for flag in seen), seen
    # a model type only the folder's code knows: a clear error instead
    _plant_remote_code(model_copy, marker, model_type="evil")
    code, _, err = cli("predict", "-m", model_copy, SEED_TXT)
    assert code == 1 and "custom code" in one_line_error(err, "predict")
    assert not marker.exists()


def test_yaml_config_cannot_run_code(cli, tmp_path):
    marker = tmp_path / "YAML_RAN"
    bad = tmp_path / "evil.yaml"
    bad.write_text(f'seed: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8")
    code, _, err = cli("train", bad)
    assert code == 1 and "not valid YAML" in one_line_error(err, "train")
    assert not marker.exists()


def _encoder_folder(tmp: Path, trained_model: Path) -> Path:
    from transformers import BertConfig, BertModel

    enc = tmp / "encoder"
    BertModel(BertConfig(vocab_size=800, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(str(enc))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(trained_model / name, enc / name)
    return enc


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's weights-only unpickler refusing it
def test_training_encoder_with_pickle_weights_runs_no_code(tmp_path, trained_model):
    from marsad.training.trainer import train

    enc = _encoder_folder(tmp_path, trained_model)
    marker = tmp_path / "UNPICKLED"
    (enc / "model.safetensors").unlink()
    (enc / "pytorch_model.bin").write_bytes(evil_pickle(marker))
    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=1, model__encoder=str(enc))
    with pytest.raises(Exception):
        train(config, tmp_path / "run", log=QUIET)
    assert not marker.exists()


def test_training_encoder_with_pickle_weights_is_refused_clearly(cli, tmp_path, trained_model):
    enc = _encoder_folder(tmp_path, trained_model)
    (enc / "model.safetensors").unlink()
    (enc / "pytorch_model.bin").write_bytes(evil_pickle(tmp_path / "UNPICKLED"))
    path = yaml_config(tmp_path, train__epochs=1, model__encoder=str(enc))
    code, _, err = cli("train", path, "-o", tmp_path / "run")
    assert code == 1 and "safetensors" in one_line_error(err, "train")


def test_training_encoder_code_is_never_offered(tmp_path, trained_model, monkeypatch):
    from marsad.training.trainer import train

    enc = _encoder_folder(tmp_path, trained_model)
    marker = tmp_path / "CODE_RAN"
    _plant_remote_code(enc, marker, model_type="evil")
    prompts = []
    monkeypatch.setattr("builtins.input", lambda *a: prompts.append(a) or "n")  # answer no: nothing runs here
    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=1, model__encoder=str(enc))
    with pytest.raises(Exception):
        train(config, tmp_path / "run", log=QUIET)
    assert not marker.exists()
    assert prompts == [], "the user was asked whether to run the folder's code"
