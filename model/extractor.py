"""``Extractor``: whole articles in, the project's JSONL records out, fast.

>>> ex = Extractor.from_pretrained("runs/tiny", device="auto")
>>> [record] = ex.extract(["قتل ثلاثة مدنيين في قصف على حلب."])

How a batch of texts is processed:
1. each text is split into sentences (relations never cross them), each sentence into spec
   words with character offsets;
2. ``encoding.py`` (shared with training) normalises the words, cuts them into sub-words and
   windows sentences longer than the encoder's limit, with overlap;
3. windows are sorted by length and cut into padded batches of at most ``batch_tokens``
   positions where padding plus per-call cost is least, run under ``torch.inference_mode``
   through the encoder that ``backends.py`` chose for the precision and device;
4. each word takes its label scores from the window where it sits furthest from an edge;
   ``decoding.py`` turns them into entities (Viterbi over IOB2) and scores the candidate
   pairs of the sentence's entities with the relation head.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from .backends import PRECISIONS, auto_precision, cpu_has_fast_bf16, make_encoder
from .decoding import Decoder, merge_windows
from .encoding import Window, length_batches, pad_windows, sentence_windows
from .modeling import MarsadModel, ModelLoadError
from .text import normalize_word, split_sentences, tokenize
from .tokenizer_io import load_tokenizer

__all__ = ["Extractor", "PRECISIONS", "auto_precision", "cpu_has_fast_bf16"]


class Extractor:
    """Entity, relation and casualty extraction with a trained marsad model.

    ``precision`` and ``device`` pick the encoder (see ``backends.py``). The CPU fast paths
    take a snapshot of the encoder's weights when the Extractor is built: after changing the
    model's weights (training), build a new Extractor."""

    def __init__(self, model: MarsadModel, tokenizer, device: str = "auto", precision: str = "auto",
                 batch_tokens: int | None = None, batch_size: int | None = None, model_dir: str | Path | None = None,
                 gazetteer=None):
        self.settings = model.settings
        if self.settings.gazetteer and gazetteer is None:
            raise ModelLoadError("this model reads place-name gazetteer features; pass its Gazetteer (gazetteer.txt)")
        self.gazetteer = gazetteer if self.settings.gazetteer else None
        self.backend = make_encoder(model, precision, device, model_dir)
        self.device, self.precision, self.model = self.backend.device, self.backend.precision, self.backend.model
        self.tokenizer = tokenizer
        self.entity_labels = self.settings.entity_labels
        self.decoder = Decoder(self.model, self.gazetteer)
        gpu = self.device.type == "cuda"
        # CPU: ~1k positions a batch keeps fp32 activations in cache; AMX bf16 tiles want ~2k
        self.batch_tokens = batch_tokens or (16384 if gpu else 2048 if self.precision == "bf16" else 1024)
        self.batch_size = batch_size or (256 if gpu else 128 if self.precision == "bf16" else 32)
        # an encoder call's fixed cost in padded positions: batches are cut to minimise padding
        # plus calls (measured on 2 CPU cores at the tiny size; a GPU call costs far more)
        self.batch_cost = 4096 if gpu else 192
        self._subwords: dict[str, tuple[int, ...]] = {}  # normalised word -> its sub-word ids

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "auto", precision: str = "auto", **kwargs) -> "Extractor":
        """Load a saved marsad model folder (``marsad train`` output)."""
        model = MarsadModel.from_pretrained(path)
        if model.settings.gazetteer:
            kwargs.setdefault("gazetteer", _load_gazetteer(path))
        kwargs.setdefault("model_dir", path)  # where an ONNX export is cached
        return cls(model, load_tokenizer(path, model), device=device, precision=precision, **kwargs)

    # --- public API ------------------------------------------------------------------------
    def extract(self, texts: str | Iterable[str], *, progress: bool = False) -> list[dict]:
        """One record per text: ``{"text", "entities", "relations"}`` (see ``ANNOTATION.md``).

        A single string gives a list of one record. Entities carry ``start``/``end`` (offsets
        into the original text), ``label``, ``text``, ``score``; CASUALTY entities also
        ``count``, ``approximate`` and ``status``. An empty or whitespace-only text is a record
        with no entities; a text that is not a string gets a record with an ``error`` field
        instead of failing the batch.
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

    def clear_caches(self) -> None:
        """Forget the words seen so far (normalisation, sub-word, place-name, casualty caches)."""
        from .casualty import clear_caches

        normalize_word.cache_clear()
        self._subwords.clear()
        getattr(self.gazetteer, "clear_cache", lambda: None)()  # no gazetteer: nothing to clear
        clear_caches()

    # --- internals -------------------------------------------------------------------------
    def _run_chunk(self, chunk, bar) -> Iterator[tuple[object, dict]]:
        """Records of one chunk of ``(key, text)`` items: all their sentences in one pass."""
        sentences = [(i, s, e) for i, (_, text) in enumerate(chunk) if isinstance(text, str)
                     for s, e in split_sentences(text)]  # (item, start, end); none in an empty text
        with _gc_paused():
            results = self._predict_sentences([chunk[i][1][s:e] for i, s, e in sentences])
        per_item: list[tuple[list, list]] = [([], []) for _ in chunk]
        for (i, s, _), (ents, rels) in zip(sentences, results):
            ents_out, rels_out = per_item[i]
            rels_out += [{**rel, "head": rel["head"] + len(ents_out), "tail": rel["tail"] + len(ents_out)} for rel in rels]
            ents_out += [{**ent, "start": ent["start"] + s, "end": ent["end"] + s} for ent in ents]
        for (key, text), (ents, rels) in zip(chunk, per_item):
            if isinstance(text, str):
                record = {"text": text, "entities": ents, "relations": rels}
            else:
                record = {"text": None, "entities": [], "relations": [],
                          "error": f"text must be a string, got {type(text).__name__}"}
            if bar is not None:
                bar.update(1)
            yield key, record

    def _predict_sentences(self, sentences: list[str], given: list[list[tuple[int, int, str]]] | None = None
                           ) -> list[tuple[list[dict], list[dict]]]:
        """``(entities, relations)`` of each sentence (entities found, or ``given`` as spans)."""
        tokens = [tokenize(s) for s in sentences]
        if len(self._subwords) > 200_000:  # bounded: a long stream of new words starts it afresh
            self._subwords.clear()
        windows: list[Window] = []
        owned: list[range] = []  # each sentence's window numbers
        for ws in sentence_windows(self.tokenizer, [[t.text for t in ts] for ts in tokens], self.settings,
                                   self.gazetteer, self._subwords):
            owned.append(range(len(windows), len(windows) + len(ws)))
            windows += ws
        out: list[tuple[list[dict], list[dict]]] = [([], []) for _ in sentences]
        parts: dict[int, tuple[torch.Tensor, np.ndarray]] = {}  # window -> (word states, probs) of long sentences
        for batch, words, probs in self._run_windows(windows):
            whole = [r for r, k in enumerate(batch) if len(owned[windows[k].sentence]) == 1]
            for r in sorted(set(range(len(batch))) - set(whole)):  # a long sentence's window: merged below
                n = len(windows[batch[r]].word_index)
                parts[batch[r]] = (words[r, :n], probs[r, :n])
            if whole and len(whole) < len(batch):
                words, probs = words[torch.tensor(whole, device=words.device)], probs[whole]
            idx = [windows[batch[r]].sentence for r in whole]
            for i, res in zip(idx, self._decode_rows(words, probs, idx, sentences, tokens, given) if idx else []):
                out[i] = res
        long = [i for i, ks in enumerate(owned) if len(ks) > 1]
        for g in range(0, len(long), 16):
            idx = long[g : g + 16]
            words, probs = merge_windows([owned[i] for i in idx], windows, parts)
            for i, res in zip(idx, self._decode_rows(words, probs, idx, sentences, tokens, given)):
                out[i] = res
        return out

    @torch.inference_mode()
    def _run_windows(self, windows: list[Window]) -> Iterator[tuple[list[int], torch.Tensor, np.ndarray]]:
        """``(window numbers, word states (B, W, H) float on the device, tag probabilities
        (B, W, L) numpy)`` per padded batch of length-sorted windows."""
        order = sorted(range(len(windows)), key=lambda k: len(windows[k].input_ids))
        gpu = self.device.type == "cuda"
        autocast = self.backend.autocast
        for batch in length_batches(order, windows, self.batch_tokens, self.batch_size, self.batch_cost):
            padded = pad_windows([windows[k] for k in batch], self.tokenizer.pad_token_id or 0)
            ids, mask, widx, types = (torch.from_numpy(t) for t in padded)
            if gpu:
                ids, mask, widx, types = (t.pin_memory().to(self.device, non_blocking=True) for t in (ids, mask, widx, types))
            with torch.autocast(self.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                hidden = self.backend.encode(ids, mask, types)  # (B, T, H)
                if not gpu:
                    hidden = hidden.float()  # a bf16 encoder on CPU; the heads are fp32
                words = self.model.gather_words(hidden, widx)  # (B, W, H)
                logits = self.model.classifier(words)  # (B, W, L)
            yield batch, words.float(), logits.float().softmax(-1).cpu().numpy()

    def _decode_rows(self, words: torch.Tensor, probs: np.ndarray, idx: list[int], sentences: list[str], tokens,
                     given) -> list[tuple[list[dict], list[dict]]]:
        """Entities (found, or the given ones) and relations of whole sentences ``idx``, whose
        word states and tag probabilities are the rows of ``words``/``probs``."""
        if given is None:
            entity_lists = self.decoder.entities(probs, [sentences[i] for i in idx], [tokens[i] for i in idx])
        else:
            entity_lists = [self.decoder.given(sentences[i], tokens[i], given[i]) for i in idx]
        relations = self.decoder.relations(self.model, words, entity_lists)
        return [([e for e, _ in ents], rels) for ents, rels in zip(entity_lists, relations)]


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


def _load_gazetteer(path: str | Path):
    from .gazetteer import GAZETTEER_NAME, Gazetteer

    if not (Path(path) / GAZETTEER_NAME).is_file():
        raise ModelLoadError(f"{path}: {GAZETTEER_NAME} is missing; the folder is incomplete")
    return Gazetteer.load(path)


def _progress(enabled: bool, total: int | None):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="text", desc="extract")
