"""Loading a tokenizer, with the checks marsad needs: one place for training and inference."""

from __future__ import annotations

from pathlib import Path

from .errors import ModelLoadError

__all__ = ["load_tokenizer"]


def load_tokenizer(source: str | Path, model=None):
    """The fast tokenizer of a folder or a hub id (never remote code).

    With ``model`` (a :class:`~marsad.model.modeling.MarsadModel` read from the same folder), the
    folder is a saved marsad model: it must hold ``tokenizer.json``, and the tokenizer must not
    have more tokens than the model's embeddings. Every failure is a
    :class:`~marsad.model.errors.ModelLoadError` naming ``source`` and the fix.
    """
    from transformers import AutoTokenizer

    if model is not None and not (Path(source) / "tokenizer.json").is_file():
        raise ModelLoadError(f"{source}: tokenizer.json is missing; the folder is incomplete (save the tokenizer with the model)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source), use_fast=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as e:
        raise ModelLoadError(f"{source}: the tokenizer files are missing or broken ({str(e).splitlines()[0]})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{source}: needs a fast tokenizer (tokenizer.json) for exact offsets")
    if model is not None and len(tokenizer) > model.config.vocab_size:
        raise ModelLoadError(f"{source}: the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}; "
                             "the tokenizer and weights do not belong together")
    return tokenizer
