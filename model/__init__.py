"""marsad.model: what ships for inference (never imports marsad.training)."""

from .schema import ENTITY_LABELS, RELATION_TYPES, SPEC_VERSION
from .tags import spans_to_tags, tags_to_spans
from .text import normalize_word, split_sentences, tokenize

__all__ = [
    "ENTITY_LABELS",
    "RELATION_TYPES",
    "SPEC_VERSION",
    "spans_to_tags",
    "tags_to_spans",
    "normalize_word",
    "split_sentences",
    "tokenize",
]


def __getattr__(name):  # lazy: importing marsad.model must not import torch
    if name in ("Extractor",):
        from .extractor import Extractor

        return Extractor
    if name in ("MarsadModel",):
        from .modeling import MarsadModel

        return MarsadModel
    raise AttributeError(name)
