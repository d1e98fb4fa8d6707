"""``marsad distill``: a smaller student learns from a trained teacher (the session's tiny model).

Real training runs, no mocks: the teacher is ``trained_model`` (a 2-layer, hidden-64 BERT overfit
on eight seed sentences), the students are 1-layer, hidden-32 BERTs on its tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from conftest import GOOD, overfit_records, write_jsonl

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def distill_yaml(tmp: Path, teacher: Path, train_records: list[dict], dev_records: list[dict] | None = None,
                 **distill) -> Path:
    """A small distillation config over ``train_records`` (dev: ``dev_records``, or the same), written to ``tmp``."""
    write_jsonl(train_records, tmp / "train.jsonl")
    write_jsonl(dev_records or train_records, tmp / "dev.jsonl")
    data = {
        "seed": 7,
        "model": {"dropout": 0.0},
        "distill": {"teacher": str(teacher), "temperature": 2.0, "alpha": 0.5,
                    "student": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
                                "relation_hidden": 32, "init": "teacher"}, **distill},
        "data": {"train": ["train.jsonl"], "dev": ["dev.jsonl"]},
        "train": {"epochs": 40, "batch_size": 8, "lr": 5e-3, "warmup_ratio": 0.0, "patience": 100, "eval_from": 40},
    }
    path = tmp / "distill.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def entity_sets(ex, texts: list[str]) -> list[set]:
    return [{(e["start"], e["end"], e["label"]) for e in r["entities"]} for r in ex.extract(texts)]


def test_cli_writes_a_student_that_loads_and_extracts(trained_model, tmp_path, cli):
    from marsad.model import Extractor
    from marsad.training.distill import encoder_flops

    config = distill_yaml(tmp_path, trained_model, overfit_records())
    code, out, err = cli("distill", config, "-o", tmp_path / "student", "train.epochs=30", "train.eval_from=30")
    assert code == 0, err
    student_dir = tmp_path / "student"
    assert "student saved to" in out
    # the teacher's tokenizer, byte for byte: sub-word positions match
    assert (student_dir / "tokenizer.json").read_bytes() == (trained_model / "tokenizer.json").read_bytes()
    ex = Extractor.from_pretrained(student_dir, device="cpu", precision="fp32")
    teacher = Extractor.from_pretrained(trained_model, device="cpu", precision="fp32")
    assert ex.model.config.hidden_size == 32 and ex.model.config.num_hidden_layers == 1
    assert encoder_flops(ex.model) < encoder_flops(teacher.model) / 3
    rec = ex.extract(GOOD)[0]
    assert rec["text"] == GOOD and isinstance(rec["entities"], list)
    texts = [r["text"] for r in overfit_records()]
    assert sum(map(len, entity_sets(ex, texts))) > 0  # it learnt to tag
    card = (student_dir / "README.md").read_text(encoding="utf-8")
    assert "distilled from the teacher" in card and "distill:" in card


def test_soft_targets_teach_what_gold_does_not(trained_model, tmp_path):
    """Gold labels with every entity removed: a student trained on the teacher's soft targets alone
    (alpha=1) still tags the teacher's entities; one trained on gold alone (alpha=0) tags none."""
    from marsad.model import Extractor
    from marsad.training.config import DistillConfig, load_config
    from marsad.training.distill import distill

    records = overfit_records()
    blank = [{**r, "entities": [], "relations": []} for r in records]
    texts = [r["text"] for r in records]
    teacher = entity_sets(Extractor.from_pretrained(trained_model, device="cpu", precision="fp32"), texts)
    agree = {}
    for alpha in (1.0, 0.0):
        (tmp_path / str(alpha)).mkdir()
        config = load_config(distill_yaml(tmp_path / str(alpha), trained_model, blank, records, alpha=alpha), cls=DistillConfig)
        distill(config, tmp_path / str(alpha) / "out", log=lambda *a, **k: None)
        got = entity_sets(Extractor.from_pretrained(tmp_path / str(alpha) / "out", device="cpu", precision="fp32"), texts)
        agree[alpha] = sum(len(a & b) for a, b in zip(teacher, got)) / sum(map(len, teacher))
    assert agree[0.0] == 0.0
    assert agree[1.0] > 0.5, agree


def test_soft_kl_is_zero_on_equal_logits_and_finite_with_masked_classes():
    from marsad.training.distill import soft_kl

    t = torch.randn(5, 6)
    assert soft_kl(t.clone(), t, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    lowest = torch.finfo(torch.float32).min
    masked = t.clone()
    masked[:, 3:] = lowest
    s = torch.randn(5, 6, requires_grad=True)
    loss = soft_kl(s.masked_fill(torch.arange(6) >= 3, lowest), masked, 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert loss.item() > 0


def test_config_errors_name_the_key(trained_model, tmp_path, cli):
    from marsad.model.errors import ConfigError
    from marsad.training.config import DistillConfig, load_config

    path = distill_yaml(tmp_path, trained_model, overfit_records()[:2])
    with pytest.raises(ConfigError, match="distill.alpha"):
        load_config(path, ["distill.alpha=1.5"], cls=DistillConfig)
    with pytest.raises(ConfigError, match="distill.teacher is not set"):
        load_config(path, ["distill.teacher=null"], cls=DistillConfig)
    with pytest.raises(ConfigError, match="did you mean 'distill.student.hidden_size'"):
        load_config(path, ["distill.student.hiden_size=64"], cls=DistillConfig)
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        load_config(path, ["distill.student.hidden_size=33"], cls=DistillConfig)
    code, _, err = cli("train", path, "-o", tmp_path / "x")
    assert code == 1 and "marsad distill" in err
    code, _, err = cli("distill", path, "-o", tmp_path / "y", f"distill.teacher={tmp_path / 'nope'}")
    assert code == 1 and "distill.teacher" in err and "nope" in err


def test_student_starts_from_the_teachers_layers_and_projected_embeddings(trained_model, tmp_path):
    from marsad.training.checkpoint import build_model, load_model
    from marsad.training.config import DistillConfig, load_config
    from marsad.training.distill import init_from_teacher, student_config

    teacher, _, _ = load_model(trained_model)
    config = load_config(distill_yaml(tmp_path, trained_model, overfit_records()[:2]), cls=DistillConfig)
    t = teacher.state_dict()
    # the teacher's width, 1 layer of 2: embeddings, layer 0, classifier and relation head copied
    config.distill.student.hidden_size, config.distill.student.intermediate_size = 64, 128
    config.distill.student.relation_hidden = None
    same, _, _ = build_model(student_config(config, teacher, trained_model), {"train": []}, log=lambda *a: None)
    copied = init_from_teacher(same, teacher)
    s = same.state_dict()
    for name in ("encoder.embeddings.word_embeddings.weight", "encoder.encoder.layer.0.output.dense.weight",
                 "classifier.weight", "relation_head.mlp.0.weight"):
        assert name in copied and torch.equal(s[name], t[name]), name
    # narrower: the word embeddings are the teacher's projected onto 32 principal directions
    config.distill.student.hidden_size, config.distill.student.intermediate_size = 32, 64
    narrow, _, _ = build_model(student_config(config, teacher, trained_model), {"train": []}, log=lambda *a: None)
    assert "encoder.embeddings.word_embeddings.weight" in init_from_teacher(narrow, teacher)
    words = narrow.state_dict()["encoder.embeddings.word_embeddings.weight"]
    assert words.shape == (teacher.config.vocab_size, 32) and words.std() > 0


def test_student_takes_the_teachers_lexicon(model_copy, tmp_path):
    import json

    from marsad.model import Extractor
    from marsad.model.lexicon import LEXICON_NAME, Lexicon
    from marsad.training.config import DistillConfig, load_config
    from marsad.training.distill import distill

    cfg = json.loads((model_copy / "config.json").read_text(encoding="utf-8"))
    cfg["marsad"]["lexicon"] = True
    (model_copy / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    Lexicon.from_records(overfit_records()[:2]).save(model_copy)  # not the student's training records
    (tmp_path / "d").mkdir()
    config = load_config(distill_yaml(tmp_path / "d", model_copy, overfit_records()), cls=DistillConfig)
    config.train.epochs = config.train.eval_from = 1
    distill(config, tmp_path / "student", log=lambda *a, **k: None)
    assert (tmp_path / "student" / LEXICON_NAME).read_bytes() == (model_copy / LEXICON_NAME).read_bytes()
    assert Extractor.from_pretrained(tmp_path / "student", device="cpu").decoder.lexicon is not None
