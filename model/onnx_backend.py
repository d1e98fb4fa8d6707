"""ONNX Runtime int8 encoder for CPU inference, ``precision="onnx-int8"`` (``pip install marsad[onnx]``).

The extractor needs the encoder's last hidden state (the tag classifier reads the word states
and so does the relation head), so only the encoder goes through ONNX Runtime:
``input_ids, attention_mask, token_type_ids -> last_hidden_state``; the small heads stay in
torch.

How the graph is made (see ``PERF.md`` in the shared folder for the measurements behind it):

1. a copy of the encoder with *eager* attention (SDPA does not fuse), exported with the legacy
   TorchScript exporter (``dynamo=False``, opset 17, batch and sequence axes dynamic);
2. ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert")`` fuses attention,
   LayerNorm, GELU and the embeddings;
3. ``onnxruntime.quantization.quantize_dynamic`` (weights int8, activations quantised on the
   fly) with ``DefaultTensorType=FLOAT`` so the fused graph's untyped tensors do not stop it.

(An unquantised ``onnx-fp32`` path was slower than torch fp32 at both sizes measured and is gone.)
The result is cached next to the model, ``MODEL_DIR/onnx/encoder-int8.onnx``, written atomically, and stamped (ONNX metadata) with a SHA-256 of the
weights and the export settings: loading again reuses it, a retrained ``model.safetensors``
re-exports. A model folder that cannot be written caches under ``~/.cache/marsad/onnx/``
(``$MARSAD_CACHE`` or ``$XDG_CACHE_HOME/marsad`` if set).
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["OnnxEncoder", "OnnxUnavailable", "load_onnx_encoder", "export_encoder", "cache_path"]

# bump when the export recipe changes, so caches made by an older recipe are rebuilt
EXPORT_VERSION = "1"
# int8 settings. reduce_range (7-bit weights) guards against u8*s8 saturation in the AVX2
# kernels of CPUs without VNNI (torch's fbgemm default does the same); on the trained tiny model
# it cost no agreement (99.75% vs 99.69% without, on a VNNI CPU; bench/README.md)
INT8_OPTIONS = {"per_channel": False, "reduce_range": True}
_BERT_LIKE = {"bert", "roberta", "xlm-roberta", "electra", "camembert", "distilbert"}
_INSTALL = "pip install marsad[onnx]"


class OnnxUnavailable(ImportError):
    """onnx / onnxruntime are not installed."""


def _require():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise OnnxUnavailable(
            f'precision "onnx-int8" needs onnx and onnxruntime ({e.name or e} is missing); '
            f'install them with `{_INSTALL}`, or use precision "fp32" or "int8"'
        ) from None


class OnnxEncoder:
    """A CPU ONNX Runtime session standing in for ``MarsadModel.encode``."""

    def __init__(self, path: str | Path):
        _require()
        import onnxruntime as ort

        self.path = Path(path)
        opts = ort.SessionOptions()
        # torch's thread count: one per physical core by default, and following
        # torch.set_num_threads keeps the torch and ONNX paths of a process comparable
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask,
                "token_type_ids": token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)}
        feed = {k: np.ascontiguousarray(feed[k].detach().cpu().numpy().astype(np.int64, copy=False)) for k in self.inputs}
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return torch.from_numpy(hidden)


def weights_digest(model_dir: str | Path | None, model=None) -> str:
    """SHA-256 of ``model.safetensors`` (or, for a model not loaded from a folder, of its
    encoder's tensors)."""
    h = hashlib.sha256()
    if model_dir is not None and (Path(model_dir) / "model.safetensors").is_file():
        with open(Path(model_dir) / "model.safetensors", "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        return h.hexdigest()
    if model is None:
        raise ValueError("need a model folder with model.safetensors or a model")
    for name, t in sorted(model.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


def _stamp(digest: str) -> dict[str, str]:
    import onnxruntime as ort

    return {"marsad_weights_sha256": digest, "marsad_export": EXPORT_VERSION,
            "marsad_int8": repr(sorted(INT8_OPTIONS.items())), "onnxruntime": ort.__version__}


def _cache_root() -> Path:
    if os.environ.get("MARSAD_CACHE"):
        return Path(os.environ["MARSAD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "marsad"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def cache_path(model_dir: str | Path | None, digest: str) -> Path:
    """Where the ONNX file of this model lives: beside the model if the folder is writable,
    otherwise in the user cache (keyed by the weights' digest)."""
    name = "encoder-int8.onnx"
    if model_dir is not None:
        local = Path(model_dir) / "onnx"
        if (local / name).is_file() or _writable(local):
            return local / name
    return _cache_root() / "onnx" / digest[:20] / name


def load_onnx_encoder(model, model_dir: str | Path | None = None) -> OnnxEncoder:
    """An :class:`OnnxEncoder` for ``model`` (a ``MarsadModel``), exported on first use and then
    read from the cache; a cache made from other weights or another recipe is rebuilt."""
    _require()
    digest = weights_digest(model_dir, model)
    path = cache_path(model_dir, digest)
    want = _stamp(digest)
    if path.is_file():
        try:
            enc = OnnxEncoder(path)
            if all(enc.metadata.get(k) == v for k, v in want.items()):
                return enc
        except Exception:  # a torn or foreign file: export again
            pass
    try:
        export_encoder(model, path, metadata=want)
    except OSError:
        if model_dir is None or not str(path).startswith(str(Path(model_dir))):
            raise
        path = _cache_root() / "onnx" / digest[:20] / path.name  # the folder turned out read-only
        export_encoder(model, path, metadata=want)
    return OnnxEncoder(path)


class _EncoderOnly(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state


def _eager_copy(encoder):
    enc = copy.deepcopy(encoder).float().eval()
    if hasattr(enc, "set_attn_implementation"):
        try:
            enc.set_attn_implementation("eager")
            return enc
        except (ValueError, AttributeError, TypeError):
            pass
    enc.config._attn_implementation = "eager"
    return enc


def export_encoder(model, path: str | Path, metadata: dict[str, str] | None = None, opset: int = 17) -> Path:
    """Export ``model.encoder`` to ``path``, fused and int8-quantised, atomically: the file
    appears complete or not at all."""
    _require()
    import logging
    import warnings

    import onnx

    quiet = logging.root.manager.disable  # ORT's fusion and quantisation advice goes to logging
    logging.disable(logging.WARNING)
    try:
        return _export(model, Path(path), metadata, opset, onnx, warnings)
    finally:
        logging.disable(quiet)


def _export(model, path: Path, metadata, opset, onnx, warnings) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.encoder.config
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        raw, fused, final = Path(tmp) / "raw.onnx", Path(tmp) / "fused.onnx", Path(tmp) / "final.onnx"
        wrapper = _EncoderOnly(_eager_copy(model.encoder))
        ids = torch.tensor([[2, 5, 6, 7, 3], [2, 8, 9, 3, 0]], dtype=torch.long)
        mask = (ids != 0).long()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (ids, mask, torch.zeros_like(ids)), str(raw), dynamo=False, opset_version=opset,
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                              "token_type_ids": {0: "batch", 1: "sequence"},
                              "last_hidden_state": {0: "batch", 1: "sequence"}},
                do_constant_folding=True,
            )
        del wrapper
        if getattr(config, "model_type", "bert") in _BERT_LIKE:
            from onnxruntime.transformers.optimizer import optimize_model

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, use_gpu=False)
            opt.save_model_to_file(str(fused))
        else:
            fused = raw
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fused), str(final), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT}, **INT8_OPTIONS)
        proto = onnx.load(str(final))
        for key, value in (metadata or {}).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        staged = Path(tmp) / "staged.onnx"
        onnx.save(proto, str(staged))
        os.replace(staged, path)
    return path
