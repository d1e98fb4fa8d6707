"""Reproducible training: the same config and seed give the same bytes, and a run killed with
SIGKILL and resumed ends with the weights of an uninterrupted run. Every run is its own
``marsad train`` process with its own output folder: nothing is shared but the config."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from conftest import ROOT, read_jsonl, write_jsonl
from marsad.training.scratch import learn_wordpiece_vocab

CORPUS = ROOT / "data" / "corpus" / "train.jsonl"


def _sha(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repro")
    records = read_jsonl(CORPUS)[:160]
    write_jsonl(records[:120], tmp / "train.jsonl")
    write_jsonl(records[120:], tmp / "dev.jsonl")
    (tmp / "config.yaml").write_text(f"""
seed: 5
model:
  encoder: scratch
  scratch: {{vocab_size: 900, hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64}}
  max_length: 96
  relation_hidden: 32
data: {{train: [{tmp / 'train.jsonl'}], dev: [{tmp / 'dev.jsonl'}]}}
augment: {{enabled: true, copies: 1, share: 0.5, noise: 0.5}}
train: {{epochs: 3, batch_size: 16, lr: 2.0e-3, patience: 10}}
""", encoding="utf-8")
    return tmp / "config.yaml"


def _train(config, out, *extra, wait=True):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "marsad.training.cli", "train", str(config), "-o", str(out), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if wait:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-2000:]
    return proc


def _metrics(folder):
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_runs(config, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    for name in ("a", "b"):
        _train(config, tmp / name)
    return tmp / "a", tmp / "b"


@pytest.mark.slow  # marsad train in subprocesses: in .ci/run's slow suite
def test_two_runs_give_identical_bytes(two_runs):
    a, b = two_runs
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert _sha(a / name) == _sha(b / name), name
    assert _metrics(a) == _metrics(b)


@pytest.mark.slow  # marsad train in subprocesses: in .ci/run's slow suite
def test_sigkill_and_resume_equal_an_uninterrupted_run(config, two_runs, tmp_path):
    out = tmp_path / "killed"
    proc = _train(config, out, wait=False)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint" / "COMPLETE").is_file():  # the first epoch's checkpoint is written
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _train(config, out, "--resume")
    a, _ = two_runs
    assert _sha(out / "model.safetensors") == _sha(a / "model.safetensors")
    assert _sha(out / "tokenizer.json") == _sha(a / "tokenizer.json")
    assert _metrics(out) == _metrics(a)


def test_vocabulary_is_learnt_the_same_way_in_another_process(tmp_path):
    code = ("import sys, json; from marsad.training.scratch import train_wordpiece; "
            f"texts = [json.loads(l)['text'] for l in open({str(CORPUS)!r}, encoding='utf-8')][:400]; "
            "train_wordpiece(texts, 3000).save_pretrained(sys.argv[1])")
    for name in ("x", "y"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True)
    assert _sha(tmp_path / "x" / "tokenizer.json") == _sha(tmp_path / "y" / "tokenizer.json")


def test_ties_are_broken_by_the_pair_not_by_chance():
    # (a, ##b) and (c, ##d) are equally frequent: the smaller pair is merged first, every time
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    counts = Counter({"cd": 3, "ab": 3})
    assert learn_wordpiece_vocab(counts, 10, specials) == specials + ["##b", "##d", "a", "c", "ab"]
    assert learn_wordpiece_vocab(counts, 11, specials)[-2:] == ["ab", "cd"]
    assert learn_wordpiece_vocab(Counter({"ab": 3, "cd": 3}), 11, specials) == learn_wordpiece_vocab(counts, 11, specials)


def test_merges_match_the_frequencies():
    counts = Counter({"غزة": 50, "بغزة": 20, "غزال": 2})
    vocab = learn_wordpiece_vocab(counts, vocab_size=100, min_frequency=2)
    assert "غزة" in vocab and "بغزة" in vocab and "##زة" in vocab
    assert len(vocab) == len(set(vocab))
