"""``marsad distill``: a smaller student encoder trained from a fine-tuned teacher.

The student is a BERT of the shape ``distill.student`` gives, on the teacher's tokenizer (so
sub-word positions match) and gazetteer, under the same heads. Each batch goes through both
models; the student's loss mixes

- the **soft** loss: KL divergence from the teacher's tag distribution (softmax at temperature
  ``T``) at every labelled sub-word, plus ``train.relation_weight`` × the KL from the teacher's
  relation distribution over the batch's candidate entity pairs, both scaled by T² (Hinton et
  al.), with weight ``alpha``;
- the **gold** loss the ``train`` loop uses (tag cross-entropy plus weighted relation loss), with
  weight ``1 - alpha``.

Everything else is ``marsad train``'s: the data pipeline, augmentation, the loop
(:func:`~marsad.training.trainer.run_loop`), dev scoring, checkpoints, ``--resume`` and the
model folder with its card. The output loads with ``Extractor.from_pretrained``.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch
from torch.nn import functional as F

from marsad.model.errors import ConfigError, ModelLoadError

from .checkpoint import build_model, load_model
from .config import DistillConfig, ScratchEncoder
from .trainer import _Run, run_loop

__all__ = ["distill", "distillation_loss", "soft_kl", "student_config", "encoder_flops"]


def distill(config: DistillConfig, output_dir: str | Path, resume: bool = False, log=print,
            stop_after_epochs: int | None = None) -> dict:
    """Train the student ``config`` describes from its teacher, into ``output_dir``; the metrics."""
    return run_loop(_DistillRun, config, output_dir, resume, log, stop_after_epochs)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) of the softmaxes at ``temperature``, averaged over rows, times T².

    Masked classes (logits at the dtype's minimum, e.g. relation classes a pair's types cannot
    take) are clamped to -1e4 first, so they get probability 0 without infinities or NaNs.
    """
    if student_logits.numel() == 0:
        return student_logits.sum() * 0.0
    s = student_logits.float().clamp(min=-1e4) / temperature
    t = teacher_logits.float().clamp(min=-1e4) / temperature
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
    return kl * temperature**2


def distillation_loss(student, teacher, batch: dict, temperature: float, alpha: float,
                      relation_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """``{"loss", "soft", "gold"}`` of one batch: ``alpha`` × soft + (1 - ``alpha``) × gold.

    ``teacher`` runs without gradients (in eval mode: the caller's job); both models see the same
    sub-words, word positions and candidate pairs.
    """
    out = student(**batch, relation_weight=relation_weight)
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "pair_labels")}
        t_out = teacher(**inputs)
    mask = batch["labels"] != -100
    soft = soft_kl(out["logits"][mask], t_out["logits"][mask], temperature)
    if "relation_logits" in out:
        soft = soft + relation_weight * soft_kl(out["relation_logits"], t_out["relation_logits"], temperature)
    gold = out["loss"]
    return {"loss": alpha * soft + (1 - alpha) * gold, "soft": soft.detach(), "gold": gold.detach()}


def load_teacher(config: DistillConfig):
    """``(model, tokenizer, gazetteer, folder)`` of ``distill.teacher`` (an error naming the key if absent)."""
    folder = config.resolve(config.distill.teacher)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{config.source}: distill.teacher names {folder}, which is not a marsad model folder; "
                          "train one first (marsad train configs/tiny.yaml -o runs/tiny) or fix the path")
    try:
        model, tokenizer, gazetteer = load_model(folder)
    except ModelLoadError as e:
        raise ConfigError(f"{config.source}: distill.teacher: {e}") from None
    return model, tokenizer, gazetteer, folder


def student_config(config: DistillConfig, teacher, teacher_dir: Path) -> DistillConfig:
    """A copy of ``config`` that :func:`~marsad.training.checkpoint.build_model` turns into the
    student: a scratch BERT of ``distill.student``'s shape on the teacher's saved tokenizer, with
    the teacher's window settings."""
    s, ts = config.distill.student, teacher.settings
    cfg = copy.deepcopy(config)
    cfg.model = dataclasses.replace(
        cfg.model, encoder="scratch", gazetteer=None, max_length=ts.max_length, stride=ts.stride,
        relation_hidden=s.relation_hidden or ts.relation_hidden, relation_before=ts.relation_before,
        scratch=ScratchEncoder(vocab_size=teacher.config.vocab_size, hidden_size=s.hidden_size, num_layers=s.num_layers,
                               num_heads=s.num_heads, intermediate_size=s.intermediate_size,
                               max_position=teacher.config.max_position_embeddings, tokenizer=str(teacher_dir)))
    return cfg


def init_from_teacher(student, teacher) -> list[str]:
    """Copy what fits from the teacher into the student (in place); the names of what was copied.

    Student layer ``i`` of ``n`` takes teacher layer ``round(i * (m - 1) / (n - 1))`` of ``m``
    where the tensors have the same shape; embeddings narrower than the teacher's are projected
    onto the top ``hidden`` right singular vectors of the teacher's word embeddings; the tag
    classifier and relation head are copied when their shapes match.
    """
    t_state, copied = teacher.state_dict(), []
    n, m = student.config.num_hidden_layers, teacher.config.num_hidden_layers
    layer_map = {i: round(i * (m - 1) / max(n - 1, 1)) for i in range(n)}
    proj = None
    if student.config.hidden_size < teacher.config.hidden_size:
        words = t_state["encoder.embeddings.word_embeddings.weight"].float()
        _, _, vh = torch.linalg.svd(words - words.mean(0), full_matrices=False)
        proj = vh[: student.config.hidden_size].T  # (H_teacher, H_student)
    with torch.no_grad():
        for name, p in student.state_dict().items():
            src = _teacher_name(name, layer_map)
            if src not in t_state:
                continue
            t = t_state[src]
            if t.shape == p.shape:
                p.copy_(t)
            elif proj is not None and name.startswith("encoder.embeddings.") and name.endswith("_embeddings.weight"):
                p.copy_(t.float() @ proj)
            else:
                continue
            copied.append(name)
    return copied


def _teacher_name(name: str, layer_map: dict[int, int]) -> str:
    """The teacher's parameter a student parameter starts from (its layer index mapped)."""
    parts = name.split(".")
    if "layer" in parts:
        k = parts.index("layer") + 1
        if k < len(parts) and parts[k].isdigit():
            parts[k] = str(layer_map[int(parts[k])])
    return ".".join(parts)


def encoder_flops(model) -> int:
    """Forward FLOPs per token of the encoder: 2 × its non-embedding parameters."""
    return 2 * sum(p.numel() for n, p in model.encoder.named_parameters() if not n.startswith("embeddings."))


class _DistillRun(_Run):
    """A :class:`~marsad.training.trainer._Run` whose new model is the student and whose loss is
    :func:`distillation_loss` against the teacher."""

    def __init__(self, config: DistillConfig, out, accelerator, say, records, train_records, ckpt):
        self.teacher, self.teacher_tokenizer, self.teacher_gazetteer, self.teacher_dir = load_teacher(config)
        self.teacher.eval().requires_grad_(False)
        super().__init__(config, out, accelerator, say, records, train_records, ckpt)
        self.teacher.to(accelerator.device)

    def _model(self, ckpt):
        """The checkpoint's student (on ``--resume``), or a new one built from the teacher."""
        if ckpt is not None:
            return super()._model(ckpt)
        d = self.config.distill
        model, tokenizer, gazetteer = build_model(student_config(self.config, self.teacher, self.teacher_dir), self.records,
                                                  self.say, gazetteer=self.teacher_gazetteer,
                                                  lexicon=self.teacher.lexicon)
        if (model.settings.entity_labels, model.settings.relation_labels) != (self.teacher.settings.entity_labels,
                                                                             self.teacher.settings.relation_labels):
            raise ConfigError(f"{self.config.source}: the teacher {self.teacher_dir} uses other labels than this marsad; "
                              "distil a teacher trained with the current label set")
        copied = init_from_teacher(model, self.teacher) if d.student.init == "teacher" else []
        ratio = encoder_flops(model) / encoder_flops(self.teacher)
        self.say(f"student: {d.student.num_layers} layers, hidden {d.student.hidden_size} "
                 f"({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {ratio:.2f} of the teacher's "
                 f"FLOPs a token; {len(copied)} tensors from the teacher); teacher {self.teacher_dir}")
        return model, tokenizer, gazetteer

    def loss(self, batch: dict) -> torch.Tensor:
        d = self.config.distill
        return distillation_loss(self.model, self.teacher, batch, d.temperature, d.alpha,
                                 self.config.train.relation_weight)["loss"]
