"""Training configs: YAML, strictly validated, overridable as ``key=value``.

Every block is a dataclass; an unknown or misspelled key is an error that names it and
suggests the closest valid key, a wrong type names the key and the expected type. Relative
data paths are resolved against the config file's folder, so a config works from any
working directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

__all__ = ["EVAL_SPLITS", "check_data_files", "ConfigError", "TrainConfig", "DistillConfig", "load_config", "apply_overrides",
           "config_to_dict"]


from marsad.model.errors import ConfigError  # noqa: E402


@dataclass
class ScratchEncoder:
    """A BERT built from scratch with its own WordPiece vocabulary (the offline default)."""

    vocab_size: int = 6000
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    max_position: int = 512
    tokenizer: str | None = None  # reuse this saved tokenizer folder instead of learning a vocabulary
    clitics: bool = False  # add proclitic markers: an unknown word with a known stem is read as stem + markers


@dataclass
class ModelSection:
    encoder: str = "scratch"  # "scratch", a hub id (aubmindlab/bert-base-arabertv02) or a local folder
    scratch: ScratchEncoder = field(default_factory=ScratchEncoder)
    max_length: int = 256
    stride: int = 32
    relation_hidden: int = 256
    relation_before: int = 0  # words before a pair's first entity that the relation head also reads
    dropout: float = 0.1
    gazetteer: str | None = None  # a world-cities CSV: place names become an input feature (model/gazetteer.py)
    lexicon: bool = False  # the decoder asks the training text of its words and names (model/lexicon.py)


@dataclass
class DataSection:
    train: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    # real-text evaluation sets (data/real/): scored beside dev/test; real_dev also picks the best epoch
    real_dev: list[str] = field(default_factory=list)
    real_test: list[str] = field(default_factory=list)


EVAL_SPLITS = ("dev", "test", "real_dev", "real_test")


@dataclass
class AugmentSection:
    """Mention replacement: swap LOCATION / ACTOR mentions for others of the same type."""

    enabled: bool = False
    copies: int = 1  # augmented copies of each training sentence
    share: float = 1.0  # the share of training sentences that get copies (fewer copies: cheaper epochs)
    p_replace: float = 0.7  # chance each mention is swapped
    cities: str | None = None  # world-cities CSV for extra LOCATION names (skipped if missing)
    # real-text noise (training/noise.py): the share of augmented copies that also get hashtags,
    # URLs, spelling variants, digits, tatweel... (0: none), and which kinds of edit
    noise: float = 0.0
    noise_ops: list[str] = field(default_factory=lambda: ["hashtag", "web", "spelling", "joined", "numbers", "marks", "obfuscate"])


@dataclass
class TrainSection:
    epochs: int = 10
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 5e-5
    head_lr: float | None = None  # learning rate of the new heads (default: lr)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # no | fp16 | bf16
    patience: int = 3  # early stopping: epochs without dev improvement
    eval_from: int = 1  # score dev from this epoch on (earlier ones are rarely the best; the last is always scored)
    max_minutes: float | None = None  # stop after this many minutes (the best checkpoint is kept)
    relation_weight: float = 1.0
    num_workers: int = 0
    # torch.use_deterministic_algorithms for the run: byte-for-byte repeats at sizes where some CPU
    # kernels otherwise sum in a varying order (its cost: python bench/train_step.py)
    deterministic: bool = False


@dataclass
class TrainConfig:
    seed: int = 13
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    train: TrainSection = field(default_factory=TrainSection)
    source: str | None = None  # the file it was read from (set by load_config)

    def validate(self) -> None:
        t = self.train
        if t.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"train.mixed_precision must be no, fp16 or bf16, got {t.mixed_precision!r}")
        for key in ("epochs", "batch_size", "grad_accum"):
            if getattr(t, key) < 1:
                raise ConfigError(f"train.{key} must be at least 1, got {getattr(t, key)}")
        if not (0 <= t.warmup_ratio < 1):
            raise ConfigError(f"train.warmup_ratio must be in [0, 1), got {t.warmup_ratio}")
        if t.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {t.lr}")
        if not self.data.train:
            raise ConfigError("data.train is empty: list at least one JSONL file of training records")
        if not self.data.dev:
            raise ConfigError("data.dev is empty: list at least one JSONL file for per-epoch evaluation")
        if not (0 < self.augment.share <= 1):
            raise ConfigError(f"augment.share must be in (0, 1], got {self.augment.share}")
        if not (0 <= self.augment.noise <= 1):
            raise ConfigError(f"augment.noise must be in [0, 1], got {self.augment.noise}")
        from .noise import NOISE_OPS

        for op in self.augment.noise_ops:
            if op not in NOISE_OPS:
                raise ConfigError(f"augment.noise_ops: {op!r} is not one of {', '.join(NOISE_OPS)}")
        if not (0 <= self.augment.p_replace <= 1):
            raise ConfigError(f"augment.p_replace must be in [0, 1], got {self.augment.p_replace}")
        if self.model.max_length < 16:
            raise ConfigError(f"model.max_length must be at least 16, got {self.model.max_length}")

    def data_files(self) -> dict[str, list[Path]]:
        base = Path(self.source).parent if self.source else Path.cwd()
        return {split: [_resolve(p, base) for p in getattr(self.data, split)] for split in ("train", *EVAL_SPLITS)}

    def resolve(self, path: str | None) -> Path | None:
        base = Path(self.source).parent if self.source else Path.cwd()
        return None if path is None else _resolve(path, base)


@dataclass
class StudentShape:
    """The student encoder of ``marsad distill``: a BERT of this shape on the teacher's tokenizer."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 256
    relation_hidden: int | None = None  # the relation head's width (default: the teacher's)
    # teacher: start from the teacher's embeddings (projected onto the student's width by SVD where
    # it is narrower) and, where the layer shapes match, from evenly spaced teacher layers; random: none
    init: str = "teacher"


@dataclass
class DistillSection:
    """``marsad distill``: soft targets from a fine-tuned teacher, mixed with the gold loss."""

    teacher: str | None = None  # a trained marsad model folder (relative to the config file)
    temperature: float = 2.0  # softens both the tag and the relation distributions
    alpha: float = 0.5  # weight of the soft (teacher) loss; 1 - alpha goes to the gold loss
    student: StudentShape = field(default_factory=StudentShape)


@dataclass
class DistillConfig(TrainConfig):
    """A training config with a ``distill:`` section (``model.encoder`` and ``model.scratch`` are
    not used: the student's shape is ``distill.student``, its tokenizer, gazetteer and lexicon the teacher's)."""

    distill: DistillSection = field(default_factory=DistillSection)

    def validate(self) -> None:
        super().validate()
        d, s = self.distill, self.distill.student
        if not d.teacher:
            raise ConfigError("distill.teacher is not set: give the folder of a trained marsad model, e.g. teacher: ../runs/tiny")
        if d.temperature <= 0:
            raise ConfigError(f"distill.temperature must be positive, got {d.temperature}")
        if not (0 <= d.alpha <= 1):
            raise ConfigError(f"distill.alpha must be in [0, 1] (the weight of the soft loss), got {d.alpha}")
        for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size"):
            if getattr(s, key) < 1:
                raise ConfigError(f"distill.student.{key} must be at least 1, got {getattr(s, key)}")
        if s.hidden_size % s.num_heads:
            raise ConfigError(f"distill.student.hidden_size ({s.hidden_size}) must be a multiple of num_heads ({s.num_heads})")
        if s.init not in ("teacher", "random"):
            raise ConfigError(f"distill.student.init must be teacher or random, got {s.init!r}")


def _resolve(p: str, base: Path) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


# --- building dataclasses from dicts, strictly ------------------------------------------------
# keys that configs could set before, and why they went: a config that still sets one is told so
REMOVED_KEYS = {
    "model.scratch.pretrain": "masked-LM pre-training of the scratch encoder showed no gain on real text",
    "model.scratch.extra_texts": "extra vocabulary texts showed no gain on real text",
    "train.token_dropout": "token dropout showed no gain on real text",
    "model.scratch.digits": "digits read as 0 showed no gain on real text",
}


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"'{where}' must be a mapping of keys to values, got {type(data).__name__}" if where else f"the config must be a mapping of keys to values, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else str(key)
        if name in REMOVED_KEYS:
            raise ConfigError(f"config key '{name}' was removed ({REMOVED_KEYS[name]}); delete it from the config")
        if key not in fields or key == "source":
            close = difflib.get_close_matches(str(key), [k for k in fields if k != "source"], n=1, cutoff=0.5)
            hint = f"; did you mean '{(where + '.') if where else ''}{close[0]}'?" if close else ""
            valid = ", ".join(k for k in fields if k != "source")
            raise ConfigError(f"unknown config key '{name}'{hint} (valid keys here: {valid})")
        kwargs[key] = _coerce(typing.get_type_hints(cls)[key], value, name)
    return cls(**kwargs)


def _coerce(tp, value, name: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, name)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(inner, value, name)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single path is a list of one
        if not isinstance(value, list):
            raise ConfigError(f"'{name}' must be a list, got {value!r}")
        return [_coerce(inner, v, f"{name}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{name}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"'{name}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 5e-5 as a string
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"'{name}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"'{name}' must be a string, got {value!r}")
    return value


def config_to_dict(config: TrainConfig) -> dict:
    d = dataclasses.asdict(config)
    d.pop("source", None)
    return d


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` overrides (values parsed as YAML) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. train.epochs=3")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{p}' is not a section")
        node[parts[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None, cls: type = TrainConfig) -> TrainConfig:
    """Read, override and validate a YAML training config (``cls=DistillConfig``: a distillation one)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (shipped ones are in configs/: tiny.yaml, arabert.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    data = apply_overrides(data, overrides or [])
    if cls is TrainConfig and isinstance(data, dict) and "distill" in data:
        raise ConfigError(f"{path} has a 'distill' section: it is a distillation config; run it with `marsad distill {path}`")
    try:
        config = _build(cls, data, "")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    config.source = str(path.resolve())
    try:
        config.validate()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return config


def check_data_files(config: TrainConfig) -> None:
    """Raise a clear error for every data file the config names that is not there."""
    for split, files in config.data_files().items():
        for f in files:
            if not f.is_file():
                raise ConfigError(f"{config.source}: data.{split} names {f}, which does not exist")
