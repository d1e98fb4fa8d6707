"""The training loop: seed -> data -> model -> optimizer -> loop -> eval -> checkpoint.

One readable ``accelerate`` loop (mixed precision, gradient accumulation, clipping, linear
warm-up and decay). Every epoch ends with a dev evaluation, a line in ``metrics.jsonl`` and an
atomic checkpoint (``checkpoint/``, written beside and swapped in, so a kill never corrupts the
previous one); the best epoch is kept in ``best/`` and becomes the output model at the end.
``accelerate launch -m marsad.training.cli train ...`` runs the same loop on several processes.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from marsad.model.configuration import MarsadSettings
from marsad.model.extractor import Extractor
from marsad.model.modeling import MarsadModel, load_encoder
from marsad.model.weights import WeightsError

from .augment import augment_records, load_city_names
from .config import EVAL_SPLITS, TrainConfig, check_data_files, config_to_dict
from .data import build_dataset, collate, load_records
from .evaluation import evaluate, format_report, headline
from .noise import noisy_records

__all__ = ["train", "TrainingError"]


from marsad.model.errors import TrainingError  # noqa: E402


class EpochSampler(torch.utils.data.Sampler):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order.

    With ``lengths`` it buckets: the shuffled rows are cut into pools of ``pool`` batches, each
    pool is sorted by length and cut into batches, and the batches are shuffled. Batches then hold
    rows of similar length (little padding), while every epoch still mixes the whole data.
    """

    def __init__(self, n: int, seed: int, lengths: list[int] | None = None, batch_size: int = 1, pool: int = 50):
        self.n, self.seed, self.epoch = n, seed, 0
        self.lengths, self.batch_size, self.pool = lengths, batch_size, pool

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        if self.lengths is None:
            return iter(order)
        size = self.batch_size * self.pool
        batches = []
        for k in range(0, self.n, size):
            chunk = sorted(order[k : k + size], key=lambda i: self.lengths[i])
            batches += [chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        # a short last batch stays last, so every other batch keeps its full size
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) != self.batch_size]
        perm = torch.randperm(len(full), generator=g).tolist()
        return iter([i for j in perm for i in full[j]] + [i for b in short for i in b])

    def __len__(self):
        return self.n


def train(config: TrainConfig, output_dir: str | Path, resume: bool = False, log=print,
          stop_after_epochs: int | None = None) -> dict:
    """Train a model as ``config`` says, into ``output_dir``; return the final metrics.

    ``stop_after_epochs`` ends the run after that many epochs in *this* call, as if it had been
    killed right after a checkpoint (used to test ``resume``).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    out = Path(output_dir)
    t = config.train
    # a batch without entity pairs leaves the relation head unused: DDP must allow that
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # cpu=True without CUDA: under `accelerate launch --multi_gpu` or torchrun on a CPU machine the
    # processes then form a gloo group instead of each training alone
    accelerator = Accelerator(mixed_precision=t.mixed_precision, gradient_accumulation_steps=t.grad_accum,
                              kwargs_handlers=[ddp], cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    say = log if main else (lambda *a, **k: None)
    ckpt = _find_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise TrainingError(f"{out}: no checkpoint to resume from; run without --resume to start afresh")
    if not resume and (out / "checkpoint").exists():
        raise TrainingError(f"{out} already holds a training run; use --resume to continue it, or another --output-dir")
    set_seed(config.seed)

    # --- data ------------------------------------------------------------------------------
    check_data_files(config)
    files = config.data_files()
    records = {split: load_records(paths) for split, paths in files.items() if paths}
    train_records = list(records["train"])
    if config.augment.enabled and config.augment.copies > 0:
        a = config.augment
        cities = load_city_names(config.resolve(a.cities))
        extra = augment_records(train_records, a.copies, a.p_replace, config.seed, cities, a.share)
        if a.noise > 0:
            extra = noisy_records(extra, a.noise, config.seed, a.noise_ops)
        say(f"augmentation: {len(extra)} sentences with swapped mentions ({len(cities)} city names)"
            + (f", {a.noise:.0%} of them with real-text noise" if a.noise > 0 else ""))
        train_records += extra

    # --- model and tokenizer ---------------------------------------------------------------
    if ckpt is not None:
        model, tokenizer, gazetteer = _load_model(ckpt / "model")
        say(f"resuming from {ckpt}")
    else:
        # several processes use one vocabulary: the main process learns it first and the others
        # read it (the same texts would give the same vocabulary; this learns it once)
        with accelerator.main_process_first():
            model, tokenizer, gazetteer = _new_model(config, records, say,
                                                     shared_tokenizer=out / ".tokenizer" if accelerator.num_processes > 1 else None)
    settings: MarsadSettings = model.settings
    say(f"encoder: {config.model.encoder} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")

    ds_train = build_dataset(train_records, tokenizer, settings, gazetteer)
    sampler = EpochSampler(len(ds_train), config.seed, [len(x) for x in ds_train["input_ids"]], t.batch_size)
    loader = torch.utils.data.DataLoader(ds_train, batch_size=t.batch_size, sampler=sampler, num_workers=t.num_workers,
                                         collate_fn=lambda rows: collate(rows, tokenizer.pad_token_id or 0))

    # --- optimizer and schedule ------------------------------------------------------------
    optimizer = torch.optim.AdamW(_param_groups(model, t.lr, t.head_lr or t.lr, t.weight_decay), lr=t.lr)
    steps_per_epoch = math.ceil(len(loader) / t.grad_accum)
    total = steps_per_epoch * t.epochs
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(t.warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    state = {"epoch": 0, "global_step": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "elapsed": 0.0}
    if ckpt is not None:
        state = _load_training_state(ckpt, optimizer, scheduler)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if ckpt is not None:  # a kill after the log line but before the checkpoint: log that epoch once
            _trim_metrics(out / "metrics.jsonl", state["epoch"])
        (out / "training_config.yaml").write_text(yaml.safe_dump(config_to_dict(config), allow_unicode=True, sort_keys=False), encoding="utf-8")

    # --- the loop --------------------------------------------------------------------------
    start = time.monotonic() - state["elapsed"]
    epochs_here = 0
    from tqdm.auto import tqdm

    while state["epoch"] < t.epochs:
        epoch = state["epoch"]
        _set_epoch(loader, sampler, epoch)
        model.train()
        running, seen = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{t.epochs}", disable=None if main else True, leave=False, unit="batch")
        timed_out = False
        for batch in bar:
            if t.token_dropout > 0:
                batch["input_ids"] = _mask_tokens(batch["input_ids"], batch["attention_mask"], t.token_dropout, tokenizer)
            with accelerator.accumulate(model):
                loss = model(**batch, relation_weight=t.relation_weight)["loss"]
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                state["global_step"] += 1
            running += loss.item()
            seen += 1
            bar.set_postfix(loss=f"{running / seen:.4f}")
            if t.max_minutes is not None and time.monotonic() - start > 60 * t.max_minutes:
                timed_out = True
                break
        state["epoch"] += 1
        epochs_here += 1
        state["elapsed"] = time.monotonic() - start

        # evaluate on dev; keep the best; checkpoint
        unwrapped = accelerator.unwrap_model(model)
        entry = {"epoch": state["epoch"], "step": state["global_step"], "train_loss": round(running / max(seen, 1), 5),
                 "lr": scheduler.get_last_lr()[0], "elapsed_s": round(state["elapsed"], 1)}
        # early epochs are skipped (train.eval_from); the last one, or one cut short, is always scored
        scored = state["epoch"] >= t.eval_from or state["epoch"] >= t.epochs or timed_out
        improved = False
        if scored:
            score, heads = _dev_scores(unwrapped, tokenizer, gazetteer, records, accelerator.device)
            entry.update(heads)
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=state["epoch"], bad_epochs=0)
            else:
                state["bad_epochs"] += 1
        say(f"epoch {state['epoch']}: loss {entry['train_loss']:.4f}"
            + "".join(f"; {name} entity F1 {h['entity_f1']:.4f}, relation F1 {h['relation_f1']:.4f}"
                      for name, h in entry.items() if name in ("dev", "real_dev"))
            + (" (best)" if improved else "" if scored else " (not scored: train.eval_from)"))
        if main:
            with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            if improved:
                _atomic_dir(out / "best", lambda d: _save_model(unwrapped, tokenizer, gazetteer, d))
            _atomic_dir(out / "checkpoint", lambda d: _save_checkpoint(unwrapped, tokenizer, gazetteer, optimizer, scheduler, state, d))
        accelerator.wait_for_everyone()
        if state["bad_epochs"] >= t.patience:
            say(f"early stopping: no dev improvement for {t.patience} epochs")
            break
        if timed_out:
            state["budget_stop"] = True
            say(f"WARNING: the time budget of {t.max_minutes} minutes (train.max_minutes) stopped the run in epoch "
                f"{state['epoch']} of {t.epochs}; the model is under-trained. Raise the budget or make epochs cheaper.")
            break
        if stop_after_epochs is not None and epochs_here >= stop_after_epochs:
            return {"stopped_after_epoch": state["epoch"]}

    # --- the best model becomes the output --------------------------------------------------
    best_model, tokenizer, gazetteer = _load_model(out / "best")
    result = {"best_epoch": state["best_epoch"], "epochs": state["epoch"], "configured_epochs": t.epochs,
              "train_sentences": len(train_records), "train_minutes": round(state["elapsed"] / 60, 2)}
    if state.get("budget_stop"):
        result["warning"] = (f"stopped by the time budget (train.max_minutes={t.max_minutes}) in epoch {state['epoch']} "
                             f"of {t.epochs}: under-trained")
    reports = {}
    for split in EVAL_SPLITS:
        if split in records:
            reports[split] = _evaluate(best_model, tokenizer, gazetteer, records[split], accelerator.device)
            result[split] = headline(reports[split])
            result[f"{split}_full"] = {k: v for k, v in reports[split].items() if k != "entity_report"}
    if main:
        _save_model(best_model, tokenizer, gazetteer, out)
        (out / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        (out / "README.md").write_text(_model_card(config, result, reports), encoding="utf-8")
        for split, rep in reports.items():
            say(f"\n== {split} ==\n{format_report(rep)}")
        if "warning" in result:
            say(f"\nWARNING: {result['warning']}")
    accelerator.wait_for_everyone()
    return result


# --- pieces ------------------------------------------------------------------------------------
def _new_model(config: TrainConfig, records: dict[str, list[dict]], log=print, shared_tokenizer: Path | None = None):
    m = config.model
    train_records = records["train"]
    settings = MarsadSettings(max_length=m.max_length, stride=m.stride, relation_hidden=m.relation_hidden)
    if m.encoder == "scratch":
        from .scratch import build_scratch_encoder, train_wordpiece

        unlabelled = _unlabelled_texts(config)
        reuse = config.resolve(m.scratch.tokenizer) if m.scratch.tokenizer else None
        if reuse is None and shared_tokenizer is not None and (shared_tokenizer / "tokenizer.json").is_file():
            reuse = shared_tokenizer
        if reuse is not None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(reuse), use_fast=True, trust_remote_code=False)
        else:  # the vocabulary is learnt from every text the encoder will see
            texts = [r["text"] for r in train_records] + unlabelled + _extra_texts(config, records, log)
            tokenizer = train_wordpiece(texts, m.scratch.vocab_size)
            tokenizer.model_max_length = m.scratch.max_position
            if shared_tokenizer is not None:
                tokenizer.save_pretrained(str(shared_tokenizer))
        encoder = build_scratch_encoder(m.scratch, tokenizer, m.dropout)
        if m.scratch.pretrain.steps > 0:
            from .scratch import pretrain_mlm

            encoder = pretrain_mlm(encoder, tokenizer, [r["text"] for r in train_records] + unlabelled,
                                   m.scratch.pretrain, config.seed, log=log)
    else:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(m.encoder, use_fast=True, trust_remote_code=False)
            encoder = load_encoder(m.encoder, log=log)
        except WeightsError as e:
            raise TrainingError(f"cannot load the encoder {m.encoder!r}: {e}") from None
        except (OSError, ValueError, EnvironmentError) as e:
            raise TrainingError(
                f"cannot load the encoder {m.encoder!r}: {str(e).splitlines()[0]}. Give a local folder with "
                "config.json, model.safetensors (or pytorch_model.bin) and vocab.txt or tokenizer.json, "
                "or a hub id on a machine that can reach the hub"
            ) from None
        if not getattr(tokenizer, "is_fast", False):
            raise TrainingError(f"{m.encoder}: marsad needs a fast tokenizer (tokenizer.json) for exact word alignment")
        for attr in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if hasattr(encoder.config, attr):
                setattr(encoder.config, attr, m.dropout)
    if settings.max_length > getattr(encoder.config, "max_position_embeddings", settings.max_length):
        settings.max_length = encoder.config.max_position_embeddings
    gazetteer = None
    if m.gazetteer:
        from marsad.model.gazetteer import Gazetteer

        path = config.resolve(m.gazetteer)
        if path.is_file() and getattr(encoder.config, "type_vocab_size", 0) >= 2:
            gazetteer = Gazetteer.from_csv(path)
            settings.gazetteer = True
            log(f"gazetteer: {len(gazetteer)} place names from {path}")
        else:
            import warnings

            warnings.warn(f"model.gazetteer: {path} is missing (or the encoder has no second token type); training without it")
    return MarsadModel.from_encoder(encoder, settings), tokenizer, gazetteer


def _extra_texts(config: TrainConfig, records: dict[str, list[dict]], log=print) -> list[str]:
    """``model.scratch.extra_texts`` for the vocabulary (see :func:`_read_texts`), without the texts
    of the run's own evaluation sets."""
    texts = _read_texts(config, config.model.scratch.extra_texts, "model.scratch.extra_texts")
    held_out = {r["text"] for split in EVAL_SPLITS for r in records.get(split, [])}
    kept = [t for t in texts if t not in held_out]
    if texts:
        log(f"vocabulary: {len(kept)} extra texts ({len(texts) - len(kept)} evaluation texts left out)")
    return kept


def _unlabelled_texts(config: TrainConfig) -> list[str]:
    """``model.scratch.pretrain.texts`` for MLM pre-training (see :func:`_read_texts`)."""
    return _read_texts(config, config.model.scratch.pretrain.texts, "model.scratch.pretrain.texts")


def _read_texts(config: TrainConfig, names: list[str], key: str) -> list[str]:
    """The texts of the files and folders a config names: the shared corpora folder (read by
    :func:`~marsad.training.realtext.unlabelled_texts`), other folders of ``.txt``/``.tsv``/``.conll``
    files, or files (:func:`~marsad.training.scratch.read_unlabelled`). Reserved evaluation text and
    near-copies of it are never returned, wherever the shared corpora are named; a missing path is
    a warning (a config can name ``../shared/data`` and still run without it)."""
    from .realtext import drop_reserved, reserved_texts, unlabelled_texts
    from .scratch import read_unlabelled

    texts, reserved = [], set()
    for name in names:
        path = config.resolve(name)
        shared = unlabelled_texts(path) if path.is_dir() else []
        if shared:
            texts += shared
            continue
        for root in (path.parent, path.parent.parent):  # a file or folder inside the shared corpora
            if (root / "fignews2024").is_dir() or (root / "anercorp").is_dir():
                reserved |= {t for ts in reserved_texts(root).values() for t in ts}
        if path.is_file():
            texts += read_unlabelled(path)
        elif path.is_dir():
            for f in sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".txt", ".tsv", ".conll")):
                texts += read_unlabelled(f)
        else:
            import warnings

            warnings.warn(f"{key}: {path} does not exist; skipped")
    return drop_reserved(texts, reserved) if reserved else texts


def _param_groups(model, lr: float, head_lr: float, weight_decay: float):
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = not name.startswith("encoder.")
        decay = not (name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name or p.ndim < 2)
        key = (head, decay)
        groups.setdefault(key, {"params": [], "lr": head_lr if head else lr, "weight_decay": weight_decay if decay else 0.0})
        groups[key]["params"].append(p)
    return list(groups.values())


def _mask_tokens(ids: torch.Tensor, mask: torch.Tensor, p: float, tokenizer) -> torch.Tensor:
    """Replace a share ``p`` of the real sub-words (not [CLS]/[SEP]/padding) with [MASK], so the
    model learns to tag from context as well as from the word itself (unseen names)."""
    special = (ids == tokenizer.cls_token_id) | (ids == tokenizer.sep_token_id) | (mask == 0)
    drop = (torch.rand(ids.shape, device=ids.device) < p) & ~special
    return ids.masked_fill(drop, tokenizer.mask_token_id)


def _set_epoch(loader, sampler, epoch: int) -> None:
    sampler.set_epoch(epoch)
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)


def _dev_scores(model, tokenizer, gazetteer, records: dict, device) -> tuple[float, dict]:
    """The model-selection score (mean of entity and relation F1 on dev; with a real-text dev set,
    the mean of the two sets' scores) and the rounded headlines per set."""
    heads = {}
    for name in ("dev", "real_dev"):
        if records.get(name):
            result = _evaluate(model, tokenizer, gazetteer, records[name], device, gold_entities=False)
            heads[name] = {k: round(v, 4) for k, v in headline(result).items()}
    scores = [(h["entity_f1"] + h["relation_f1"]) / 2 for h in heads.values()]
    return sum(scores) / len(scores), heads


def _evaluate(model, tokenizer, gazetteer, records, device, gold_entities: bool = True) -> dict:
    was_training = model.training
    ex = Extractor(model, tokenizer, device=str(device), precision="fp32", gazetteer=gazetteer)
    result = evaluate(ex, records, gold_entities=gold_entities)
    model.train(was_training)
    return result


def _save_model(model: MarsadModel, tokenizer, gazetteer, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(str(directory))
    if gazetteer is not None:
        gazetteer.save(directory)


def _load_model(directory: Path):
    ex = Extractor.from_pretrained(directory, device="cpu", precision="fp32")
    return ex.model, ex.tokenizer, ex.gazetteer


def _atomic_dir(target: Path, write) -> None:
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


def _find_checkpoint(out: Path) -> Path | None:
    """The last complete checkpoint (``checkpoint``, or ``checkpoint.old`` if a swap was cut short)."""
    for name in ("checkpoint", "checkpoint.old"):
        d = out / name
        if (d / "COMPLETE").is_file():
            return d
    return None


def _save_checkpoint(model, tokenizer, gazetteer, optimizer, scheduler, state: dict, d: Path) -> None:
    """Everything to continue: weights, optimizer, schedule, RNG, counters. Tensors in
    safetensors, the rest in JSON: a checkpoint never needs unpickling."""
    from safetensors.torch import save_file

    _save_model(model, tokenizer, gazetteer, d / "model")
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


def _trim_metrics(path: Path, last_epoch: int) -> None:
    """Drop ``metrics.jsonl`` lines of epochs after ``last_epoch`` (they will be run again)."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = [line for line in lines if not line.strip() or json.loads(line).get("epoch", 0) <= last_epoch]
    if len(keep) != len(lines):
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        tmp.replace(path)


def _load_training_state(d: Path, optimizer, scheduler) -> dict:
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


def _model_card(config: TrainConfig, result: dict, reports: dict) -> str:
    front = yaml.safe_dump(_card_metadata(config, result, reports), allow_unicode=True, sort_keys=False)
    lines = [
        "---", front.rstrip(), "---", "",
        "# marsad conflict-news extractor", "",
        "Tags ACTOR / LOCATION / CASUALTY spans (IOB2) and the relations between them (CONTROLS, ATTACKS, "
        "WITHDRAWS_FROM, CASUALTY_IN, CAUSED_BY) in Arabic news, following the marsad annotation spec.", "",
        f"- encoder: `{config.model.encoder}`",
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
