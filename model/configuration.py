"""marsad's settings inside a Hugging Face encoder config.

The saved ``config.json`` is the encoder's own config (``model_type: bert`` for AraBERT and the
offline encoder) with the token-classification label maps (``id2label`` / ``label2id``) and a
``marsad`` block: relation labels, pair types, windowing, and the versions that made it. That
keeps the folder a standard token-classification checkpoint while carrying all marsad needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .schema import ENTITY_LABELS, NO_RELATION, RELATION_TYPES, SPEC_VERSION, bio_labels

__all__ = ["FORMAT_VERSION", "MarsadSettings", "ConfigError", "settings_from_config", "attach_settings"]

# Bumped when the saved layout changes in a way older code cannot read.
FORMAT_VERSION = 1


from .errors import ConfigError  # noqa: E402  (one ConfigError for configs and model settings)


@dataclass
class MarsadSettings:
    entity_labels: list[str] = field(default_factory=lambda: list(ENTITY_LABELS))
    relation_labels: list[str] = field(default_factory=lambda: [NO_RELATION, *RELATION_TYPES])
    relation_types: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in RELATION_TYPES.items()})
    max_length: int = 256  # sub-word positions per window, [CLS] and [SEP] included
    stride: int = 32  # words shared by consecutive windows of a long sentence
    relation_hidden: int = 256
    relation_before: int = 0  # words before a pair's first entity max-pooled into its features (Arabic's verb-first clauses)
    gazetteer: bool = False  # token type 1 marks place-name gazetteer words (gazetteer.txt in the folder)
    lexicon: bool = False  # the decoder asks the training text of its words and names (lexicon.json, lexicon.py)
    format_version: int = FORMAT_VERSION
    spec_version: str = SPEC_VERSION

    @property
    def pair_types(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys(tuple(v) for v in self.relation_types.values()))

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self, id2label: dict[int, str]) -> None:
        if self.format_version > FORMAT_VERSION:
            raise ConfigError(
                f"this model was saved by a newer marsad (format {self.format_version}, this one reads "
                f"{FORMAT_VERSION}); upgrade marsad: pip install -U marsad"
            )
        labels = [id2label[i] for i in sorted(id2label)]
        if "O" not in labels:
            raise ConfigError('the label map has no "O" label; id2label must hold "O" and B-/I- tags')
        want = set(bio_labels(self.entity_labels))
        if set(labels) != want:
            raise ConfigError(
                f"id2label {sorted(labels)} does not match the entity labels {self.entity_labels} "
                f"(expected exactly {sorted(want)})"
            )
        if not self.relation_labels or self.relation_labels[0] != NO_RELATION:
            raise ConfigError(f'relation_labels must start with "{NO_RELATION}", got {self.relation_labels}')
        for rel, (h, t) in self.relation_types.items():
            if rel not in self.relation_labels:
                raise ConfigError(f"relation type {rel} is not in relation_labels {self.relation_labels}")
            if h not in self.entity_labels or t not in self.entity_labels:
                raise ConfigError(f"relation {rel} links {h} -> {t}, not both in {self.entity_labels}")
        if self.max_length < 8 or not (0 <= self.stride):
            raise ConfigError(f"max_length must be >= 8 and stride >= 0, got {self.max_length}, {self.stride}")


def settings_from_config(config) -> MarsadSettings:
    """Read and validate the ``marsad`` block and label maps of a loaded HF config."""
    block = getattr(config, "marsad", None)
    if not isinstance(block, dict):
        raise ConfigError(
            "this folder's config.json has no 'marsad' block: it is a plain encoder, not a marsad model. "
            "Train one with `marsad train CONFIG`, or point at a folder written by it"
        )
    known = set(MarsadSettings.__dataclass_fields__)
    unknown = set(block) - known
    if unknown:
        raise ConfigError(f"unknown keys in the config's 'marsad' block: {sorted(unknown)}")
    settings = MarsadSettings(**block)
    id2label = {int(k): v for k, v in config.id2label.items()}  # JSON turns int keys into strings
    settings.validate(id2label)
    return settings


def attach_settings(config, settings: MarsadSettings) -> None:
    """Write label maps and the ``marsad`` block into an HF config (in place)."""
    labels = bio_labels(settings.entity_labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {label: i for i, label in enumerate(labels)}
    config.num_labels = len(labels)
    config.marsad = settings.to_dict()
    config.architectures = [_token_cls_architecture(config)]
    settings.validate(config.id2label)


def _token_cls_architecture(config) -> str:
    """The ``...ForTokenClassification`` class pipelines will load this folder with."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES

    return MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES.get(config.model_type, "AutoModelForTokenClassification")
