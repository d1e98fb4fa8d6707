"""marsad's errors, in one place (as spaCy keeps its own).

Every error marsad raises on purpose is a :class:`MarsadError`, so a caller can catch them all;
each also derives from the built-in it stands for (a config problem is a ``ValueError``, a model
that will not load a ``RuntimeError``), so ``except ValueError`` keeps working. Messages name
the file, line, key or field, and what to do; they never name command-line flags (the CLI adds
those).
"""

from __future__ import annotations

__all__ = ["MarsadError", "ConfigError", "DataError", "SpanError", "ModelLoadError", "WeightsError", "TrainingError"]


class MarsadError(Exception):
    """Base class of every error marsad raises on purpose."""


class ConfigError(MarsadError, ValueError):
    """A training config or a model's ``config.json`` settings that marsad cannot use; the
    message names the key and the fix."""


class DataError(MarsadError, ValueError):
    """A problem in a data file, with where it is (``file:line``) in the message."""


class SpanError(DataError):
    """A span that cannot be expressed as IOB2 over the tokens (boundary or overlap)."""


class ModelLoadError(MarsadError, RuntimeError):
    """A model folder that cannot be loaded; the message names the folder and the fix."""


class WeightsError(ModelLoadError):
    """Pretrained weights that cannot be read safely; the message names the file and what to do."""


class TrainingError(MarsadError, RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""
