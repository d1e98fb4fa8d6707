"""Dropout with cheaper masks on CPU, for training only.

On a CPU, torch's dropout draws one random float per element, and on 2 cores that was 18% of a
training step of the offline model (most of it in the attention probabilities). Here a mask takes
four 15-bit random integers from each 64-bit draw of torch's generator (so ``torch.manual_seed``
and a resumed run's saved RNG state still decide it): an element is kept when its integer is at
least ``round(p * 32768)``, which is ``p`` to within 2e-5. Everything else is ordinary inverted
dropout. On other devices, and in eval mode, the native ops run unchanged.

:func:`use_fast_dropout` swaps a model's ``nn.Dropout`` modules and points a transformers
encoder at an attention function that does the same for the attention probabilities (and is
plain SDPA when not training). Neither changes a parameter or anything a checkpoint saves.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

__all__ = ["fast_dropout", "FastDropout", "use_fast_dropout"]

ATTENTION = "marsad_fast_dropout"


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout of ``x`` with drop probability ``p``."""
    if not training or p == 0.0 or x.device.type != "cpu":
        return nn.functional.dropout(x, p, training)
    n = x.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n]
    keep = (bits & 0x7FFF) >= round(p * 32768)
    return x * (keep.view(x.shape).to(x.dtype) * (1.0 / (1.0 - p)))


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with :func:`fast_dropout`'s masks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention with :func:`fast_dropout` on the probabilities; SDPA when ``dropout`` is 0.
    Masks come as SDPA takes them (boolean, True where a key is attended, or None)."""
    if dropout == 0.0 or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
    weights = fast_dropout(weights.softmax(-1), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Swap ``model``'s ``nn.Dropout`` modules for :class:`FastDropout`, and its transformers
    encoder's attention for the fast-dropout one (only over ``sdpa`` or ``eager``); in place."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
    AttentionInterface.register(ATTENTION, _attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])  # masks as SDPA takes them
    for sub in model.modules():
        config = getattr(sub, "config", None)
        if hasattr(sub, "set_attn_implementation") and getattr(config, "_attn_implementation", None) in ("sdpa", "eager"):
            sub.set_attn_implementation(ATTENTION)
    return model
