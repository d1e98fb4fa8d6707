"""The overfit-and-round-trip test, gradient accumulation and resume (the training issue, 9)."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from conftest import SEED_JSONL, overfit_records, read_jsonl, tiny_config
from marsad.model import Extractor
from marsad.training.evaluation import evaluate, headline
from marsad.training.trainer import train


def test_overfit_save_reload_identical_and_perfect(trained_model):
    gold = overfit_records()
    ex = Extractor.from_pretrained(trained_model, device="cpu", precision="fp32")
    result = evaluate(ex, gold)
    head = headline(result)
    assert head["entity_f1"] == 1.0, result["entity_report"]
    assert head["relation_f1"] == 1.0, result["relations_end_to_end"]
    # reload: identical predictions
    again = Extractor.from_pretrained(trained_model, device="cpu", precision="fp32")
    texts = [g["text"] for g in gold]
    assert ex.extract(texts) == again.extract(texts)
    metrics = json.loads((trained_model / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["train_loss"] < 0.05


def test_saved_folder_contents(trained_model):
    names = {p.name for p in trained_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "training_config.yaml", "metrics.json", "README.md"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    config = json.loads((trained_model / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"]["0"] == "O"
    assert config["marsad"]["relation_labels"][0] == "NONE"
    card = (trained_model / "README.md").read_text()
    assert "entity F1" in card and "seqeval" in card


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def _identical_shape_records():
    """Four sentences of the same shape: equal token and pair counts per micro-batch, so the
    mean loss of a batch of four equals the mean of two batches of two."""
    names = [("الجيش", "حلب"), ("الحرس", "حمص"), ("الفصائل", "إدلب"), ("الشرطة", "درعا")]
    recs = []
    for i, (a, loc) in enumerate(names):
        text = f"قصف {a} مدينة {loc} ."
        s1 = text.index(a)
        s2 = text.index(loc)
        recs.append({"id": f"s{i}", "text": text,
                     "entities": [{"start": s1, "end": s1 + len(a), "label": "ACTOR"},
                                  {"start": s2, "end": s2 + len(loc), "label": "LOCATION"}],
                     "relations": [{"head": 0, "tail": 1, "label": "ATTACKS"}]})
    return recs


def _grads_at_steps(config, out):
    """Train and record, at every optimizer step, the gradients the optimizer is handed."""
    steps = []

    def hook(optimizer, args, kwargs):
        steps.append([p.grad.detach().clone() for g in optimizer.param_groups for p in g["params"] if p.grad is not None])

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(hook)
    try:
        train(config, out, log=lambda *a, **k: None)
    finally:
        handle.remove()
    return steps


def test_gradient_accumulation_equals_large_batch(tmp_path):
    recs = _identical_shape_records()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    big = tiny_config(tmp_path / "a", recs, train__epochs=1, train__batch_size=4, train__grad_accum=1, shared_tokenizer=True)
    small = tiny_config(tmp_path / "b", recs, train__epochs=1, train__batch_size=2, train__grad_accum=2, shared_tokenizer=True)
    ga = _grads_at_steps(big, tmp_path / "a" / "out")
    gb = _grads_at_steps(small, tmp_path / "b" / "out")
    assert len(ga) == len(gb) == 1  # one optimizer step each
    assert len(ga[0]) == len(gb[0]) > 10
    # CPU kernels (embedding and gather backward) sum in a thread-dependent order, so two identical
    # runs already differ by ~1e-4 relative; an accumulation bug (a missing micro-batch, an
    # undivided loss) moves the gradient by tens of percent.
    for x, y in zip(ga[0], gb[0]):
        assert (x - y).norm() <= 1e-2 * x.norm() + 1e-9


def test_accumulation_off_by_one_would_show(tmp_path):
    """Accumulating 2 with 4 micro-batches makes exactly 2 optimizer steps (not 3)."""
    recs = _identical_shape_records() * 2
    (tmp_path / "a").mkdir()
    cfg = tiny_config(tmp_path / "a", recs, train__epochs=1, train__batch_size=2, train__grad_accum=2)
    train(cfg, tmp_path / "a" / "out", log=lambda *a, **k: None)
    entry = json.loads((tmp_path / "a" / "out" / "metrics.jsonl").read_text().splitlines()[0])
    assert entry["step"] == 2


def test_resume_equals_uninterrupted(tmp_path):
    recs = overfit_records()[:4]
    quiet = lambda *a, **k: None  # noqa: E731
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = tiny_config(tmp_path / "a", recs, train__epochs=3, model__dropout=0.1, train__lr=1e-3, shared_tokenizer=True)
    part = tiny_config(tmp_path / "b", recs, train__epochs=3, model__dropout=0.1, train__lr=1e-3, shared_tokenizer=True)
    train(full, tmp_path / "a" / "out", log=quiet)
    stopped = train(part, tmp_path / "b" / "out", log=quiet, stop_after_epochs=1)
    assert stopped == {"stopped_after_epoch": 1}
    with pytest.raises(Exception, match="--resume"):
        train(part, tmp_path / "b" / "out", log=quiet)
    train(part, tmp_path / "b" / "out", log=quiet, resume=True)
    wa, wb = _weights(tmp_path / "a" / "out"), _weights(tmp_path / "b" / "out")
    assert wa.keys() == wb.keys()
    for k in wa:  # equal up to the CPU kernels' summation-order noise (see the accumulation test)
        assert (wa[k] - wb[k]).norm() <= 1e-3 * wa[k].norm() + 1e-6, k
    la = [json.loads(x)["train_loss"] for x in (tmp_path / "a" / "out" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["train_loss"] for x in (tmp_path / "b" / "out" / "metrics.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-3)


def test_deterministic_option_holds_for_the_run_only(tmp_path, monkeypatch):
    """``train.deterministic`` turns torch's deterministic algorithms on while the run trains and
    restores the setting afterwards; without it the run leaves them as they were."""
    import torch

    from marsad.training import trainer

    seen = []
    real_epoch = trainer._Run.epoch

    def epoch(self):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real_epoch(self)

    monkeypatch.setattr(trainer._Run, "epoch", epoch)
    recs = overfit_records()[:3]
    for flag in (True, False):
        (tmp_path / str(flag)).mkdir()
        cfg = tiny_config(tmp_path / str(flag), recs, train__epochs=1, train__deterministic=flag, shared_tokenizer=True)
        train(cfg, tmp_path / f"run-{flag}", log=lambda *a: None)
        assert not torch.are_deterministic_algorithms_enabled()
    assert seen == [True, False]


def test_records_helper_is_seed_based():
    recs = overfit_records()
    seed = {r["id"]: r for r in read_jsonl(SEED_JSONL)}
    assert recs and all(r == seed[r["id"]] for r in recs)  # whole seed records, unchanged
    labels = {e["label"] for r in recs for e in r["entities"]}
    assert labels == {"ACTOR", "LOCATION", "CASUALTY"}
