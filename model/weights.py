"""Pretrained encoder weights as published: safetensors first, ``pytorch_model.bin`` read safely.

AraBERT (``aubmindlab/bert-base-arabertv02``) was published with ``pytorch_model.bin`` (and
``tf_model.h5``); a ``model.safetensors`` beside it is not certain. A ``.bin`` is a pickle, and
unpickling can run code, so it is read only with ``torch.load(..., weights_only=True)`` (which
refuses any pickled object that is not a tensor or a plain container) and must hold tensors
only. It is converted once to ``model.safetensors`` in a cache folder keyed by the file's
SHA-256, next to a copy of ``config.json``; later runs load the converted copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

__all__ = ["WeightsError", "safetensors_folder", "read_pickled_state", "cache_dir"]

SAFETENSORS = "model.safetensors"
PICKLED = "pytorch_model.bin"


from .errors import WeightsError  # noqa: E402


def cache_dir() -> Path:
    """``$MARSAD_CACHE``, else ``$XDG_CACHE_HOME/marsad``, else ``~/.cache/marsad``."""
    if os.environ.get("MARSAD_CACHE"):
        return Path(os.environ["MARSAD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "marsad"


def read_pickled_state(path: Path) -> dict:
    """The tensors of a ``pytorch_model.bin``, read without running pickled code."""
    import pickle

    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"{path}: refused: it holds pickled objects that are not tensors, and marsad never runs "
                           f"pickled code ({str(e).splitlines()[0][:200]}). Use a model.safetensors copy of the weights") from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise WeightsError(f"{path}: cannot be read as PyTorch weights ({str(e).splitlines()[0][:200]}); "
                           "re-download it or use a model.safetensors copy") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{path}: refused: it is not a state dict of tensors (found {type(state).__name__}); "
                           "use a model.safetensors copy of the weights")
    return state


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _convert(folder: Path, log=print) -> Path:
    """A cache folder with ``config.json`` and ``model.safetensors`` converted from ``folder``'s
    ``pytorch_model.bin`` (made once; the key is the file's SHA-256)."""
    from safetensors.torch import save_file

    source = folder / PICKLED
    target = cache_dir() / "converted" / _sha256(source)[:32]
    if (target / SAFETENSORS).is_file() and (target / "config.json").is_file():
        log(f"weights: {source} read from its safetensors conversion in {target}")
        return target
    state = read_pickled_state(source)
    # safetensors refuses tensors that share memory (tied weights): each tensor gets its own copy
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(state, str(tmp / SAFETENSORS), metadata={"format": "pt"})
    shutil.copyfile(folder / "config.json", tmp / "config.json")
    try:
        tmp.rename(target)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"weights: converted {source} to safetensors once (read with torch.load(weights_only=True), no pickled code run): {target}")
    return target


def safetensors_folder(name_or_path: str, log=print) -> str:
    """Where ``AutoModel.from_pretrained(..., use_safetensors=True)`` should load an encoder from.

    A local folder with ``model.safetensors`` (or sharded safetensors) is used as it is; one
    with only ``pytorch_model.bin`` is converted (see the module docstring). A hub id is
    returned as it is when the repo has safetensors weights; otherwise its ``config.json`` and
    ``pytorch_model.bin`` are downloaded and converted the same way.
    """
    folder = Path(name_or_path)
    if folder.is_dir():
        if (folder / SAFETENSORS).is_file() or any(folder.glob("model-*.safetensors")):
            return str(folder)
        if (folder / PICKLED).is_file():
            if not (folder / "config.json").is_file():
                raise WeightsError(f"{folder}: config.json is missing beside {PICKLED}")
            return str(_convert(folder, log))
        if any(folder.glob("pytorch_model-*.bin")):
            raise WeightsError(f"{folder}: sharded pytorch_model-*.bin weights are not read; save a model.safetensors copy")
        raise WeightsError(f"{folder}: no weights found (model.safetensors or pytorch_model.bin)")
    if folder.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1:
        raise WeightsError(f"{name_or_path}: no such folder, and not a hub id of the form owner/name")
    try:  # a hub id: safetensors when the repo has them, else its .bin through the same safe path
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError
    except ImportError:
        return name_or_path
    try:
        hf_hub_download(name_or_path, SAFETENSORS)
        return name_or_path
    except EntryNotFoundError:
        pass
    except Exception:  # offline or unreachable: transformers gives the clearer error
        return name_or_path
    config = Path(hf_hub_download(name_or_path, "config.json"))
    weights = Path(hf_hub_download(name_or_path, PICKLED))
    local = cache_dir() / "hub" / name_or_path.replace("/", "--")
    local.mkdir(parents=True, exist_ok=True)
    for f in (config, weights):
        link = local / f.name
        if not link.exists():
            shutil.copyfile(f, link)
    return str(_convert(local, log))
