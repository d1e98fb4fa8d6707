"""A lean inference forward for BERT encoders (AraBERT and the offline scratch model alike).

``transformers``' ``BertModel.forward`` is general: separate query/key/value projections, mask
building, dropout and output objects at every layer and, under CPU autocast, a cast before
every matmul. :class:`FastBert` runs the same arithmetic on the same weights with less around
it (what counts at the offline default's size, where attention, GELU and layer norms, not
the matmuls, take most of the time; ``bench/throughput.py`` measures the paths):

* one fused query/key/value matmul per layer, attention by
  ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CPU and GPU);
* in ``bf16`` mode the matmul weights are bf16 copies and the activations that feed matmuls
  are bf16 (oneDNN AMX / AVX512-BF16 kernels, fp32 accumulation), while the residual stream,
  the layer norms and the embeddings stay fp32, as under autocast. The matmuls see the batch
  as rows padded to a multiple of :data:`ROWS`: oneDNN compiles a kernel for every new row
  count, which costs more than the matmul, so a stream of batches of any shape reuses a few;
* in ``int8`` mode every layer's matmuls except the last layer's are
  :class:`~.int8.RowInt8Linear` (int8 weights, each token's activations quantised on their
  own); the last layer feeds the heads and stays fp32 (in int8 it cost the most relation
  agreement with fp32 of any layer). Attention runs on each sentence's unpadded keys (a run of
  sentences of one length in one call), so every number a sentence gets is computed from that
  sentence alone: bit for bit the same in any batch through the int8 layers (padding would move
  fp32 attention sums by ~1e-6, which int8 rounding can turn into a visible change). The fp32
  last layer's matmul can round a row differently (~1e-6) when a batch has very few rows (the
  BLAS picks another kernel), far below the printed digits;
* no autograd, no dropout, no per-layer Python objects.

:func:`fast_bert` builds it from a ``BertModel`` (embeddings shared; fused and bf16 weights
copied, so it is a snapshot: build a new one after changing the weights) and returns ``None``
for an encoder it does not reproduce exactly (other architectures, decoders, relative
positions, other activations); callers then keep the ``transformers`` forward.
``tests/test_fastpaths.py`` checks it against ``BertModel.forward``: fp32 to float rounding,
bf16 against ``BertModel`` with bf16 Linear weights under CPU autocast.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FastBert", "fast_bert"]

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}
ROWS = 64  # bf16 matmul rows are padded to a multiple of this


def fast_bert(encoder: nn.Module, dtype: torch.dtype | str = torch.float32) -> "FastBert | None":
    """A :class:`FastBert` over ``encoder``'s weights, or ``None`` when the encoder is not
    a plain ``BertModel`` this forward reproduces exactly. ``dtype``: ``torch.float32``,
    ``torch.bfloat16`` or ``"int8"``."""
    config = getattr(encoder, "config", None)
    if type(encoder).__name__ != "BertModel" or config is None:
        return None
    if (getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False)
            or getattr(config, "position_embedding_type", "absolute") not in (None, "absolute")
            or config.hidden_act not in _ACTIVATIONS or config.hidden_size % config.num_attention_heads):
        return None
    return FastBert(encoder, dtype)


class FastBert(nn.Module):
    """Inference-only BERT forward: ``(input_ids, attention_mask, token_type_ids) -> (B, T, H)``
    fp32 hidden states, like ``BertModel(...).last_hidden_state``."""

    def __init__(self, encoder: nn.Module, dtype: torch.dtype | str = torch.float32):
        super().__init__()
        config = encoder.config
        emb = encoder.embeddings
        self.int8 = dtype == "int8"
        self.dtype = dtype = torch.float32 if self.int8 else dtype
        self.heads = config.num_attention_heads
        self.act = _ACTIVATIONS[config.hidden_act]
        self.word = nn.Parameter(emb.word_embeddings.weight.detach(), requires_grad=False)
        self.position = nn.Parameter(emb.position_embeddings.weight.detach(), requires_grad=False)
        self.token_type = nn.Parameter(emb.token_type_embeddings.weight.detach(), requires_grad=False)
        self.emb_norm = copy.deepcopy(emb.LayerNorm)
        self.layers = nn.ModuleList()
        last = len(encoder.encoder.layer) - 1
        for i, layer in enumerate(encoder.encoder.layer):
            int8 = self.int8 and i < last  # the last layer, which feeds the heads, stays fp32
            att = layer.attention
            qkv_w = torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight])
            qkv_b = torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias])
            block = nn.Module()
            block.qkv = _linear(qkv_w, qkv_b, dtype, int8)
            block.out = _linear(att.output.dense.weight, att.output.dense.bias, dtype, int8)
            block.norm1 = copy.deepcopy(att.output.LayerNorm)
            block.up = _linear(layer.intermediate.dense.weight, layer.intermediate.dense.bias, dtype, int8)
            block.down = _linear(layer.output.dense.weight, layer.output.dense.bias, dtype, int8)
            block.norm2 = copy.deepcopy(layer.output.LayerNorm)
            self.layers.append(block)
        self.requires_grad_(False)

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        b, t = input_ids.shape
        types = F.embedding(token_type_ids, self.token_type) if token_type_ids is not None else self.token_type[0]
        x = self.emb_norm(F.embedding(input_ids, self.word) + types + self.position[:t])  # BertEmbeddings' order
        h = x.size(-1)
        d = h // self.heads
        # keys of padding positions are masked out; a padding query attends to the real keys and
        # is never read
        mask = attention_mask.bool()[:, None, None, :] if not bool(attention_mask.all()) else None
        # the matmuls see the batch as rows (B*T, H). oneDNN builds (JIT-compiles) a bf16 kernel
        # for every new row count, which costs more than the matmul itself: in bf16 the rows are
        # padded to a multiple of ROWS, so a stream of batches of any shape reuses a few kernels
        m = b * t
        rows = -(-m // ROWS) * ROWS if self.dtype != torch.float32 else m
        x = x.view(m, h)
        if rows > m:
            x = torch.cat([x, x.new_zeros(rows - m, h)])
        att = x.new_zeros(rows, h, dtype=self.dtype)  # attention output, padded the same way
        lengths = attention_mask.sum(1).tolist() if self.int8 and mask is not None else None
        runs = _runs(lengths) if lengths is not None else None
        for blk in self.layers:
            qkv = blk.qkv(x.to(self.dtype))[:m].view(b, t, 3, self.heads, d).permute(2, 0, 3, 1, 4)
            out = att[:m].view(b, t, self.heads, d)
            if lengths is None:
                a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask, scale=1.0 / math.sqrt(d))
                out.copy_(a.transpose(1, 2))
            else:  # int8: each sentence on its own keys (padding rows keep zeros, never read); a run
                # of sentences of one length goes in one call, which computes each as it would alone
                for i, j, n in runs:
                    q, k, v = (qkv[h, i:j, :, :n] for h in range(3))
                    a = F.scaled_dot_product_attention(q, k, v, scale=1.0 / math.sqrt(d))
                    out[i:j, :n].copy_(a.transpose(1, 2))
            a = blk.out(att)
            x = blk.norm1(x + a.float())  # .to / .float are no-ops in fp32
            u = blk.down(self.act(blk.up(x.to(self.dtype))))
            x = blk.norm2(x + u.float())
        return x[:m].view(b, t, h)


def _runs(lengths: list[int]) -> list[tuple[int, int, int]]:
    """``(first, end, length)`` of each run of consecutive rows with the same length."""
    runs, i = [], 0
    for j in range(1, len(lengths) + 1):
        if j == len(lengths) or lengths[j] != lengths[i]:
            runs.append((i, j, lengths[i]))
            i = j
    return runs


def _linear(weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype, int8: bool = False) -> nn.Module:
    """The layer as ``nn.Linear`` in ``dtype`` (a copy of the weights), or a :class:`~.int8.RowInt8Linear`."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], device="meta")  # no random init: the weights follow
    linear.weight = nn.Parameter(weight.detach().to(dtype).contiguous(), requires_grad=False)
    linear.bias = nn.Parameter(bias.detach().to(dtype).contiguous(), requires_grad=False)
    if int8:
        from .int8 import RowInt8Linear

        return RowInt8Linear(linear)
    return linear
