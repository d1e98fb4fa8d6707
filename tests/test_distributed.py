"""``accelerate launch`` with two CPU processes: sharded predict merged in input order, and the
training loop under DDP."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import overfit_records, read_jsonl

ACCELERATE = shutil.which("accelerate")
pytestmark = [pytest.mark.slow,  # two processes under accelerate launch: in .ci/run's slow suite
              pytest.mark.skipif(ACCELERATE is None, reason="accelerate CLI not installed")]


def launch(args, cwd, timeout=300):
    # --multi_gpu starts the processes through torchrun; without CUDA marsad forms a CPU (gloo) group
    cmd = [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "-m", "marsad.training.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def same_up_to_scores(a, b, tol):
    """Equal records, with scores allowed to differ by tol: sharding changes which sentences share a
    batch, so the padded lengths (and the float summation order) change with it."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(
            abs(a[k] - b[k]) <= tol if k == "score" else same_up_to_scores(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_up_to_scores(x, y, tol) for x, y in zip(a, b))
    return a == b


def test_predict_sharded_across_two_processes_keeps_input_order(trained_model, tmp_path):
    texts = [r["text"] for r in overfit_records()] * 3
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    src.write_text(src.read_text(encoding="utf-8") + "{broken\n", encoding="utf-8")
    # fp32: the reduced-precision paths may move a score (rarely a label) with the batch composition
    args = ["predict", "-m", str(trained_model), str(src), "--precision", "fp32", "-q"]
    proc = launch([*args, "-o", str(tmp_path / "out.jsonl")], tmp_path)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out[:-1]] == [f"r{i}" for i in range(len(texts))]
    assert "error" in out[-1]
    assert proc.returncode != 0  # one record failed
    single = subprocess.run([sys.executable, "-m", "marsad.training.cli", *args, "-o", str(tmp_path / "one.jsonl")],
                            capture_output=True, text=True)
    assert same_up_to_scores(read_jsonl(tmp_path / "one.jsonl"), out, tol=2e-4)
    assert single.returncode == proc.returncode
    assert not list(tmp_path.glob("out.jsonl.*"))  # parts merged and removed


def test_training_loop_runs_on_two_processes(tmp_path):
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in overfit_records()[:4]), encoding="utf-8")
    config = {"seed": 7, "model": {"encoder": "scratch", "max_length": 128, "relation_hidden": 32,
                                   "scratch": {"vocab_size": 600, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
              "data": {"train": ["train.jsonl"], "dev": ["train.jsonl"]}, "train": {"epochs": 2, "batch_size": 2, "lr": 3e-3}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = launch(["train", "c.yaml", "-o", "out"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("model saved to out") == 1
    lines = (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # one line per epoch, written once
    # 4 sentences, one row each (none is cut into windows at max_length 128) / (2 processes x batch 2): 1 step an epoch
    assert json.loads(lines[-1])["step"] == 2
    from marsad.model import Extractor

    Extractor.from_pretrained(tmp_path / "out", device="cpu").extract("قصف على حلب")
