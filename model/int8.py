"""int8 on the CPU with outputs that never depend on the batch.

:class:`RowInt8Linear` is a Linear layer in int8 whose output for a row (a token) depends on
that row alone. BERT encoders (AraBERT, the offline model) run it inside
:class:`~.fastbert.FastBert`, which also keeps attention per sentence: bit-for-bit
batch-independent through the int8 layers (the fp32 last layer can round ~1e-6 differently in a
batch of very few rows, far below the printed digits). :func:`quantize_int8` puts it in place of
the Linear layers of other encoders, whose own batched attention leaves float noise (~1e-6) that
int8 rounding can occasionally turn into a visible score change.
"""

from __future__ import annotations

import copy
import warnings

import torch

__all__ = ["RowInt8Linear", "quantize_int8"]


class RowInt8Linear(torch.nn.Module):
    """A Linear layer in int8 whose output for a row depends on that row alone.

    Weights: int8 in [-63, 63], one scale per output channel. Activations: each row (token) is divided by
    its own absolute maximum, so its values lie in [-1, 1], and two constant columns (+1, -1,
    against zero weights) pin every row's range to exactly [-1, 1]. fbgemm's dynamic int8 kernel
    then always picks the same activation scale, accumulates exactly in int32, and the row's own
    scale is multiplied back afterwards. Activations use all 8 bits and weights 7, so a pair of
    products never overflows the int16 sums of AVX2's u8 x s8 instruction (on CPUs without VNNI
    the usual remedy, 7-bit activations, loses more). Torch's dynamic int8 instead takes one scale per batch
    tensor, so a sentence's numbers moved with its batch neighbours; here they cannot."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        w = torch.cat([w, w.new_zeros(w.shape[0], 2)], 1)
        scales = (w.abs().amax(1) / 63.0).clamp_min(1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch marks quantized tensor creation as deprecated
            qw = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qw, None)
        bias = linear.bias.detach().float() if linear.bias is not None else torch.zeros(w.shape[0])
        self.register_buffer("bias", bias)
        self.in_features = linear.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape, k = x.shape, self.in_features
        x = x.reshape(-1, k).float()
        scale = x.abs().amax(1, keepdim=True).clamp_min_(1e-12)
        rows = x.new_empty(x.shape[0], k + 2)
        torch.div(x, scale, out=rows[:, :k])
        rows[:, k], rows[:, k + 1] = 1.0, -1.0
        y = torch.ops.quantized.linear_dynamic(rows, self.packed, False)
        return torch.addcmul(self.bias, y, scale).reshape(*shape[:-1], -1)


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose encoder Linear layers are :class:`RowInt8Linear` (int8 weights, activations
    quantised per token): outputs independent of the batch, heads in fp32; the caller's model
    is untouched. Agreement with fp32 and speed: ``bench/throughput.py``."""
    model = copy.deepcopy(model)
    for parent in list(model.encoder.modules()):
        for name, child in parent.named_children():
            if type(child) is torch.nn.Linear:
                setattr(parent, name, RowInt8Linear(child))
    return model
