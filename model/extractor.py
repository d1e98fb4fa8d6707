"""``Extractor``: whole articles in, the project's JSONL records out, fast.

>>> ex = Extractor.from_pretrained("runs/tiny", device="auto")
>>> [record] = ex.extract(["قتل ثلاثة مدنيين في قصف على حلب."])

How a batch of texts is processed:
1. each text is split into sentences (relations never cross them), each sentence into spec
   words with character offsets;
2. words are normalised and cut into sub-words; sentences longer than the encoder's limit are
   windowed with overlap;
3. windows are sorted by length and run in padded batches of about ``batch_tokens`` positions
   (little padding, ``torch.inference_mode``, autocast on GPU);
4. each word takes its label scores from the window where it sits furthest from an edge; the
   best valid IOB2 sequence (Viterbi) gives the spans; type-compatible pairs of the sentence's
   entities go through the relation head; CASUALTY spans get ``count``/``approximate``/``status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from .casualty import normalize_casualty
from .encoding import Window, choose_windows, make_windows, subword_words
from .modeling import MarsadModel, ModelLoadError
from .schema import NO_RELATION, PRECISIONS
from .tags import viterbi_iob2
from .text import split_sentences, tokenize

__all__ = ["Extractor", "PRECISIONS"]



class Extractor:
    """Entity, relation and casualty extraction with a trained marsad model."""

    def __init__(self, model: MarsadModel, tokenizer, device: str = "auto", precision: str = "auto",
                 batch_tokens: int | None = None, batch_size: int | None = None, model_dir: str | Path | None = None,
                 gazetteer=None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = _resolve_device(device)
        if precision == "auto":
            # GPU: half-precision autocast. CPU: fp32. The int8 paths are about 2x (torch) and 2.7x
            # (ONNX Runtime) faster at BERT-base size with >= 99% entity agreement, but dynamic
            # quantisation scales activations per batch, so a sentence's scores (rarely its entities)
            # depend on which sentences share its batch: opt in with precision="int8"/"onnx-int8".
            precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if self.device.type == "cuda" else "fp32"
        if precision in ("fp16", "bf16") and self.device.type != "cuda":
            raise ValueError(f"precision {precision} needs a CUDA GPU; on CPU use fp32 or int8")
        if precision in ("int8", "onnx-int8", "onnx-fp32") and self.device.type != "cpu":
            raise ValueError(f"precision {precision} runs on the CPU; use --device cpu, or fp16/bf16 on a GPU")
        self.precision = precision
        self.tokenizer = tokenizer
        self.settings = model.settings
        if self.settings.gazetteer and gazetteer is None:
            raise ModelLoadError("this model reads place-name gazetteer features; pass its Gazetteer (gazetteer.txt)")
        self.gazetteer = gazetteer if self.settings.gazetteer else None
        model = model.eval()
        if precision == "int8":
            model = _quantize_int8(model)
        self._onnx = None  # an onnx_backend.OnnxEncoder standing in for model.encode
        if precision.startswith("onnx-"):
            from .onnx_backend import load_onnx_encoder

            self._onnx = load_onnx_encoder(model, model_dir, variant=precision[len("onnx-"):])
        self.model = model.to(self.device)
        gpu = self.device.type == "cuda"
        self.batch_tokens = batch_tokens or (16384 if gpu else 1024)
        self.batch_size = batch_size or (256 if gpu else 32)
        self.labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        self.entity_labels = self.settings.entity_labels
        self.relation_labels = self.settings.relation_labels
        self.pair_types = self.model.pair_types

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", precision: str = "auto", **kwargs) -> "Extractor":
        """Load a saved marsad model folder (``marsad train`` output)."""
        from transformers import AutoTokenizer

        model = MarsadModel.from_pretrained(path)
        gazetteer = None
        if model.settings.gazetteer:
            from .gazetteer import GAZETTEER_NAME, Gazetteer

            if not (Path(path) / GAZETTEER_NAME).is_file():
                raise ModelLoadError(f"{path}: {GAZETTEER_NAME} is missing; the folder is incomplete")
            gazetteer = Gazetteer.load(path)
        kwargs.setdefault("gazetteer", gazetteer)
        if not (Path(path) / "tokenizer.json").is_file():
            raise ModelLoadError(f"{path}: tokenizer.json is missing; the folder is incomplete (save the tokenizer with the model)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True, trust_remote_code=False)
        except (OSError, ValueError, TypeError) as e:
            raise ModelLoadError(f"{path}: the tokenizer files are missing or broken ({str(e).splitlines()[0]})") from None
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(f"{path}: needs a fast tokenizer (tokenizer.json) for exact offsets")
        if len(tokenizer) > model.config.vocab_size:
            raise ModelLoadError(f"{path}: the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}; "
                                 "the tokenizer and weights do not belong together")
        kwargs.setdefault("model_dir", path)  # where an ONNX export is cached
        return cls(model, tokenizer, device=device, precision=precision, **kwargs)

    # --- public API ------------------------------------------------------------------------
    def extract(self, texts: str | Iterable[str], *, progress: bool = False) -> list[dict]:
        """One record per text: ``{"text", "entities", "relations"}`` (see ``ANNOTATION.md``).

        A single string gives a list of one record. Entities carry ``start``/``end`` (offsets
        into the original text), ``label``, ``text``, ``score``; CASUALTY entities also
        ``count``, ``approximate`` and ``status``. A text that is not a string gets a record
        with an ``error`` field instead of failing the batch.
        """
        if isinstance(texts, str):
            texts = [texts]
        elif texts is None or isinstance(texts, (bytes, bytearray, dict)) or not hasattr(texts, "__iter__"):
            raise TypeError(f"extract() takes a string or a list of strings, got {type(texts).__name__}"
                            + ("; decode bytes first, e.g. data.decode('utf-8')" if isinstance(texts, (bytes, bytearray)) else ""))
        return [rec for _, rec in self.extract_iter(enumerate(texts), progress=progress)]

    def extract_iter(self, items: Iterable[tuple[object, object]], *, chunk_chars: int = 200_000,
                     progress: bool = False, total: int | None = None) -> Iterator[tuple[object, dict]]:
        """Stream ``(key, record)`` for ``(key, text)`` items, in input order, a chunk at a time."""
        bar = _progress(progress, total)
        chunk: list[tuple[object, object]] = []
        size = 0
        for key, text in items:
            chunk.append((key, text))
            size += len(text) if isinstance(text, str) else 0
            if size >= chunk_chars or len(chunk) >= 512:
                yield from self._run_chunk(chunk, bar)
                chunk, size = [], 0
        if chunk:
            yield from self._run_chunk(chunk, bar)
        if bar is not None:
            bar.close()

    # --- internals -------------------------------------------------------------------------
    def _run_chunk(self, chunk, bar) -> Iterator[tuple[object, dict]]:
        sentences: list[tuple[int, int, int]] = []  # (item, start, end)
        for i, (_, text) in enumerate(chunk):
            if isinstance(text, str):
                sentences += [(i, s, e) for s, e in split_sentences(text)]
        results = self._predict_sentences([chunk[i][1][s:e] for i, s, e in sentences])
        per_item: list[tuple[list, list]] = [([], []) for _ in chunk]
        for (i, s, _), (ents, rels) in zip(sentences, results):
            ents_out, rels_out = per_item[i]
            base = len(ents_out)
            for ent in ents:
                ent["start"] += s
                ent["end"] += s
                ents_out.append(ent)
            for rel in rels:
                rels_out.append({**rel, "head": rel["head"] + base, "tail": rel["tail"] + base})
        for (key, text), (ents, rels) in zip(chunk, per_item):
            if not isinstance(text, str):
                record = {"text": None, "entities": [], "relations": [],
                          "error": f"text must be a string, got {type(text).__name__}"}
            else:
                record = {"text": text, "entities": ents, "relations": rels}
            if bar is not None:
                bar.update(1)
            yield key, record

    def predict_relations(self, texts: list[str], entities: list[list[dict]]) -> list[list[dict]]:
        """Relations between *given* entities (e.g. gold ones), per text; heads/tails index them."""
        sentences, given, owners = [], [], []
        for i, (text, ents) in enumerate(zip(texts, entities)):
            for s, e in split_sentences(text):
                idx = [k for k, ent in enumerate(ents) if ent["start"] >= s and ent["end"] <= e]
                sentences.append(text[s:e])
                given.append([(ents[k]["start"] - s, ents[k]["end"] - s, ents[k]["label"]) for k in idx])
                owners.append((i, idx))
        out: list[list[dict]] = [[] for _ in texts]
        for (i, idx), (_, rels) in zip(owners, self._predict_sentences(sentences, given)):
            out[i] += [{**r, "head": idx[r["head"]], "tail": idx[r["tail"]]} for r in rels]
        return out

    def _predict_sentences(self, sentences: list[str], given: list[list[tuple[int, int, str]]] | None = None
                           ) -> list[tuple[list[dict], list[dict]]]:
        tokens = [tokenize(s) for s in sentences]
        encoded = subword_words(self.tokenizer, [[t.text for t in ts] for ts in tokens])
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        windows: list[Window] = []
        owned: list[list[int]] = []
        for i, (ids, first) in enumerate(encoded):
            types = self.gazetteer.flags([t.text for t in tokens[i]]) if self.gazetteer else None
            ws = make_windows(i, ids, first, self.settings.max_length, self.settings.stride, cls_id, sep_id, types) if first else []
            owned.append(list(range(len(windows), len(windows) + len(ws))))
            windows += ws
        states, probs = self._run_windows(windows)
        out = []
        word_states = []
        entity_lists = []
        for i, ts in enumerate(tokens):
            if not ts:
                word_states.append(None)
                entity_lists.append([])
                continue
            ws = [windows[k] for k in owned[i]]
            if len(ws) == 1:
                h, p = states[owned[i][0]], probs[owned[i][0]]
            else:
                pick = choose_windows(ws, len(ts))
                h = torch.stack([states[owned[i][k]][j] for k, j in pick])
                p = torch.stack([probs[owned[i][k]][j] for k, j in pick])
            word_states.append(h)
            if given is None:
                entity_lists.append(self._decode_entities(sentences[i], ts, p))
            else:
                entity_lists.append(self._given_entities(sentences[i], ts, given[i]))
        relations = self._relations(word_states, entity_lists)
        for ents, rels in zip(entity_lists, relations):
            out.append(([e for e, _ in ents], rels))
        return out

    @torch.inference_mode()
    def _run_windows(self, windows: list[Window]):
        states: list = [None] * len(windows)
        probs: list = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids))
        gpu = self.device.type == "cuda"
        pad_id = self.tokenizer.pad_token_id or 0
        for batch in _length_batches(order, windows, self.batch_tokens, self.batch_size):
            width = max(len(windows[k].input_ids) for k in batch)
            n_words = max(len(windows[k].word_index) for k in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            widx = torch.full((len(batch), n_words), -1, dtype=torch.long)
            types = torch.zeros((len(batch), width), dtype=torch.long)
            for r, k in enumerate(batch):
                w = windows[k]
                ids[r, : len(w.input_ids)] = torch.tensor(w.input_ids)
                mask[r, : len(w.input_ids)] = 1
                widx[r, : len(w.word_index)] = torch.tensor(w.word_index)
                if w.token_type_ids is not None:
                    types[r, : len(w.token_type_ids)] = torch.tensor(w.token_type_ids)
            if gpu:
                ids, mask, widx, types = (t.pin_memory().to(self.device, non_blocking=True) for t in (ids, mask, widx, types))
            with torch.autocast(self.device.type, dtype=_AUTOCAST.get(self.precision, torch.float32),
                                enabled=self.precision in _AUTOCAST):
                encode = self._onnx or self.model.encode  # ONNX Runtime: numpy in and out, torch at the edges
                hidden = encode(ids, mask, types)  # (B, T, H)
                words = self.model.gather_words(hidden, widx)  # (B, W, H)
                logits = self.model.classifier(words)  # (B, W, L)
            p = logits.float().softmax(-1).cpu()
            words = words.float().cpu()
            for r, k in enumerate(batch):
                n = len(windows[k].word_index)
                states[k], probs[k] = words[r, :n], p[r, :n]
        return states, probs

    def _decode_entities(self, sentence: str, tokens, probs: torch.Tensor) -> list[tuple[dict, tuple[int, int, int]]]:
        tags = viterbi_iob2(probs.clamp_min(1e-9).log(), self.labels)
        score = probs[torch.arange(len(tags)), torch.tensor([self._label_index[t] for t in tags])]
        spans = []
        for w, tag in enumerate(tags):
            if tag.startswith("B-"):
                spans.append([w, w + 1, tag[2:]])
            elif tag.startswith("I-"):
                spans[-1][1] = w + 1
        ents = []
        for ws, we, label in spans:
            s, e = tokens[ws].start, tokens[we - 1].end
            ent = {"start": s, "end": e, "label": label, "text": sentence[s:e],
                   "score": round(float(score[ws:we].mean()), 4)}
            if label == "CASUALTY":
                c = normalize_casualty(sentence[s:e], sentence[:s], sentence[e:])
                ent.update(count=c.count, approximate=c.approximate, status=c.status)
            ents.append((ent, (ws, we, self.entity_labels.index(label))))
        return ents

    def _given_entities(self, sentence: str, tokens, spans) -> list[tuple[dict, tuple[int, int, int]]]:
        starts = {t.start: i for i, t in enumerate(tokens)}
        ends = {t.end: i + 1 for i, t in enumerate(tokens)}
        return [({"start": s, "end": e, "label": label, "text": sentence[s:e]},
                 (starts[s], ends[e], self.entity_labels.index(label))) for s, e, label in spans]

    @torch.inference_mode()
    def _relations(self, word_states, entity_lists) -> list[list[dict]]:
        rels: list[list[dict]] = [[] for _ in entity_lists]
        allowed = set(self.pair_types)
        pairs, owners = [], []
        rows = [i for i, ents in enumerate(entity_lists) if len(ents) > 1]
        for r, i in enumerate(rows):
            ents = entity_lists[i]
            for a, (_, (hs, he, ht)) in enumerate(ents):
                for b, (_, (ts, te, tt)) in enumerate(ents):
                    # a relation between words more than MAX_PAIR_DISTANCE apart is not a sentence's
                    # relation but a run-on text's (a scraped page without full stops): skip it
                    if a != b and (ht, tt) in allowed and abs(ts - hs) <= MAX_PAIR_DISTANCE:
                        pairs.append([r, hs, he, ts, te, ht, tt])
                        owners.append((i, a, b))
        if not pairs:
            return rels
        width = max(word_states[i].size(0) for i in rows)
        words = torch.zeros(len(rows), width, word_states[rows[0]].size(-1))
        for r, i in enumerate(rows):
            words[r, : word_states[i].size(0)] = word_states[i]
        pairs_t = torch.tensor(pairs, dtype=torch.long, device=self.device)
        words = words.to(self.device)
        p = self.model.relation_logits(words, pairs_t).float().softmax(-1).cpu()
        score, best = p.max(-1)
        for (i, a, b), s, k in zip(owners, score.tolist(), best.tolist()):
            label = self.relation_labels[k]
            if label != NO_RELATION:
                rels[i].append({"head": a, "tail": b, "label": label, "score": round(s, 4)})
        return rels


_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
MAX_PAIR_DISTANCE = 120  # words; corpus relations span at most a few dozen


def _length_batches(order: list[int], windows: list[Window], batch_tokens: int, batch_size: int) -> Iterator[list[int]]:
    """Consecutive runs of length-sorted windows, each at most ``batch_tokens`` padded positions."""
    batch: list[int] = []
    for k in order:
        width = len(windows[k].input_ids)
        if batch and (len(batch) + 1 > batch_size or width * (len(batch) + 1) > batch_tokens):
            yield batch
            batch = []
        batch.append(k)
    if batch:
        yield batch


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available; use --device cpu")
    return dev


def _quantize_int8(model: MarsadModel) -> MarsadModel:
    """Dynamic int8 quantisation of every Linear layer (weights int8, activations quantised on
    the fly): about 2x faster on CPUs, with the agreement checked by ``bench/throughput.py``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _progress(enabled: bool, total: int | None):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="text", desc="extract")
