"""The offline encoder: a WordPiece tokenizer trained on the training texts and a small BERT.

Both are ordinary Hugging Face objects (``BertTokenizerFast``, ``BertModel``) saved in the
standard layout, so everything downstream runs the same code as for AraBERT.
"""

from __future__ import annotations

from collections.abc import Iterable

from marsad.model.text import normalize_word, tokenize

from .config import ScratchEncoder

__all__ = ["train_wordpiece", "build_scratch_encoder"]

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Iterable[str], vocab_size: int):
    """A fast BERT tokenizer whose WordPiece vocabulary is learnt from ``texts``.

    Texts are split with the spec tokeniser and normalised like at inference, so the
    vocabulary covers exactly the words the model will see.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
                                        continuing_subword_prefix="##", show_progress=False)

    def words():
        for text in texts:
            yield " ".join(w for w in (normalize_word(t.text) for t in tokenize(text)) if w)

    tok.train_from_iterator(words(), trainer=trainer)
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", do_lower_case=False, tokenize_chinese_chars=True,
                             strip_accents=False)


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
