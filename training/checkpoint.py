"""What a training run starts from and writes: :func:`build_model` (a new model for a config),
model folders (:func:`save_model`, :func:`load_model`), checkpoints in safetensors and JSON, never
a pickle (:func:`save_checkpoint`, :func:`load_training_state`, swapped in by :func:`atomic_dir`
so a kill never leaves a half-written one), and the hub model card (:func:`model_card`).
"""

from __future__ import annotations

import json
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

from marsad.model.configuration import MarsadSettings
from marsad.model.errors import ModelLoadError, TrainingError, WeightsError
from marsad.model.modeling import MarsadModel, load_encoder
from marsad.model.tokenizer_io import load_tokenizer

from .config import EVAL_SPLITS, TrainConfig, config_to_dict
from .evaluation import format_report

__all__ = ["build_model", "save_model", "load_model", "atomic_dir", "find_checkpoint", "save_checkpoint",
           "load_training_state", "trim_metrics", "model_card", "SPLIT_NAMES"]


# --- a new model -------------------------------------------------------------------------------
def build_model(config: TrainConfig, records: dict[str, list[dict]], log=print, shared_tokenizer: Path | None = None,
                gazetteer=None, lexicon=None):
    """``(model, tokenizer, gazetteer)`` for a new run of ``config``: the encoder it names (built
    from scratch with a vocabulary learnt from ``records["train"]``, or pretrained) under fresh
    heads. ``shared_tokenizer``: a folder where the first of several processes saves the learnt
    vocabulary and the others read it. ``gazetteer`` and ``lexicon``: loaded ones to use instead
    of ``model.gazetteer``'s and ``model.lexicon``'s (a distilled student takes its teacher's)."""
    m = config.model
    settings = MarsadSettings(max_length=m.max_length, stride=m.stride, relation_hidden=m.relation_hidden,
                              relation_before=m.relation_before)
    if m.encoder == "scratch":
        encoder, tokenizer = _scratch_encoder(config, records["train"], shared_tokenizer)
    else:
        encoder, tokenizer = _pretrained_encoder(m.encoder, m.dropout, log)
    settings.max_length = min(settings.max_length, getattr(encoder.config, "max_position_embeddings", settings.max_length))
    gazetteer = gazetteer if gazetteer is not None else _gazetteer(config, encoder, log)
    settings.gazetteer = gazetteer is not None
    if lexicon is None and m.lexicon:
        from marsad.model.lexicon import Lexicon

        lexicon = Lexicon.from_records(records["train"])
        log(f"lexicon: {len(lexicon)} words of the training text seen outside entities, {len(lexicon.names)} names")
    settings.lexicon = lexicon is not None
    model = MarsadModel.from_encoder(encoder, settings)
    model.lexicon = lexicon
    return model, tokenizer, gazetteer


def _scratch_encoder(config: TrainConfig, train_records: list[dict], shared_tokenizer: Path | None):
    """A randomly initialised BERT and its tokenizer: ``model.scratch.tokenizer``, the shared
    one, or a WordPiece vocabulary learnt from the training texts."""
    from .scratch import build_scratch_encoder, train_wordpiece

    spec = config.model.scratch
    reuse = config.resolve(spec.tokenizer) if spec.tokenizer else None
    if reuse is None and shared_tokenizer is not None and (shared_tokenizer / "tokenizer.json").is_file():
        reuse = shared_tokenizer
    if reuse is not None:
        tokenizer = load_tokenizer(reuse)
    else:
        tokenizer = train_wordpiece([r["text"] for r in train_records], spec.vocab_size, spec.clitics)
        tokenizer.model_max_length = spec.max_position
        if shared_tokenizer is not None:
            tokenizer.save_pretrained(str(shared_tokenizer))
    return build_scratch_encoder(spec, tokenizer, config.model.dropout), tokenizer


def _pretrained_encoder(name: str, dropout: float, log):
    """A pretrained encoder (hub id or local folder) and its tokenizer, with ``dropout`` set."""
    try:
        tokenizer = load_tokenizer(name)
        encoder = load_encoder(name, log=log)
    except WeightsError as e:
        raise TrainingError(f"cannot load the encoder {name!r}: {e}") from None
    except (ModelLoadError, OSError, ValueError) as e:
        raise TrainingError(
            f"cannot load the encoder {name!r}: {str(e).splitlines()[0]}. Give a local folder with "
            "config.json, model.safetensors (or pytorch_model.bin) and vocab.txt or tokenizer.json, "
            "or a hub id on a machine that can reach the hub"
        ) from None
    for attr in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(encoder.config, attr):
            setattr(encoder.config, attr, dropout)
    return encoder, tokenizer


def _gazetteer(config: TrainConfig, encoder, log):
    """The place-name gazetteer of ``model.gazetteer``; None (with a warning) when its file is
    missing or the encoder has no second token type to carry it."""
    if not config.model.gazetteer:
        return None
    from marsad.model.gazetteer import Gazetteer

    path = config.resolve(config.model.gazetteer)
    if not path.is_file() or getattr(encoder.config, "type_vocab_size", 0) < 2:
        warnings.warn(f"model.gazetteer: {path} is missing (or the encoder has no second token type); training without it")
        return None
    gazetteer = Gazetteer.from_csv(path)
    log(f"gazetteer: {len(gazetteer)} place names from {path}")
    return gazetteer


# --- model folders and checkpoints -------------------------------------------------------------
def save_model(model: MarsadModel, tokenizer, gazetteer, directory: Path) -> None:
    """Weights, config, tokenizer and gazetteer: a folder :func:`load_model` and
    ``Extractor.from_pretrained`` read."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(str(directory))
    if gazetteer is not None:
        gazetteer.save(directory)


def load_model(directory: Path):
    """``(model, tokenizer, gazetteer)`` of a folder written by :func:`save_model`."""
    model = MarsadModel.from_pretrained(directory)
    gazetteer = None
    if model.settings.gazetteer:
        from marsad.model.gazetteer import Gazetteer

        gazetteer = Gazetteer.load(directory)
    return model, load_tokenizer(directory, model), gazetteer


def atomic_dir(target: Path, write) -> None:
    """Write a folder beside ``target`` and swap it in, so ``target`` is always complete."""
    tmp = target.with_name(target.name + ".tmp")
    old = target.with_name(target.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    (tmp / "COMPLETE").write_text("ok")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(out: Path) -> Path | None:
    """The last complete checkpoint (``checkpoint``, or ``checkpoint.old`` if a swap was cut short)."""
    for name in ("checkpoint", "checkpoint.old"):
        d = out / name
        if (d / "COMPLETE").is_file():
            return d
    return None


def save_checkpoint(model, tokenizer, gazetteer, optimizer, scheduler, state: dict, d: Path) -> None:
    """Everything to continue: weights, optimizer, schedule, RNG, counters. Tensors in
    safetensors, the rest in JSON: a checkpoint never needs unpickling."""
    from safetensors.torch import save_file

    save_model(model, tokenizer, gazetteer, d / "model")
    opt = optimizer.state_dict()
    tensors, meta = {}, {}
    for pid, s in opt["state"].items():
        for k, v in s.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta[f"{pid}.{k}"] = v
    save_file(tensors or {"_": torch.zeros(1)}, str(d / "optimizer.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda{i}"] = s
    save_file(rng, str(d / "rng.safetensors"))
    np_state = np.random.get_state()
    doc = {
        "optimizer": {"param_groups": opt["param_groups"], "scalars": meta},
        "scheduler": scheduler.state_dict(),
        "python_random": _jsonable(random.getstate()),
        "numpy_random": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "state": state,
    }
    (d / "trainer_state.json").write_text(json.dumps(doc), encoding="utf-8")


def trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop ``metrics.jsonl`` lines of epochs after ``last_epoch`` (they will be run again)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [line for line in lines if not line.strip() or json.loads(line).get("epoch", 0) <= last_epoch]
    if len(keep) != len(lines):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        tmp.replace(path)


def load_training_state(d: Path, optimizer, scheduler) -> dict:
    """Restore the optimizer, schedule and random generators of checkpoint ``d``; return the
    run's counters (epoch, step, best score...)."""
    from safetensors.torch import load_file

    doc = json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(d / "optimizer.safetensors"))
    opt_state: dict = {}
    for key, v in list(tensors.items()) + list(doc["optimizer"]["scalars"].items()):
        if key == "_":
            continue
        pid, _, k = key.partition(".")
        opt_state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": doc["optimizer"]["param_groups"]})
    scheduler.load_state_dict(doc["scheduler"])
    rng = load_file(str(d / "rng.safetensors"))
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        states = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if states:
            torch.cuda.set_rng_state_all(states)
    random.setstate(_tuplify(doc["python_random"]))
    n = doc["numpy_random"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    return doc["state"]


def _jsonable(x):
    return [_jsonable(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


# --- the model card ------------------------------------------------------------------------------
SPLIT_NAMES = {"dev": "written corpus, dev", "test": "written corpus, test",
               "real_dev": "real text, dev", "real_test": "real text, test"}


def _card_metadata(config: TrainConfig, result: dict, reports: dict) -> dict:
    """The model card's YAML front matter, in the Hugging Face hub's schema (``model-index``
    results from the seqeval reports), so ``huggingface_hub.ModelCard`` reads it."""
    train_files = [Path(f) for f in config.data.train]
    datasets = list(dict.fromkeys(f"marsad/{f.parent.name if f.parent.name != 'data' else f.stem}" for f in train_files))
    # annotations derived from ANERcorp (data/real/) are CC BY-SA 4.0 (see data/real/README.md)
    share_alike = any(f.parent.name == "real" for f in train_files)
    meta = {"language": ["ar"], "license": "cc-by-sa-4.0" if share_alike else "apache-2.0",
            "library_name": "transformers", "pipeline_tag": "token-classification",
            "tags": ["token-classification", "ner", "relation-extraction", "arabic", "conflict-news", "marsad"],
            "datasets": datasets}
    encoder = str(config.model.encoder)
    if encoder != "scratch" and not Path(encoder).exists() and encoder.count("/") == 1:
        meta["base_model"] = encoder  # a hub id (a local folder is no hub reference)
    results = []
    for split, rep in reports.items():
        ents = rep["entities"].get("micro avg", {})
        rel = rep["relations_end_to_end"]["micro avg"]
        name = SPLIT_NAMES.get(split, split)
        dataset = {"name": f"marsad {name}", "type": "marsad/real" if split.startswith("real") else "marsad/corpus",
                   "split": split.removeprefix("real_")}
        results.append({"task": {"type": "token-classification", "name": "Named entity recognition"}, "dataset": dataset,
                        "metrics": [{"type": k, "value": round(float(ents.get(f"{k}-score" if k == "f1" else k, 0.0)), 4),
                                     "name": f"entity {k} (seqeval strict IOB2, micro)"} for k in ("precision", "recall", "f1")]})
        results.append({"task": {"type": "relation-extraction", "name": "Relation extraction (end-to-end)"}, "dataset": dataset,
                        "metrics": [{"type": "f1", "value": round(float(rel["f1-score"]), 4), "name": "relation F1 (end-to-end, micro)"}]})
    if results:
        meta["model-index"] = [{"name": f"marsad-{Path(str(config.model.encoder)).name}", "results": results}]
    return meta


def _distill_line(d) -> str:
    """The model card's line for a student trained by ``marsad distill``."""
    s = d.student
    return (f"- distilled from the teacher `{d.teacher}` (temperature {d.temperature}, soft-loss weight {d.alpha}): "
            f"a {s.num_layers}-layer student of hidden size {s.hidden_size} on the teacher's tokenizer")


def model_card(config: TrainConfig, result: dict, reports: dict) -> str:
    """The trained model's ``README.md``: hub front matter, data, scores, reports, use, config."""
    front = yaml.safe_dump(_card_metadata(config, result, reports), allow_unicode=True, sort_keys=False)
    lines = [
        "---", front.rstrip(), "---", "",
        "# marsad conflict-news extractor", "",
        "Tags ACTOR / LOCATION / CASUALTY spans (IOB2) and the relations between them (CONTROLS, ATTACKS, "
        "WITHDRAWS_FROM, CASUALTY_IN, CAUSED_BY) in Arabic news, following the marsad annotation spec.", "",
        f"- encoder: `{config.model.encoder}`",
        *([_distill_line(config.distill)] if getattr(config, "distill", None) is not None else []),
        f"- training data: {', '.join(f'`{f}`' for f in config.data.train)}; the annotations derived from ANERcorp "
        "(`data/real/`) are CC BY-SA 4.0, hence the licence of a model trained on them" if any(Path(f).parent.name == "real" for f in config.data.train)
        else f"- training data: {', '.join(f'`{f}`' for f in config.data.train)}",
        f"- best epoch: {result['best_epoch']} of {result['epochs']}, {result['train_sentences']} training sentences, "
        f"{result['train_minutes']} minutes", "",
        "## Scores", "", "| split | entity F1 | relation F1 (end-to-end) | relation F1 (gold entities) |", "|---|---|---|---|",
    ]
    if "warning" in result:
        lines[lines.index("## Scores")-1:lines.index("## Scores")-1] = ["", f"> **Warning**: {result['warning']}."]
    for split in EVAL_SPLITS:
        if split in result:
            h = result[split]
            lines.append(f"| {split} | {h['entity_f1']:.4f} | {h['relation_f1']:.4f} | {h['relation_f1_gold_entities']:.4f} |")
    for split, rep in reports.items():
        lines += ["", f"### {split}", "", "```", format_report(rep), "```"]
    lines += [
        "", "## Use", "", "```python", "from marsad.model import Extractor", "",
        'ex = Extractor.from_pretrained("path/to/this/folder")', 'ex.extract(["قتل ثلاثة مدنيين في قصف على حلب."])', "```", "",
        "The folder is also a standard token-classification checkpoint: "
        '`transformers.pipeline("token-classification", model=DIR)` tags entities (relations need marsad).', "",
        "## Training config", "", "```yaml", yaml.safe_dump(config_to_dict(config), allow_unicode=True, sort_keys=False).rstrip(), "```", "",
    ]
    return "\n".join(lines)
