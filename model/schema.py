"""The annotation schema (``ANNOTATION.md``): entity labels, relation types and their signatures."""

from __future__ import annotations

__all__ = ["PRECISIONS", "SPEC_VERSION", "ENTITY_LABELS", "RELATION_TYPES", "NO_RELATION", "PAIR_TYPES", "bio_labels"]

SPEC_VERSION = "1.0"
ENTITY_LABELS: tuple[str, ...] = ("ACTOR", "LOCATION", "CASUALTY")
NO_RELATION = "NONE"
# relation label -> (head entity label, tail entity label)
RELATION_TYPES: dict[str, tuple[str, str]] = {
    "CONTROLS": ("ACTOR", "LOCATION"),
    "ATTACKS": ("ACTOR", "LOCATION"),
    "WITHDRAWS_FROM": ("ACTOR", "LOCATION"),
    "CASUALTY_IN": ("CASUALTY", "LOCATION"),
    "CAUSED_BY": ("CASUALTY", "ACTOR"),
}
# Inference precisions (Extractor / `marsad predict --precision`).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "int8", "fp16", "bf16", "onnx-int8")
# The (head, tail) entity-label pairs the relation head scores.
PAIR_TYPES: tuple[tuple[str, str], ...] = tuple(dict.fromkeys(RELATION_TYPES.values()))


def bio_labels(entity_labels=ENTITY_LABELS) -> list[str]:
    """``["O", "B-ACTOR", "I-ACTOR", ...]`` in a fixed order."""
    return ["O"] + [f"{p}-{label}" for label in entity_labels for p in ("B", "I")]
