"""The training loop: seed -> data -> model -> optimizer -> loop -> eval -> checkpoint.

One readable ``accelerate`` loop (mixed precision, gradient accumulation, clipping, linear
warm-up and decay). Every epoch ends with a dev evaluation, a line in ``metrics.jsonl`` and an
atomic checkpoint (``checkpoint/``, written beside and swapped in, so a kill never corrupts the
previous one); the best epoch is kept in ``best/`` and becomes the output model at the end.
``accelerate launch -m marsad.training.cli train ...`` runs the same loop on several processes.
What is written and read back (checkpoints, model folders, the model card) and the model a run
starts from are in :mod:`marsad.training.checkpoint`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import yaml

from marsad.model.errors import TrainingError
from marsad.model.extractor import Extractor

from .augment import augment_records, load_city_names
from .checkpoint import (atomic_dir, build_model, find_checkpoint, load_model, load_training_state, model_card,
                         save_checkpoint, save_model, trim_metrics)
from .config import EVAL_SPLITS, TrainConfig, check_data_files, config_to_dict
from .data import build_dataset, collate, load_records
from .evaluation import evaluate, format_report, headline
from .fastdropout import use_fast_dropout
from .noise import noisy_records

__all__ = ["train", "run_loop", "TrainingError", "EpochSampler"]


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
    return run_loop(_Run, config, output_dir, resume, log, stop_after_epochs)


def run_loop(run_class: type, config: TrainConfig, output_dir: str | Path, resume: bool = False, log=print,
             stop_after_epochs: int | None = None) -> dict:
    """The loop of :func:`train` over a run of ``run_class`` (:class:`_Run`, or a subclass that
    builds its model or computes its loss differently, e.g. ``marsad distill``'s), with torch's
    deterministic algorithms for the run where ``train.deterministic`` asks for them."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(before or config.train.deterministic)
    try:
        return _loop(run_class, config, output_dir, resume, log, stop_after_epochs)
    finally:
        torch.use_deterministic_algorithms(before)


def _loop(run_class: type, config: TrainConfig, output_dir: str | Path, resume: bool, log, stop_after_epochs: int | None) -> dict:
    from accelerate.utils import set_seed

    out = Path(output_dir)
    accelerator = _accelerator(config.train.mixed_precision, config.train.grad_accum)
    say = log if accelerator.is_main_process else (lambda *a, **k: None)
    ckpt = _checkpoint_to_resume(out, resume)
    set_seed(config.seed)
    records, train_records = _load_data(config, say)
    run = run_class(config, out, accelerator, say, records, train_records, ckpt)
    t, state = config.train, run.state
    epochs_here = 0
    while state["epoch"] < t.epochs:
        timed_out = run.epoch()
        epochs_here += 1
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
    return run.finish()


def _accelerator(mixed_precision: str, grad_accum: int):
    """The run's ``Accelerator``: one process, or each of several under ``accelerate launch``."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # a batch without entity pairs leaves the relation head unused: DDP must allow that
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # cpu=True without CUDA: under `accelerate launch --multi_gpu` or torchrun on a CPU machine the
    # processes then form a gloo group instead of each training alone
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum,
                       kwargs_handlers=[ddp], cpu=not torch.cuda.is_available())


def _checkpoint_to_resume(out: Path, resume: bool) -> Path | None:
    """The checkpoint to continue from (with ``resume``); an error where there is none, or where
    a fresh run would overwrite one."""
    ckpt = find_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise TrainingError(f"{out}: no checkpoint to resume from; run without --resume to start afresh")
    if not resume and (out / "checkpoint").exists():
        raise TrainingError(f"{out} already holds a training run; use --resume to continue it, or another --output-dir")
    return ckpt


def _load_data(config: TrainConfig, say) -> tuple[dict[str, list[dict]], list[dict]]:
    """The records of every split, and the training records with the augmented copies added."""
    check_data_files(config)
    records = {split: load_records(paths) for split, paths in config.data_files().items() if paths}
    train_records = list(records["train"])
    a = config.augment
    if a.enabled and a.copies > 0:
        cities = load_city_names(config.resolve(a.cities))
        extra = augment_records(train_records, a.copies, a.p_replace, config.seed, cities, a.share)
        if a.noise > 0:
            extra = noisy_records(extra, a.noise, config.seed, a.noise_ops)
        say(f"augmentation: {len(extra)} sentences with swapped mentions ({len(cities)} city names)"
            + (f", {a.noise:.0%} of them with real-text noise" if a.noise > 0 else ""))
        train_records += extra
    return records, train_records


class _Run:
    """One run's moving parts (model, data, optimizer, schedule, counters), set up in the order
    that makes runs reproducible, and the steps of :func:`train` over them."""

    def __init__(self, config: TrainConfig, out: Path, accelerator, say, records: dict, train_records: list[dict],
                 ckpt: Path | None):
        self.config, self.out, self.accelerator, self.say = config, out, accelerator, say
        self.records, self.train_records = records, train_records
        self.main = accelerator.is_main_process
        self.model, self.tokenizer, self.gazetteer = self._model(ckpt)
        self._prepare(ckpt)
        if self.main:
            self._start_files(ckpt)
        self.start = time.monotonic() - self.state["elapsed"]

    def _model(self, ckpt: Path | None):
        """The checkpoint's model, or a new one: with several processes the main one learns the
        vocabulary first and the others read it (the same texts give the same vocabulary)."""
        if ckpt is not None:
            model, tokenizer, gazetteer = load_model(ckpt / "model")
            self.say(f"resuming from {ckpt}")
        else:
            shared = self.out / ".tokenizer" if self.accelerator.num_processes > 1 else None
            with self.accelerator.main_process_first():
                model, tokenizer, gazetteer = build_model(self.config, self.records, self.say, shared_tokenizer=shared)
        self.say(f"encoder: {self.config.model.encoder} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
        return use_fast_dropout(model), tokenizer, gazetteer

    def _prepare(self, ckpt: Path | None) -> None:
        """Batches (length-bucketed, in an order set by seed and epoch), optimizer and schedule,
        wrapped by accelerate; the optimizer's, schedule's and counters' state from ``ckpt``."""
        t = self.config.train
        ds_train = build_dataset(self.train_records, self.tokenizer, self.model.settings, self.gazetteer)
        self.sampler = EpochSampler(len(ds_train), self.config.seed, [len(x) for x in ds_train["input_ids"]], t.batch_size)
        pad = self.tokenizer.pad_token_id or 0
        loader = torch.utils.data.DataLoader(ds_train, batch_size=t.batch_size, sampler=self.sampler, num_workers=t.num_workers,
                                             collate_fn=lambda rows: collate(rows, pad))
        optimizer = torch.optim.AdamW(_param_groups(self.model, t.lr, t.head_lr or t.lr, t.weight_decay), lr=t.lr)
        total = math.ceil(len(loader) / t.grad_accum) * t.epochs
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, int(t.warmup_ratio * total), total)
        self.model, self.optimizer, self.loader, self.scheduler = self.accelerator.prepare(self.model, optimizer, loader, scheduler)
        self.state = {"epoch": 0, "global_step": 0, "best_score": -1.0, "best_epoch": 0, "bad_epochs": 0, "elapsed": 0.0}
        if ckpt is not None:
            self.state = load_training_state(ckpt, self.optimizer, self.scheduler)

    def _start_files(self, ckpt: Path | None) -> None:
        """The output folder and its ``training_config.yaml``; on resume, ``metrics.jsonl`` without
        the lines of epochs after the checkpoint (a kill between the log line and the checkpoint)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if ckpt is not None:
            trim_metrics(self.out / "metrics.jsonl", self.state["epoch"])
        (self.out / "training_config.yaml").write_text(yaml.safe_dump(config_to_dict(self.config), allow_unicode=True, sort_keys=False),
                                                       encoding="utf-8")

    def epoch(self) -> bool:
        """Train one epoch, score it on dev, log it and checkpoint; True if the time budget cut it short."""
        loss, timed_out = self._train_epoch()
        self.state["epoch"] += 1
        self.state["elapsed"] = time.monotonic() - self.start
        self._end_epoch(loss, timed_out)
        return timed_out

    def _train_epoch(self) -> tuple[float, bool]:
        """One pass over the batches (or until the time budget); the mean loss and whether it was cut short."""
        from tqdm.auto import tqdm

        t, state, accelerator, model = self.config.train, self.state, self.accelerator, self.model
        _set_epoch(self.loader, self.sampler, state["epoch"])
        model.train()
        running, seen = 0.0, 0
        bar = tqdm(self.loader, desc=f"epoch {state['epoch'] + 1}/{t.epochs}", disable=None if self.main else True,
                   leave=False, unit="batch")
        for batch in bar:
            with accelerator.accumulate(model):
                loss = self.loss(batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
            if accelerator.sync_gradients:
                state["global_step"] += 1
            running += loss.item()
            seen += 1
            bar.set_postfix(loss=f"{running / seen:.4f}")
            if t.max_minutes is not None and time.monotonic() - self.start > 60 * t.max_minutes:
                return running / max(seen, 1), True
        return running / max(seen, 1), False

    def loss(self, batch: dict) -> torch.Tensor:
        """The loss of one batch: the model's own (tag cross-entropy plus weighted relation loss)."""
        return self.model(**batch, relation_weight=self.config.train.relation_weight)["loss"]

    def _end_epoch(self, loss: float, timed_out: bool) -> None:
        """Score dev (from ``train.eval_from``, and always the last epoch or one cut short), keep
        the best, log the epoch to the terminal and ``metrics.jsonl``, checkpoint."""
        t, state = self.config.train, self.state
        unwrapped = self.accelerator.unwrap_model(self.model)
        entry = {"epoch": state["epoch"], "step": state["global_step"], "train_loss": round(loss, 5),
                 "lr": self.scheduler.get_last_lr()[0], "elapsed_s": round(state["elapsed"], 1)}
        scored = state["epoch"] >= t.eval_from or state["epoch"] >= t.epochs or timed_out
        improved = False
        if scored:
            score, heads = _dev_scores(unwrapped, self.tokenizer, self.gazetteer, self.records, self.accelerator.device)
            entry.update(heads)
            improved = score > state["best_score"]
            if improved:
                state.update(best_score=score, best_epoch=state["epoch"], bad_epochs=0)
            else:
                state["bad_epochs"] += 1
        self.say(f"epoch {state['epoch']}: loss {entry['train_loss']:.4f}"
                 + "".join(f"; {name} entity F1 {h['entity_f1']:.4f}, relation F1 {h['relation_f1']:.4f}"
                           for name, h in entry.items() if name in ("dev", "real_dev"))
                 + (" (best)" if improved else "" if scored else " (not scored: train.eval_from)"))
        if self.main:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            if improved:
                atomic_dir(self.out / "best", lambda d: save_model(unwrapped, self.tokenizer, self.gazetteer, d))
            atomic_dir(self.out / "checkpoint",
                       lambda d: save_checkpoint(unwrapped, self.tokenizer, self.gazetteer, self.optimizer, self.scheduler, state, d))
        self.accelerator.wait_for_everyone()

    def finish(self) -> dict:
        """The best epoch's model becomes the output: scored on every evaluation split, saved with
        ``metrics.json`` and the model card; the result."""
        t, state = self.config.train, self.state
        model, tokenizer, gazetteer = load_model(self.out / "best")
        result = {"best_epoch": state["best_epoch"], "epochs": state["epoch"], "configured_epochs": t.epochs,
                  "train_sentences": len(self.train_records), "train_minutes": round(state["elapsed"] / 60, 2)}
        if state.get("budget_stop"):
            result["warning"] = (f"stopped by the time budget (train.max_minutes={t.max_minutes}) in epoch {state['epoch']} "
                                 f"of {t.epochs}: under-trained")
        reports = {}
        for split in EVAL_SPLITS:
            if split in self.records:
                reports[split] = _evaluate(model, tokenizer, gazetteer, self.records[split], self.accelerator.device)
                result[split] = headline(reports[split])
                result[f"{split}_full"] = {k: v for k, v in reports[split].items() if k != "entity_report"}
        if self.main:
            save_model(model, tokenizer, gazetteer, self.out)
            (self.out / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
            (self.out / "README.md").write_text(model_card(self.config, result, reports), encoding="utf-8")
            for split, rep in reports.items():
                self.say(f"\n== {split} ==\n{format_report(rep)}")
            if "warning" in result:
                self.say(f"\nWARNING: {result['warning']}")
        self.accelerator.wait_for_everyone()
        return result


def _param_groups(model, lr: float, head_lr: float, weight_decay: float):
    """AdamW groups: the encoder at ``lr``, the heads at ``head_lr``; no decay on biases and norms."""
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


def _set_epoch(loader, sampler, epoch: int) -> None:
    """Give the sampler (and accelerate's wrapped loader) the epoch that seeds its shuffle."""
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
    """:func:`~marsad.training.evaluation.evaluate` of the model as it is now (fp32), leaving its mode as it was."""
    was_training = model.training
    ex = Extractor(model, tokenizer, device=str(device), precision="fp32", gazetteer=gazetteer)
    result = evaluate(ex, records, gold_entities=gold_entities)
    model.train(was_training)
    return result

