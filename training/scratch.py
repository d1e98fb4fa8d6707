"""The offline encoder: a WordPiece tokenizer trained on the training texts and a small BERT.

Both are ordinary Hugging Face objects (``BertTokenizerFast``, ``BertModel``) saved in the
standard layout, so everything downstream runs the same code as for AraBERT.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

from marsad.model.encoding import CLITIC_MARKERS
from marsad.model.text import normalize_word, tokenize

from .config import ScratchEncoder

__all__ = ["train_wordpiece", "learn_wordpiece_vocab", "build_scratch_encoder"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Iterable[str], vocab_size: int, clitics: bool = False):
    """A fast BERT tokenizer whose WordPiece vocabulary is learnt from ``texts``.

    Texts are split with the spec tokeniser and normalised like at inference, so the
    vocabulary covers exactly the words the model will see. The vocabulary is learnt by
    :func:`learn_wordpiece_vocab`, not by ``tokenizers``' ``WordPieceTrainer``: that trainer breaks
    ties between equally frequent pairs in hash-map order, so two runs on the same texts gave
    vocabularies of 2,309 to 2,314 tokens (even single-threaded, with ``PYTHONHASHSEED`` fixed).
    The same texts and size now give the same ``tokenizer.json``, byte for byte.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter = Counter()
    for text in texts:
        words = " ".join(w for w in (normalize_word(t.text) for t in tokenize(text)) if w)
        counts.update(piece for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(words)))
    vocab = learn_wordpiece_vocab(counts, vocab_size, SPECIAL_TOKENS)
    if clitics:  # marker tokens after the learnt ones (marsad.model.encoding.clitic_split reads them)
        vocab += list(CLITIC_MARKERS.values())
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=False, tokenize_chinese_chars=True, strip_accents=False,
                             **specials)


def learn_wordpiece_vocab(word_counts: Counter, vocab_size: int, specials=SPECIAL_TOKENS, min_frequency: int = 2,
                          prefix: str = "##") -> list[str]:
    """A WordPiece vocabulary the way ``tokenizers`` learns one (BPE merges over the words'
    characters, continuation pieces marked ``##``), with every tie broken the same way.

    Starts from the specials and every character (word-initial, and ``##``-marked inside a word);
    then repeatedly merges the most frequent adjacent pair, the smaller pair (as text) first among
    equals, until ``vocab_size`` tokens or no pair occurs ``min_frequency`` times.
    """
    words, counts, alphabet = [], [], set()
    for w, c in sorted(word_counts.items()):
        syms = [w[0]] + [prefix + ch for ch in w[1:]]
        alphabet.update(syms)
        words.append(syms)
        counts.append(c)
    vocab = list(specials) + sorted(alphabet - set(specials))
    seen = set(vocab)
    pairs: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for i, syms in enumerate(words):
        for pair in zip(syms, syms[1:]):
            pairs[pair] += counts[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pairs.get(pair, 0) != -neg:
            continue  # a stale count: the pair was pushed again with its current one
        if -neg < min_frequency:
            break
        new = pair[0] + pair[1][len(prefix):] if pair[1].startswith(prefix) else pair[0] + pair[1]
        if new not in seen:
            vocab.append(new)
            seen.add(new)
        touched = set()
        for i in sorted(where.pop(pair, ())):
            touched |= _merge_word(words, counts[i], i, pair, new, pairs, where)
        pairs.pop(pair, None)
        for p in sorted(touched):
            if pairs.get(p, 0) > 0:
                heapq.heappush(heap, (-pairs[p], p))
            else:
                pairs.pop(p, None)
    return vocab


def _merge_word(words, count, i, pair, new, pairs, where) -> set:
    """Merge ``pair`` into ``new`` in word ``i``, updating the pair counts; the pairs touched."""
    syms = words[i]
    for p in zip(syms, syms[1:]):
        pairs[p] -= count
    out, k = [], 0
    while k < len(syms):
        if k + 1 < len(syms) and (syms[k], syms[k + 1]) == pair:
            out.append(new)
            k += 2
        else:
            out.append(syms[k])
            k += 1
    words[i] = out
    for p in zip(out, out[1:]):
        pairs[p] += count
        where.setdefault(p, set()).add(i)
    return set(zip(syms, syms[1:])) | set(zip(out, out[1:]))


def build_scratch_encoder(spec: ScratchEncoder, tokenizer, dropout: float = 0.1):
    """A randomly initialised ``BertModel`` of the configured shape for ``tokenizer``."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertModel(config, add_pooling_layer=False)
