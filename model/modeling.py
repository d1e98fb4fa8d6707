"""The joint model: one encoder pass feeds a token-classification head and a relation head.

::

    sub-words --encoder--> h (B, T, H) --classifier--> tag logits (B, T, L)
                             |
                             +-- gather first sub-word of each word --> word states (B, W, H)
                                   --relation head over type-compatible entity pairs--> (P, R)

Any ``AutoModel`` encoder works. The saved folder is a standard token-classification
checkpoint: the encoder's weights under its ``base_model_prefix`` (``bert.``), the tag head as
``classifier.``, so ``AutoModelForTokenClassification`` / ``pipeline("token-classification")``
load it (they ignore ``relation_head.``). Weights are safetensors only; no remote code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .configuration import ConfigError, MarsadSettings, attach_settings, settings_from_config

__all__ = ["MarsadModel", "RelationHead", "ModelLoadError", "WEIGHTS_NAME"]

WEIGHTS_NAME = "model.safetensors"


from .errors import ModelLoadError  # noqa: E402


def _bucket(distance: torch.Tensor, buckets: int) -> torch.Tensor:
    """Signed log-bucket of word distances: 0..buckets-1 for negative, buckets.. for >= 0."""
    mag = distance.abs().clamp(min=1).float()
    b = torch.where(distance.abs() < 4, distance.abs(), (4 + torch.log2(mag / 4) * 2).long())
    b = b.clamp(max=buckets - 1)
    return torch.where(distance < 0, b, b + buckets)


class RelationHead(nn.Module):
    """Scores (head, tail) entity pairs from word states.

    A pair is ``[batch, head_start, head_end, tail_start, tail_end, head_type, tail_type]``
    (word indices, end exclusive). Its features: first and last word of each entity, a max-pool
    of the words between them (where the verb of a subject-verb-object clause is), with
    ``before`` > 0 a max-pool of up to ``before`` words before the first of the two (where the
    verb of a verb-first clause is: ``قصفت [القوات] [حمص]``), both entity types and their
    bucketed distance. Classes a pair's types cannot take are masked out.
    """

    def __init__(self, hidden: int, inner: int, num_relations: int, num_types: int, dropout: float = 0.1, buckets: int = 12,
                 before: int = 0):
        super().__init__()
        self.buckets, self.before = buckets, before
        self.type_emb = nn.Embedding(num_types, 32)
        self.dist_emb = nn.Embedding(2 * buckets, 32)
        self.mlp = nn.Sequential(
            nn.Linear((5 + (before > 0)) * hidden + 3 * 32, inner),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(inner, num_relations),
        )

    def forward(self, words: torch.Tensor, pairs: torch.Tensor, max_elements: int = 1 << 24) -> torch.Tensor:
        # words: (B, W, H); pairs: (P, 7) -> logits (P, R)
        b, hs, he, ts, te, htype, ttype = pairs.unbind(-1)
        ctx = [range_max(words, b, torch.minimum(he, te), torch.maximum(hs, ts), max_elements)]
        if self.before:
            first = torch.minimum(hs, ts)
            ctx.append(range_max(words, b, (first - self.before).clamp(min=0), first, max_elements))
        dist = self.dist_emb(_bucket(ts - hs, self.buckets))
        feats = torch.cat([words[b, hs], words[b, he - 1], words[b, ts], words[b, te - 1], *ctx,
                           self.type_emb(htype), self.type_emb(ttype), dist], -1)
        return self.mlp(feats)


def range_max(words: torch.Tensor, rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
              max_elements: int = 1 << 24) -> torch.Tensor:
    """``words[rows[p], lo[p]:hi[p]].amax(0)`` for every p, zeros where the range is empty: (P, H).

    A sparse table (the max of every run of 2**k words, k = 0..log2 of the longest range)
    answers each range with two look-ups, so the cost is (B, W, H) per level, never
    (pairs, W, H). Rows are processed in groups so the table stays under ``max_elements``.
    """
    n_rows, width, hidden = words.shape
    out = words.new_zeros(rows.size(0), hidden)
    length = hi - lo
    keep = length > 0
    if not bool(keep.any()):
        return out
    levels = int(length.max()).bit_length()  # k = 0 .. floor(log2(longest))
    per_row = width * hidden * levels
    group = max(1, max_elements // max(1, per_row))
    if n_rows > group:
        for g in range(0, n_rows, group):
            sel = (rows >= g) & (rows < g + group)
            if bool(sel.any()):
                out[sel] = range_max(words[g : g + group], rows[sel] - g, lo[sel], hi[sel], max_elements)
        return out
    used, rows = torch.unique(rows, return_inverse=True)  # only rows with pairs, only up to the last range end
    width = int(hi.max())
    words = words[used, :width]
    table = [words]
    for k in range(1, levels):
        prev, step = table[-1], 1 << (k - 1)
        table.append(torch.cat([torch.maximum(prev[:, : width - step], prev[:, step:]), prev[:, width - step :]], 1))
    stacked = torch.stack(table)  # (K, B, W, H): stacked[k, b, i] = max(words[b, i : i + 2**k])
    a = torch.where(keep, lo, torch.zeros_like(lo))
    n = torch.where(keep, length, torch.ones_like(length))
    k = _floor_log2(n)
    ctx = torch.maximum(stacked[k, rows, a], stacked[k, rows, a + n - (1 << k)])
    return torch.where(keep[:, None], ctx, torch.zeros_like(ctx))


def _floor_log2(n: torch.Tensor) -> torch.Tensor:
    """floor(log2(n)) of positive integers, exactly (no float rounding)."""
    k = torch.zeros_like(n)
    for shift in (32, 16, 8, 4, 2, 1):
        big = (n >> shift) > 0
        k = torch.where(big, k + shift, k)
        n = torch.where(big, n >> shift, n)
    return k


class MarsadModel(nn.Module):
    """Encoder + tag classifier + relation head, with HF-style save/load."""

    def __init__(self, config, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.settings = settings_from_config(config)
        self.lexicon = None  # a Lexicon where settings.lexicon (lexicon.py); saved and loaded with the weights
        self.encoder = encoder if encoder is not None else _encoder_from_config(config)
        hidden = config.hidden_size
        dropout = getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        s = self.settings
        self.relation_head = RelationHead(hidden, s.relation_hidden, len(s.relation_labels), len(s.entity_labels), dropout,
                                          before=s.relation_before)
        # allowed[pair_type, relation]: which relation classes a (head, tail) type pair can take
        pair_types = s.pair_types
        allowed = torch.zeros(len(s.entity_labels), len(s.entity_labels), len(s.relation_labels), dtype=torch.bool)
        allowed[..., 0] = True
        for rel, (h, t) in s.relation_types.items():
            allowed[s.entity_labels.index(h), s.entity_labels.index(t), s.relation_labels.index(rel)] = True
        self.register_buffer("allowed", allowed, persistent=False)
        self.pair_types = [(s.entity_labels.index(h), s.entity_labels.index(t)) for h, t in pair_types]
        for m in (self.classifier, self.relation_head):
            m.apply(self._init_weights)

    def _init_weights(self, module):
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)

    # --- forward ---------------------------------------------------------------------------
    def encode(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder(**kwargs).last_hidden_state  # (B, T, H)

    @staticmethod
    def gather_words(hidden: torch.Tensor, word_index: torch.Tensor) -> torch.Tensor:
        """States of each word's first sub-word: ``word_index`` (B, W), -1 for padding -> (B, W, H)."""
        idx = word_index.clamp(min=0)[..., None].expand(-1, -1, hidden.size(-1))
        return hidden.gather(1, idx)

    def relation_logits(self, words: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Masked relation logits (P, R): classes a pair's entity types cannot take are -inf."""
        logits = self.relation_head(words, pairs)
        mask = self.allowed[pairs[:, 5], pairs[:, 6]]
        return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)

    def forward(self, input_ids, attention_mask, word_index, token_type_ids=None, labels=None, pairs=None, pair_labels=None,
                relation_weight: float = 1.0):
        hidden = self.dropout(self.encode(input_ids, attention_mask, token_type_ids))
        logits = self.classifier(hidden)  # (B, T, L)
        out = {"logits": logits}
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
            out["tag_loss"] = loss.detach()
        if pairs is not None and pairs.numel():
            words = self.gather_words(hidden, word_index)
            rel = self.relation_logits(words, pairs)
            out["relation_logits"] = rel
            if pair_labels is not None:
                rel_loss = nn.functional.cross_entropy(rel, pair_labels)
                out["relation_loss"] = rel_loss.detach()
                loss = relation_weight * rel_loss if loss is None else loss + relation_weight * rel_loss
        out["loss"] = loss
        return out

    # --- construction, saving, loading -----------------------------------------------------
    @classmethod
    def from_encoder(cls, encoder: nn.Module, settings: MarsadSettings | None = None) -> "MarsadModel":
        """New heads on top of an existing encoder (pretrained or built from scratch)."""
        config = encoder.config
        attach_settings(config, settings or MarsadSettings())
        return cls(config, encoder)

    @property
    def base_model_prefix(self) -> str:
        return getattr(self.encoder, "base_model_prefix", "") or "encoder"

    def save_pretrained(self, save_directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` (a token-classification layout), and
        ``lexicon.json`` where the model has a lexicon."""
        from safetensors.torch import save_file

        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        prefix = self.base_model_prefix
        state = {}
        for k, v in self.encoder.state_dict().items():
            state[f"{prefix}.{k}"] = v.detach().contiguous().cpu()
        for name in ("classifier", "relation_head"):
            for k, v in getattr(self, name).state_dict().items():
                state[f"{name}.{k}"] = v.detach().contiguous().cpu()
        self.config.save_pretrained(out)
        tmp = out / (WEIGHTS_NAME + ".tmp")
        # one metadata key: safetensors writes the metadata map in hash order, so a second key made
        # two saves of the same weights differ in their bytes (marsad's format version is in config.json)
        save_file(state, str(tmp), metadata={"format": "pt"})
        tmp.replace(out / WEIGHTS_NAME)
        if self.lexicon is not None:
            self.lexicon.save(out)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "MarsadModel":
        """Load a folder written by :meth:`save_pretrained` (clear errors for broken folders)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoConfig

        path = Path(path)
        if not path.is_dir():
            raise ModelLoadError(f"{path}: no such model folder; train one with `marsad train configs/tiny.yaml --output-dir {path}`")
        for name in ("config.json", WEIGHTS_NAME):
            if not (path / name).is_file():
                hint = " (only safetensors weights are read, never pickle files)" if name == WEIGHTS_NAME and any(path.glob("*.bin")) else ""
                raise ModelLoadError(f"{path}: {name} is missing{hint}; the folder is incomplete. Save it again or point at a complete one")
        try:
            json.loads((path / "config.json").read_text(encoding="utf-8"))
            config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
        except (ValueError, OSError, KeyError) as e:
            raise ModelLoadError(f"{path}/config.json cannot be read as a model config: {str(e).splitlines()[0]}") from None
        try:
            model = cls(config)
        except ConfigError as e:
            raise ModelLoadError(f"{path}/config.json: {e}") from None
        try:
            state = load_file(str(path / WEIGHTS_NAME))
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelLoadError(f"{path}/{WEIGHTS_NAME} is corrupted or not a safetensors file ({e}); re-save or re-download the model") from None
        bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise ModelLoadError(f"{path}/{WEIGHTS_NAME} is corrupted: {len(bad)} tensors hold NaN or infinite values "
                                 f"(e.g. {bad[0]}); re-save or re-download the model")
        model.load_flat_state(state, where=str(path))
        if model.settings.lexicon:
            from .lexicon import LEXICON_NAME, Lexicon

            if not (path / LEXICON_NAME).is_file():
                raise ModelLoadError(f"{path}: {LEXICON_NAME} is missing; the folder is incomplete. Save it again or point at a complete one")
            try:
                model.lexicon = Lexicon.load(path)
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ModelLoadError(f"{path}/{LEXICON_NAME} is corrupted ({type(e).__name__}: {e}); "
                                     "re-save the model or retrain it") from None
        return model

    def load_flat_state(self, state: dict, where: str = "<state>") -> None:
        prefix = self.base_model_prefix + "."
        parts = {"encoder": {}, "classifier": {}, "relation_head": {}}
        for k, v in state.items():
            if k.startswith(prefix):
                parts["encoder"][k[len(prefix) :]] = v
            elif k.startswith("classifier."):
                parts["classifier"][k[len("classifier.") :]] = v
            elif k.startswith("relation_head."):
                parts["relation_head"][k[len("relation_head.") :]] = v
        for name, sub in parts.items():
            module = getattr(self, name)
            try:
                missing, unexpected = module.load_state_dict(sub, strict=False)
            except RuntimeError as e:
                raise ModelLoadError(f"{where}: weights do not fit the config ({str(e).splitlines()[-1].strip()}); the folder's files do not belong together") from None
            missing = [m for m in missing if not m.endswith("position_ids")]
            if missing:
                raise ModelLoadError(f"{where}: {len(missing)} weights missing from {WEIGHTS_NAME} for {name} (e.g. {missing[0]}); the file is incomplete or from another model")


def _encoder_from_config(config) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:  # encoders without a pooler option
        return AutoModel.from_config(config)


def load_encoder(name_or_path: str, log=print) -> nn.Module:
    """A pretrained encoder from the hub or a local folder (never remote code, never pickled
    code: a ``pytorch_model.bin`` is read with ``weights_only=True`` and converted once to
    safetensors, see :mod:`marsad.model.weights`)."""
    from transformers import AutoModel

    from .weights import safetensors_folder

    source = safetensors_folder(name_or_path, log=log)
    kw = {"trust_remote_code": False, "use_safetensors": True}  # never unpickle weights
    try:
        return AutoModel.from_pretrained(source, add_pooling_layer=False, **kw)
    except TypeError:
        return AutoModel.from_pretrained(source, **kw)


