"""``Extractor``: whole articles in, the project's JSONL records out, fast.

>>> ex = Extractor.from_pretrained("runs/tiny", device="auto")
>>> [record] = ex.extract(["قتل ثلاثة مدنيين في قصف على حلب."])

How a batch of texts is processed:
1. each text is split into sentences (relations never cross them), each sentence into spec
   words with character offsets;
2. words are normalised and cut into sub-words; sentences longer than the encoder's limit are
   windowed with overlap;
3. windows are sorted by length and cut into padded batches of at most ``batch_tokens``
   positions where padding plus per-call cost is least, run under ``torch.inference_mode``:
   on a CPU through the lean BERT forward (``fastbert.py``; bf16 matmuls on CPUs with AMX or
   AVX512-BF16), on a GPU with fp16/bf16 autocast;
4. each word takes its label scores from the window where it sits furthest from an edge; the
   best valid IOB2 sequence (Viterbi) gives the spans; type-compatible pairs of the sentence's
   entities go through the relation head; CASUALTY spans get ``count``/``approximate``/``status``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from .casualty import normalize_casualty
from .encoding import Window, choose_windows, make_windows, subword_words
from .fastbert import fast_bert
from .modeling import MarsadModel, ModelLoadError
from .schema import NO_RELATION, PRECISIONS
from .tags import viterbi_iob2_batch
from .text import normalize_word, split_sentences, tokenize

__all__ = ["Extractor", "PRECISIONS", "auto_precision", "cpu_has_fast_bf16"]



class Extractor:
    """Entity, relation and casualty extraction with a trained marsad model.

    The CPU fast paths take a snapshot of the encoder's weights when the Extractor is built:
    after changing the model's weights (training), build a new Extractor."""

    def __init__(self, model: MarsadModel, tokenizer, device: str = "auto", precision: str = "auto",
                 batch_tokens: int | None = None, batch_size: int | None = None, model_dir: str | Path | None = None,
                 gazetteer=None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = _resolve_device(device)
        if precision == "auto":
            precision = auto_precision(self.device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA GPU; on CPU use bf16 (CPUs with AMX or AVX512-BF16), fp32 or int8")
        if precision == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            raise ValueError("precision bf16 on this CPU would be emulated (no AMX or AVX512-BF16) and several times slower "
                             "than fp32; use fp32, int8 or onnx-int8")
        if precision in ("int8", "onnx-int8", "onnx-fp32") and self.device.type != "cpu":
            raise ValueError(f"precision {precision} runs on the CPU; use --device cpu, or fp16/bf16 on a GPU")
        self.precision = precision
        self.tokenizer = tokenizer
        self.settings = model.settings
        if self.settings.gazetteer and gazetteer is None:
            raise ModelLoadError("this model reads place-name gazetteer features; pass its Gazetteer (gazetteer.txt)")
        self.gazetteer = gazetteer if self.settings.gazetteer else None
        model = model.eval()
        self._fast = None  # a fastbert.FastBert standing in for model.encode on the CPU
        if precision == "int8":
            model = _quantize_int8(model)
        elif precision in ("fp32", "bf16") and self.device.type == "cpu":
            # BERT encoders run a lean forward (fused QKV, SDPA, no per-layer overhead); in bf16
            # its matmul weights are bf16 copies (AMX / AVX512-BF16 matmuls, fp32 accumulation)
            # and the residual stream, layer norms, embeddings and both heads stay fp32.
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            self._fast = fast_bert(model.encoder, dtype)
            if self._fast is None and precision == "bf16":  # another encoder: bf16 Linear copies under autocast
                model = copy.deepcopy(model)  # a copy, like int8's, so the caller's model is untouched
                for m in model.encoder.modules():
                    if isinstance(m, torch.nn.Linear):
                        m.to(torch.bfloat16)
        self._onnx = None  # an onnx_backend.OnnxEncoder standing in for model.encode
        if precision.startswith("onnx-"):
            from .onnx_backend import load_onnx_encoder

            self._onnx = load_onnx_encoder(model, model_dir, variant=precision[len("onnx-"):])
        self.model = model.to(self.device)
        if self._fast is not None:
            self._fast = self._fast.to(self.device)
        gpu = self.device.type == "cuda"
        # CPU: ~1k positions a batch keeps fp32 activations in cache; AMX bf16 tiles want ~2k
        self.batch_tokens = batch_tokens or (16384 if gpu else 2048 if precision == "bf16" else 1024)
        self.batch_size = batch_size or (256 if gpu else 128 if precision == "bf16" else 32)
        # an encoder call's fixed cost in padded positions: batches are cut to minimise padding
        # plus calls (measured on 2 CPU cores at the tiny size; a GPU call costs far more)
        self.batch_cost = 4096 if gpu else 192
        self.labels = [model.config.id2label[i] for i in range(len(model.config.id2label))]
        # per tag index: the entity type it begins (-1 for O and I-), whether it continues a span
        self._begin_type = np.array([self.settings.entity_labels.index(t[2:]) if t.startswith("B-") else -1 for t in self.labels])
        self._inside = np.array([t.startswith("I-") for t in self.labels])
        self.entity_labels = self.settings.entity_labels
        self.relation_labels = self.settings.relation_labels
        self.pair_types = self.model.pair_types
        self._allowed_pairs = set(self.pair_types)
        self._subwords: dict[str, tuple[int, ...]] = {}  # normalised word -> its sub-word ids

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

    def clear_caches(self) -> None:
        """Forget the words seen so far (normalisation and sub-word caches), e.g. to time a cold start."""
        normalize_word.cache_clear()
        self._subwords.clear()

    # --- internals -------------------------------------------------------------------------
    def _run_chunk(self, chunk, bar) -> Iterator[tuple[object, dict]]:
        sentences: list[tuple[int, int, int]] = []  # (item, start, end)
        for i, (_, text) in enumerate(chunk):
            if isinstance(text, str):
                sentences += [(i, s, e) for s, e in split_sentences(text)]
        with _gc_paused():
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
        if len(self._subwords) > 200_000:  # bounded: a long stream of new words starts it afresh
            self._subwords.clear()
        encoded = subword_words(self.tokenizer, [[t.text for t in ts] for ts in tokens], self._subwords)
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        windows: list[Window] = []
        owned: list[list[int]] = []
        for i, (ids, first) in enumerate(encoded):
            types = self.gazetteer.flags([t.text for t in tokens[i]]) if self.gazetteer else None
            ws = make_windows(i, ids, first, self.settings.max_length, self.settings.stride, cls_id, sep_id, types) if first else []
            owned.append(list(range(len(windows), len(windows) + len(ws))))
            windows += ws
        out: list[tuple[list[dict], list[dict]]] = [([], []) for _ in sentences]
        single = {ks[0]: i for i, ks in enumerate(owned) if len(ks) == 1}
        parts: dict[int, tuple[torch.Tensor, np.ndarray]] = {}  # window -> (word states, probs) of long sentences
        for batch, words, probs in self._run_windows(windows):
            rows = [r for r, k in enumerate(batch) if k in single]
            if rows:
                if len(rows) < len(batch):  # some rows are windows of long sentences: decoded below
                    words_rows, probs_rows = words[torch.tensor(rows, device=words.device)], probs[rows]
                else:
                    words_rows, probs_rows = words, probs
                idx = [single[batch[r]] for r in rows]
                for i, res in zip(idx, self._decode_rows(words_rows, probs_rows, idx, sentences, tokens, given)):
                    out[i] = res
            for r, k in enumerate(batch):
                if k not in single:
                    n = len(windows[k].word_index)
                    parts[k] = (words[r, :n], probs[r, :n])
        # sentences longer than one window: each word from the window where it sits furthest from an edge
        long = [i for i, ks in enumerate(owned) if len(ks) > 1]
        for g in range(0, len(long), 16):
            idx = long[g : g + 16]
            width = max(len(tokens[i]) for i in idx)
            hidden = parts[owned[idx[0]][0]][0].size(-1)
            words = parts[owned[idx[0]][0]][0].new_zeros(len(idx), width, hidden)
            probs = np.zeros((len(idx), width, len(self.labels)), dtype=np.float32)
            for r, i in enumerate(idx):
                ws = [windows[k] for k in owned[i]]
                for w, (k, j) in enumerate(choose_windows(ws, len(tokens[i]))):
                    h, p = parts[owned[i][k]]
                    words[r, w], probs[r, w] = h[j], p[j]
            for i, res in zip(idx, self._decode_rows(words, probs, idx, sentences, tokens, given)):
                out[i] = res
        return out

    @torch.inference_mode()
    def _run_windows(self, windows: list[Window]) -> Iterator[tuple[list[int], torch.Tensor, np.ndarray]]:
        """``(window numbers, word states (B, W, H) float on the device, tag probabilities
        (B, W, L) numpy)`` per padded batch of length-sorted windows."""
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids))
        gpu = self.device.type == "cuda"
        pad_id = self.tokenizer.pad_token_id or 0
        for batch in _length_batches(order, windows, self.batch_tokens, self.batch_size, self.batch_cost):
            width = max(len(windows[k].input_ids) for k in batch)
            n_words = max(len(windows[k].word_index) for k in batch)
            ids = np.full((len(batch), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            widx = np.zeros((len(batch), n_words), dtype=np.int64)
            types = np.zeros((len(batch), width), dtype=np.int64)
            for r, k in enumerate(batch):
                w = windows[k]
                ids[r, : len(w.input_ids)] = w.input_ids
                mask[r, : len(w.input_ids)] = 1
                widx[r, : len(w.word_index)] = w.word_index
                if w.token_type_ids is not None:
                    types[r, : len(w.token_type_ids)] = w.token_type_ids
            ids, mask, widx, types = (torch.from_numpy(t) for t in (ids, mask, widx, types))
            if gpu:
                ids, mask, widx, types = (t.pin_memory().to(self.device, non_blocking=True) for t in (ids, mask, widx, types))
            with torch.autocast(self.device.type, dtype=_AUTOCAST.get(self.precision, torch.float32),
                                enabled=self.precision in _AUTOCAST and self._fast is None):
                # ONNX Runtime: numpy in and out, torch at the edges; FastBert: fp32 out
                encode = self._onnx or self._fast or self.model.encode
                hidden = encode(ids, mask, types)  # (B, T, H)
                if not gpu:
                    hidden = hidden.float()  # a bf16 encoder on CPU; the heads are fp32
                words = self.model.gather_words(hidden, widx)  # (B, W, H)
                logits = self.model.classifier(words)  # (B, W, L)
            probs = logits.float().softmax(-1).cpu().numpy()
            yield batch, words.float(), probs

    def _decode_rows(self, words: torch.Tensor, probs: np.ndarray, idx: list[int], sentences: list[str], tokens,
                     given) -> list[tuple[list[dict], list[dict]]]:
        """Entities (Viterbi over the batch, or the given ones) and relations of whole sentences
        ``idx``, whose word states and tag probabilities are the rows of ``words``/``probs``."""
        lengths = np.array([len(tokens[i]) for i in idx])
        if given is None:
            log_probs = np.log(np.maximum(probs, np.float32(1e-9)))
            tags = viterbi_iob2_batch(log_probs, lengths, self.labels)
            chosen = np.take_along_axis(probs, tags[..., None], -1)[..., 0]
            entity_lists = [self._decode_entities(sentences[i], tokens[i], tags[r, : lengths[r]], chosen[r])
                            for r, i in enumerate(idx)]
        else:
            entity_lists = [self._given_entities(sentences[i], tokens[i], given[i]) for i in idx]
        relations = self._relations(words, entity_lists)
        return [([e for e, _ in ents], rels) for ents, rels in zip(entity_lists, relations)]

    def _decode_entities(self, sentence: str, tokens, tags: np.ndarray, chosen: np.ndarray
                         ) -> list[tuple[dict, tuple[int, int, int]]]:
        """Spans of one sentence's label indices ``tags`` (valid IOB2); ``chosen`` holds each
        word's probability of its label, averaged over the span into the entity's score."""
        ents = []
        begins = np.flatnonzero(self._begin_type[tags] >= 0)
        for ws in begins.tolist():
            we = ws + 1
            while we < len(tags) and self._inside[tags[we]]:
                we += 1
            t = int(self._begin_type[tags[ws]])
            label = self.entity_labels[t]
            s, e = tokens[ws].start, tokens[we - 1].end
            ent = {"start": s, "end": e, "label": label, "text": sentence[s:e],
                   "score": round(float(chosen[ws:we].mean(dtype=np.float64)), 4)}
            if label == "CASUALTY":
                c = normalize_casualty(sentence[s:e], sentence[:s], sentence[e:])
                ent.update(count=c.count, approximate=c.approximate, status=c.status)
            ents.append((ent, (ws, we, t)))
        return ents

    def _given_entities(self, sentence: str, tokens, spans) -> list[tuple[dict, tuple[int, int, int]]]:
        starts = {t.start: i for i, t in enumerate(tokens)}
        ends = {t.end: i + 1 for i, t in enumerate(tokens)}
        return [({"start": s, "end": e, "label": label, "text": sentence[s:e]},
                 (starts[s], ends[e], self.entity_labels.index(label))) for s, e, label in spans]

    @torch.inference_mode()
    def _relations(self, words: torch.Tensor, entity_lists) -> list[list[dict]]:
        """Relations of each row's entities; ``words`` (R, W, H) holds row r's word states."""
        rels: list[list[dict]] = [[] for _ in entity_lists]
        pairs, owners = [], []
        for r, ents in enumerate(entity_lists):
            if len(ents) < 2:
                continue
            for a, (_, (hs, he, ht)) in enumerate(ents):
                for b, (_, (ts, te, tt)) in enumerate(ents):
                    # a relation between words more than MAX_PAIR_DISTANCE apart is not a sentence's
                    # relation but a run-on text's (a scraped page without full stops): skip it
                    if a != b and (ht, tt) in self._allowed_pairs and abs(ts - hs) <= MAX_PAIR_DISTANCE:
                        pairs.append((r, hs, he, ts, te, ht, tt))
                        owners.append((r, a, b))
        if not pairs:
            return rels
        pairs_t = torch.tensor(pairs, dtype=torch.long, device=words.device)
        p = self.model.relation_logits(words, pairs_t).float().softmax(-1).cpu()
        score, best = p.max(-1)
        for (r, a, b), s, k in zip(owners, score.tolist(), best.tolist()):
            label = self.relation_labels[k]
            if label != NO_RELATION:
                rels[r].append({"head": a, "tail": b, "label": label, "score": round(s, 4)})
        return rels


_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}
MAX_PAIR_DISTANCE = 120  # words; corpus relations span at most a few dozen


def _length_batches(order: list[int], windows: list[Window], batch_tokens: int, batch_size: int,
                    batch_cost: int) -> Iterator[list[int]]:
    """Consecutive runs of length-sorted windows, each at most ``batch_tokens`` padded positions
    (a longer window alone) and ``batch_size`` rows, cut where they cost least in all: padded
    positions plus ``batch_cost`` positions' worth for every encoder call (dynamic programming;
    a greedy fill pads short windows to long ones when a call covers few sentences)."""
    widths = np.fromiter((len(windows[k].input_ids) for k in order), dtype=np.int64, count=len(order))
    n = len(widths)
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: least cost of windows [0, j)
    cut = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that best split starts
    for j in range(1, n + 1):
        w = int(widths[j - 1])  # the widest window of a batch ending at j
        lo = max(0, j - max(1, min(batch_size, batch_tokens // w)))
        cost = best[lo:j] + w * np.arange(j - lo, 0, -1)
        k = int(cost.argmin())
        best[j], cut[j] = cost[k] + batch_cost, lo + k
    bounds = []
    j = n
    while j > 0:
        bounds.append((int(cut[j]), j))
        j = int(cut[j])
    for i, j in reversed(bounds):
        yield order[i:j]


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector for one chunk. A chunk makes many small objects
    that live until its end (tokens, windows, entity dicts); with the collector running they
    are promoted to the oldest generation and set off full collections of everything the
    process holds (torch and transformers objects included): up to a third of a chunk's time
    at the offline size. They are freed by reference counting when the chunk ends; the collector is
    switched back on (if it was on) and catches anything cyclic later, as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def auto_precision(device: str | torch.device = "cpu") -> str:
    """What ``precision="auto"`` picks: on a GPU bf16 (fp16 where bf16 is unsupported); on a
    CPU bf16 where it multiplies bf16 natively (AMX, AVX512-BF16: about 3x fp32 at BERT-base
    size, >= 99% entity agreement), else fp32. bf16 scores can move slightly (by 1e-4 in the
    case seen) with the batch a sentence lands in (its padded length changes the reduction order);
    use fp32 where runs must match to the record. The int8 paths stay opt-in: dynamic
    quantisation scales activations per batch, so their scores depend more on which sentences
    share a batch."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX tiles or AVX512-BF16), so bf16 beats fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        flags = ""
    if any(f" {flag}" in flags for flag in ("amx_bf16", "avx512_bf16")):
        return True
    try:  # other systems: ask oneDNN through torch
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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
