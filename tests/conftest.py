"""Shared fixtures: tiny models trained once per session on a few seed sentences.

Every model here is real (a from-scratch BERT with its own WordPiece vocabulary, trained by the
same loop as the shipped configs); tests copy the saved folder when they need to change it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEED_TXT = ROOT / "seeds" / "000_e7278219d2bbbc70.txt"
SEED_JSONL = ROOT / "data" / "seed.jsonl"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(records, path):
    Path(path).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def tiny_config(tmp: Path, train, dev=None, shared_tokenizer=False, **overrides):
    """A small from-scratch config over the given records (written as JSONL into ``tmp``)."""
    from marsad.training.config import _build, TrainConfig

    write_jsonl(train, tmp / "train.jsonl")
    write_jsonl(dev if dev is not None else train, tmp / "dev.jsonl")
    data = {
        "seed": 7,
        "model": {"encoder": "scratch", "max_length": 128, "relation_hidden": 64, "dropout": 0.0,
                  "scratch": {"vocab_size": 800, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}},
        "data": {"train": [str(tmp / "train.jsonl")], "dev": [str(tmp / "dev.jsonl")]},
        "train": {"epochs": 60, "batch_size": 8, "lr": 4e-3, "warmup_ratio": 0.0, "patience": 100},
    }
    for key, value in overrides.items():
        node = data
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    if shared_tokenizer:  # one vocabulary learnt once for runs to be compared (saves time; tests/test_reproducible.py shares none)
        data["model"]["scratch"]["tokenizer"] = str(_tokenizer_for(train, tmp.parent / "tokenizer"))
    config = _build(TrainConfig, data, "")
    config.validate()
    return config


def _tokenizer_for(records, folder: Path) -> Path:
    if not (folder / "tokenizer.json").exists():
        from marsad.training.scratch import train_wordpiece

        train_wordpiece([r["text"] for r in records], 800).save_pretrained(str(folder))
    return folder


def overfit_records():
    """Seed sentences with every entity type and relation type, short enough to learn fast."""
    records = read_jsonl(SEED_JSONL)
    keep = [r for r in records if 0 < len(r["entities"]) and len(r["text"]) < 260][:8]
    return keep


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A tiny model overfit on a few seed sentences (saved folder)."""
    from marsad.training.trainer import train

    tmp = tmp_path_factory.mktemp("overfit")
    config = tiny_config(tmp, overfit_records())
    train(config, tmp / "model", log=lambda *a, **k: None)
    return tmp / "model"


@pytest.fixture
def model_copy(trained_model, tmp_path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(trained_model, dst, ignore=shutil.ignore_patterns("checkpoint*", "best*"))
    return dst


@pytest.fixture(scope="session")
def extractor(trained_model):
    from marsad.model import Extractor

    return Extractor.from_pretrained(trained_model, device="cpu", precision="fp32")


@pytest.fixture
def one_torch_thread():
    """For tests that check behaviour, not speed: one intra-op thread keeps them quick on a busy
    machine (several torch threads spin-waiting for a shared core cost many times the work)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*argv, stdin=None) -> (exit code, stdout, stderr)``: the ``marsad`` command run
    in-process through ``marsad.training.cli.main``; it never prints a traceback."""
    import io

    from marsad.training.cli import main

    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")  # main() sets it; keep it from leaking

    def run(*argv, stdin: bytes | None = None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err and "Traceback" not in out, err
        return code, out, err

    return run


# --- helpers shared by the robustness tests ---------------------------------------------------
def lines_of(path: Path) -> list[str]:
    """The lines of a JSONL output file: split at "\\n" only, as a text may hold U+2028 and friends."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text.split("\n")[:-1]


def one_line_error(err: str, command: str) -> str:
    """The error message of a failed command: exactly one line, ``marsad CMD: error: ...``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"marsad {command}: error: "), err
    return lines[0]


def assert_no_pickles(folder: Path) -> None:
    """No pickle (or torch.save zip) anywhere: loading the folder never needs unpickling."""
    for p in folder.rglob("*"):
        if p.is_file():
            head = p.read_bytes()[:2]
            assert p.suffix not in (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"), p
            assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), p
            assert head != b"PK", p


def check_record(rec: dict, text: str) -> None:
    """A valid extraction of ``text``: entities slice it on token boundaries, no overlaps,
    relations index the entities."""
    from marsad.model.text import tokenize

    assert rec["text"] == text and "error" not in rec
    tokens = tokenize(text)
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    prev = 0
    for e in rec["entities"]:
        assert prev <= e["start"] < e["end"] <= len(text), rec["entities"]
        assert e["start"] in starts and e["end"] in ends
        assert text[e["start"]:e["end"]] == e["text"]
        assert e["label"] in ("ACTOR", "LOCATION", "CASUALTY")
        prev = e["end"]
    for r in rec["relations"]:
        assert 0 <= r["head"] < len(rec["entities"]) and 0 <= r["tail"] < len(rec["entities"]) and r["head"] != r["tail"]




GOOD = "قتل ثلاثة مدنيين في قصف على حلب."


def yaml_config(tmp: Path, **overrides) -> Path:
    import yaml

    from marsad.training.config import config_to_dict

    config = tiny_config(tmp, overfit_records()[:4], **overrides)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(config), allow_unicode=True), encoding="utf-8")
    return path


def evil_pickle(marker: Path) -> bytes:
    """A pickle that creates ``marker`` when loaded."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    return pickle.dumps({"bert.embeddings.word_embeddings.weight": Evil()})


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by selenium (Debian's ``chromium`` and ``chromium-driver``, which
    ``.ci/run`` installs); the test skips with the reason where no browser can be started."""
    import shutil as _shutil

    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = _shutil.which("chromium") or _shutil.which("chromium-browser") or _shutil.which("google-chrome")
    driver = _shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("no Chromium and chromedriver on this machine (apt-get install -y chromium chromium-driver)")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1024"):
        options.add_argument(arg)
    try:
        drv = webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as e:
        pytest.skip(f"Chromium could not be started: {str(e).splitlines()[0]}")
    yield drv
    drv.quit()
