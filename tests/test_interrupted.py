"""Interrupted work: killed training and prediction resume without losing or repeating work.

The kill tests kill real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import (
    GOOD, SEED_JSONL, assert_no_pickles, check_record, evil_pickle, lines_of, one_line_error,
    overfit_records, read_jsonl, tiny_config, yaml_config,
)
from marsad.model import Extractor
from marsad.model.modeling import MarsadModel
from marsad.training.config import config_to_dict

QUIET = lambda *a, **k: None  # noqa: E731
SUBPROCESS_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                  "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _wait_for(predicate, proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended first (exit {proc.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the process")
        time.sleep(0.01)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


@pytest.mark.slow  # trains in a subprocess and kills it: in .ci/run's slow suite
def test_training_killed_resumes_from_last_checkpoint(cli, tmp_path):
    recs = overfit_records()
    config = tiny_config(tmp_path, recs * 4, dev=recs[:4], train__epochs=3)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config), allow_unicode=True), encoding="utf-8")
    out = tmp_path / "run"
    log = tmp_path / "train.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "marsad.training.cli", "train", str(path), "-o", str(out)],
                                stdout=f, stderr=subprocess.STDOUT, env=SUBPROCESS_ENV)
        try:
            _wait_for(lambda: (out / "checkpoint" / "COMPLETE").exists(), proc, log)
        finally:
            _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    # the last complete checkpoint (``checkpoint.old`` only if the kill fell inside a swap)
    ckpt = next(d for d in (out / "checkpoint", out / "checkpoint.old") if (d / "COMPLETE").is_file())
    state = json.loads((ckpt / "trainer_state.json").read_text())["state"]
    assert 1 <= state["epoch"] < 3, "killed before the end"
    assert not (out / "metrics.json").exists() and not (out / "model.safetensors").exists()
    assert_no_pickles(ckpt)
    # without --resume the folder is not overwritten
    code, _, err = cli("train", path, "-o", out)
    assert code == 1 and "use --resume to continue it" in one_line_error(err, "train")
    code, stdout, err = cli("train", path, "-o", out, "--resume")
    assert code == 0, err
    assert f"resuming from {ckpt}" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]  # each epoch logged once, also when the kill fell after a log line
    assert_no_pickles(out)
    [rec] = Extractor.from_pretrained(out, device="cpu").extract(GOOD)
    check_record(rec, GOOD)


class Killed(BaseException):
    """Stands for SIGKILL arriving in the middle of a save."""


def test_interrupted_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    import marsad.training.trainer as trainer

    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=3)
    out = tmp_path / "run"
    real = trainer.save_checkpoint
    saves = []

    def dies_in_second_save(*args):
        d = args[-1]  # (..., state, folder)
        saves.append(d)
        real(*args)
        if len(saves) == 2:  # leave half a checkpoint on disk, then the kill
            (d / "trainer_state.json").unlink()
            (d / "optimizer.safetensors").write_bytes(b"\x00" * 100)
            raise Killed

    monkeypatch.setattr(trainer, "save_checkpoint", dies_in_second_save)
    with pytest.raises(Killed):
        trainer.train(config, out, log=QUIET)
    monkeypatch.undo()
    assert (out / "checkpoint" / "COMPLETE").is_file()
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["state"]["epoch"] == 1
    assert (out / "checkpoint.tmp").is_dir() and not (out / "checkpoint.tmp" / "COMPLETE").exists()
    MarsadModel.from_pretrained(out / "checkpoint" / "model")  # the previous checkpoint is intact
    logs = []
    result = trainer.train(config, out, resume=True, log=lambda *a, **k: logs.append(" ".join(map(str, a))))
    assert f"resuming from {out / 'checkpoint'}" in logs
    assert result["epochs"] == 3
    assert not (out / "checkpoint.tmp").exists()
    Extractor.from_pretrained(out, device="cpu")


def test_kill_between_the_swap_renames_resumes_from_old(tmp_path):
    """Killed after ``checkpoint`` became ``checkpoint.old`` and before the new one was moved in:
    the last complete checkpoint is ``checkpoint.old``. Pickle files planted in it are never read."""
    from marsad.training.trainer import train

    config = tiny_config(tmp_path, overfit_records()[:4], train__epochs=2)
    out = tmp_path / "run"
    assert train(config, out, log=QUIET, stop_after_epochs=1) == {"stopped_after_epoch": 1}
    (out / "checkpoint").rename(out / "checkpoint.old")
    partial = out / "checkpoint.tmp"
    shutil.copytree(out / "checkpoint.old" / "model", partial / "model")
    (partial / "trainer_state.json").write_text('{"state": {"epo', encoding="utf-8")
    marker = tmp_path / "UNPICKLED"
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        (out / "checkpoint.old" / name).write_bytes(evil_pickle(marker))
    logs = []
    result = train(config, out, resume=True, log=lambda *a, **k: logs.append(" ".join(map(str, a))))
    assert f"resuming from {out / 'checkpoint.old'}" in logs
    assert result["epochs"] == 2
    assert (out / "checkpoint" / "COMPLETE").is_file() and not (out / "checkpoint.old").exists()
    assert not marker.exists()
    Extractor.from_pretrained(out, device="cpu")


def test_resume_without_a_complete_checkpoint(cli, tmp_path):
    path = yaml_config(tmp_path)
    out = tmp_path / "run"
    (out / "checkpoint.tmp").mkdir(parents=True)  # the first save was killed
    code, _, err = cli("train", path, "-o", out, "--resume")
    assert code == 1 and "no checkpoint to resume from; run without --resume" in one_line_error(err, "train")


def _predict_input(path: Path, n: int) -> list:
    """``n`` records of one seed sentence each (some bad); return the ids the output must hold, in order."""
    sents = [r["text"] for r in read_jsonl(SEED_JSONL)]
    lines, ids = [], []
    for i in range(n):
        rid = f"r{i:04d}"
        text = sents[i % len(sents)]
        if i % 97 == 5:
            lines.append(json.dumps({"id": rid, "text": i}))
        elif i % 97 == 50:
            lines.append('{"id": "%s", "text": "broken' % rid)
            rid = f"{path}:{i + 1}"
        else:
            lines.append(json.dumps({"id": rid, "text": text}, ensure_ascii=False))
        ids.append(rid)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def test_predict_killed_midway_resumes_each_record_once(cli, trained_model, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = _predict_input(src, 1100)  # results stream out a chunk (512 records) at a time: three chunks
    log = tmp_path / "predict.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "marsad.training.cli", "predict", "-m", str(trained_model),
                                 str(src), "-o", str(out), "-q", "--device", "cpu"],
                                stdout=f, stderr=subprocess.STDOUT, env=SUBPROCESS_ENV)
        try:
            _wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 1, proc, log)
        finally:
            _kill(proc)
    assert proc.returncode == -signal.SIGKILL
    done = out.read_bytes()
    done = done[: done.rfind(b"\n") + 1]
    n_done = done.count(b"\n")
    assert 0 < n_done < len(ids), "killed midway"
    with open(out, "ab") as f:  # a torn last line, as a kill inside a write leaves
        f.write('{"id": "r9999", "text": "قتل ثلا'.encode("utf-8"))
    code, _, err = cli("predict", "-m", trained_model, src, "-o", out, "-q", "--resume")
    assert code == 1 and "failed" in err  # the bad records
    assert f"resuming: {n_done} of {len(ids)} records already in {out}" in err
    rows = [json.loads(line) for line in lines_of(out)]
    assert [r["id"] for r in rows] == ids  # each record exactly once, in input order
    assert out.read_bytes().startswith(done)  # finished work is kept as it was
    assert [k for k, r in enumerate(rows) if r.get("error")] == [k for k in range(len(ids)) if k % 97 in (5, 50)]


@pytest.mark.parametrize("fmt", ["jsonl", "events"])
def test_predict_resume_equals_uninterrupted(cli, trained_model, tmp_path, fmt):
    src = tmp_path / "in.jsonl"
    _predict_input(src, 12)
    full, part = tmp_path / "full.out", tmp_path / "part.out"
    code, _, _ = cli("predict", "-m", trained_model, src, "-o", full, "-f", fmt, "-q")
    assert code == 1  # one bad record
    lines = [line + "\n" for line in lines_of(full)]
    cut = len(lines) // 2
    part.write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2], encoding="utf-8")
    code, _, err = cli("predict", "-m", trained_model, src, "-o", part, "-f", fmt, "-q", "--resume")
    assert code == 1 and "resuming:" in err

    def key(line):
        row = json.loads(line)
        return (row.get("id", row.get("record_id")), row.get("event"), row.get("text", row.get("sentence")), row.get("error"))

    assert [key(x) for x in lines_of(part)] == [key(x) for x in lines]
    # resuming a finished run adds nothing (events redo their last record, which may have been cut)
    code, _, err = cli("predict", "-m", trained_model, src, "-o", part, "-f", fmt, "-q", "--resume")
    assert [key(x) for x in lines_of(part)] == [key(x) for x in lines]
    assert f"resuming: {12 if fmt == 'jsonl' else 11} of 12" in err


def test_predict_resume_refuses_another_runs_output(cli, trained_model, tmp_path):
    src = tmp_path / "in.jsonl"
    _predict_input(src, 3)
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": "x", "text": "t", "entities": [], "relations": []}\n{"id": "y", "te', encoding="utf-8")
    before = other.read_bytes()
    for fmt in ("jsonl", "events"):
        code, _, err = cli("predict", "-m", trained_model, src, "-o", other, "-f", fmt, "-q", "--resume")
        assert code == 1 and "it is another run's output" in one_line_error(err, "predict")
        assert other.read_bytes() == before  # left exactly as it was
    notes = tmp_path / "notes.jsonl"
    notes.write_text("my notes, not predictions\n", encoding="utf-8")
    code, _, err = cli("predict", "-m", trained_model, src, "-o", notes, "-q", "--resume")
    assert code == 1 and f"{notes}:1: not a line marsad predict writes" in one_line_error(err, "predict")
    assert notes.read_text(encoding="utf-8") == "my notes, not predictions\n"
    code, _, err = cli("predict", "-m", trained_model, src, "--resume")
    assert code == 2 and "--resume needs -o OUT" in one_line_error(err, "predict")



def test_resume_drops_log_lines_of_epochs_it_will_run_again(tmp_path):
    from marsad.training.checkpoint import trim_metrics as _trim_metrics

    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)), encoding="utf-8")
    _trim_metrics(log, 2)  # the checkpoint holds epoch 2; epoch 3 was logged, then the kill came
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [1, 2]
    _trim_metrics(tmp_path / "absent.jsonl", 2)
