"""How the encoder runs: device, precision, CPU features, and what stands in for ``MarsadModel.encode``.

:func:`make_encoder` is the one place that turns ``(model, precision, device)`` into a
:class:`Backend`, the encoder call the :class:`~marsad.model.extractor.Extractor` makes:

========== ======== ===============================================================================
precision  device   encoder
========== ======== ===============================================================================
fp32       CPU      the lean BERT forward (``fastbert.py``: fused QKV, SDPA); other encoders as-is
bf16       CPU      the lean forward with bf16 matmul weights (AMX / AVX512-BF16), or bf16 Linear
                    copies under autocast for other encoders
int8       CPU      the lean forward with int8 matmuls, activations quantised per token and attention
                    per sentence: outputs independent of the batch (``int8.py``)
onnx-int8  CPU      the encoder exported to ONNX Runtime, fused and int8-quantised (``onnx_backend.py``)
fp32       GPU      the model as-is
fp16, bf16 GPU      the model under autocast
========== ======== ===============================================================================

``auto`` is bf16 on GPUs (fp16 where bf16 is unsupported); on CPUs bf16 with AMX, int8 with
VNNI, bf16 with AVX512-BF16, else fp32 (:func:`auto_precision`). The heads (tag classifier, relation head) always run in torch, in fp32
on the CPU. The CPU stand-ins are snapshots of the weights: after changing them, build again.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ConfigError
from .fastbert import FastBert, fast_bert
from .int8 import quantize_int8
from .modeling import MarsadModel
from .schema import PRECISIONS

__all__ = ["Backend", "make_encoder", "resolve_device", "auto_precision", "cpu_flags", "cpu_has_fast_bf16", "PRECISIONS"]

# precisions that existed once: the reason and what to ask for instead
REMOVED_PRECISIONS = {
    "onnx-fp32": "it was slower than fp32 at every model size measured; use fp32, or onnx-int8 for the "
                 "fast ONNX Runtime path",
}
_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
_CPU_ONLY = ("int8", "onnx-int8")


@dataclass
class Backend:
    """The encoder call for one precision on one device.

    ``model`` is on ``device`` (an int8 or bf16 copy where the precision needs one, so the
    caller's model is left as it was); ``encode(input_ids, attention_mask, token_type_ids)``
    gives the (B, T, H) hidden states; ``autocast`` is the dtype to run it (and the heads) under
    ``torch.autocast`` with, ``None`` for none."""

    precision: str
    device: torch.device
    model: MarsadModel
    encode: Callable[..., torch.Tensor]
    autocast: torch.dtype | None = None
    fast: FastBert | None = None  # the lean BERT forward, on the CPU fp32/bf16/int8 paths
    onnx: object | None = None  # an onnx_backend.OnnxEncoder, on the onnx-int8 path


def make_encoder(model: MarsadModel, precision: str = "auto", device: str | torch.device = "auto",
                 model_dir: str | Path | None = None) -> Backend:
    """The :class:`Backend` for ``precision`` on ``device`` (see the table above).

    ``model_dir`` is the model's folder, where the ONNX export is cached (``onnx-int8`` only).
    A precision this device cannot run, or one that would be emulated and slow, is a
    :class:`ConfigError` that says what to use instead."""
    device = resolve_device(device)
    precision = check_precision(precision, device)
    model = model.eval()
    fast = onnx = None
    if precision == "int8":
        fast = fast_bert(model.encoder, "int8")
        if fast is None:  # another encoder: its Linear layers in int8, attention as it is
            model = quantize_int8(model)
    elif precision == "onnx-int8":
        from .onnx_backend import load_onnx_encoder

        onnx = load_onnx_encoder(model, model_dir)
    elif precision in ("fp32", "bf16") and device.type == "cpu":
        fast = fast_bert(model.encoder, torch.bfloat16 if precision == "bf16" else torch.float32)
        if fast is None and precision == "bf16":  # another encoder: bf16 Linear copies under autocast
            model = _bf16_linear_copy(model)
    model = model.to(device)
    if fast is not None:
        fast = fast.to(device)
    autocast = _AUTOCAST.get(precision) if fast is None else None
    return Backend(precision, device, model, onnx or fast or model.encode, autocast, fast, onnx)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is the GPU where there is one, else the CPU; a GPU asked for must exist."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f'device {str(device)!r} asked for, but no CUDA GPU is available; use device="cpu"')
    return dev


def check_precision(precision: str, device: torch.device) -> str:
    """The precision to run (``auto`` resolved), or a :class:`ConfigError` saying what to use."""
    if precision in REMOVED_PRECISIONS:
        raise ConfigError(f"precision {precision!r} was removed: {REMOVED_PRECISIONS[precision]}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return auto_precision(device)
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA GPU; on CPU use bf16 (CPUs with AMX or AVX512-BF16), fp32 or int8")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        raise ConfigError("precision bf16 on this CPU would be emulated (no AMX or AVX512-BF16) and several times "
                          "slower than fp32; use fp32, int8 or onnx-int8")
    if precision in _CPU_ONLY and device.type != "cpu":
        raise ConfigError(f'precision {precision} runs on the CPU; use device="cpu", or fp16/bf16 on a GPU')
    return precision


def auto_precision(device: str | torch.device = "cpu") -> str:
    """What ``precision="auto"`` picks: on a GPU bf16 (fp16 where bf16 is unsupported). On a CPU,
    from its feature flags:

    * AMX: bf16 (about 3x the pipeline at BERT-base size, ahead of int8's 2.3x there);
    * else VNNI (AVX512-VNNI or AVX-VNNI): int8, whose outputs never depend on the batch and agree
      with fp32 on >= 99.5% of the trained model's entities, relations and casualty fields (on a
      Zen 5, 3.66x the pipeline at BERT-base size, bf16 3.61x);
    * else AVX512-BF16: bf16;
    * else fp32 (int8 without VNNI is no faster than fp32; bf16 would be emulated).

    bf16 scores can move slightly (by 1e-4 in the case seen) with the batch a sentence lands in
    (its padded length changes the reduction order); fp32 and int8 match to the printed digit."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "bf16"
    if flags & {"avx512_vnni", "avx_vnni"}:
        return "int8"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (``avx512_vnni``, ``amx_bf16``, ...) from ``/proc/cpuinfo``;
    empty where the system has no such file."""
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="ignore").splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX tiles or AVX512-BF16), so bf16 beats fp32.

    Where ``/proc/cpuinfo`` lists flags, they decide: oneDNN's own check answers True on every
    AVX-512 CPU (Skylake-SP, Cascade Lake, Ice Lake), where bf16 is emulated and several times
    slower than fp32. Only systems without that file ask oneDNN."""
    flags = cpu_flags()
    if flags:
        return bool(flags & {"amx_bf16", "avx512_bf16"})
    try:  # other systems: ask oneDNN through torch
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _bf16_linear_copy(model: MarsadModel) -> MarsadModel:
    """A copy whose encoder Linear layers hold bf16 weights (for autocast), the caller's untouched."""
    model = copy.deepcopy(model)
    for m in model.encoder.modules():
        if isinstance(m, torch.nn.Linear):
            m.to(torch.bfloat16)
    return model
