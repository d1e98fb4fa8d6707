"""The AraBERT path: a pretrained encoder from a local folder in hub format (config.json,
model.safetensors, vocab.txt + tokenizer.json with an Arabic vocabulary), as
``configs/arabert.yaml`` loads ``aubmindlab/bert-base-arabertv02``: same code, small shape."""

import json

import pytest

from conftest import overfit_records, tiny_config
from marsad.model import Extractor
from marsad.training.trainer import TrainingError, train


@pytest.fixture(scope="module")
def local_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("bert-base-arabic-local")
    words = sorted({w for r in overfit_records() for w in r["text"].split()} | set("ابتثجحخدذرزسشصضطظعغفقكلمنهويةءأإآىئؤ"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[c for c in '.,،:"!؟()-'], *words, *[f"##{c}" for c in "ابتثجحخدذرزسشصضطظعغفقكلمنهويةءأإآىئؤ"]]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=False, tokenize_chinese_chars=True)
    tok.save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(folder))  # safetensors, like the hub checkpoint
    return folder


def test_local_checkpoint_is_in_hub_format(local_bert):
    names = {p.name for p in local_bert.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json"} <= names
    assert json.loads((local_bert / "config.json").read_text())["model_type"] == "bert"


def test_fine_tune_from_local_pretrained_encoder(local_bert, tmp_path):
    recs = overfit_records()[:4]
    config = tiny_config(tmp_path, recs, model__encoder=str(local_bert), train__epochs=2)
    result = train(config, tmp_path / "out", log=lambda *a, **k: None)
    assert result["best_epoch"] >= 1
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["vocab_size"] == json.loads((local_bert / "config.json").read_text())["vocab_size"]
    ex = Extractor.from_pretrained(tmp_path / "out", device="cpu")
    [rec] = ex.extract(recs[0]["text"])
    assert rec["text"] == recs[0]["text"]
    # the pretrained encoder's weights were the starting point (its vocabulary is kept)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tmp_path / "out")).get_vocab() == AutoTokenizer.from_pretrained(str(local_bert)).get_vocab()


def test_missing_encoder_gives_clear_error(tmp_path):
    config = tiny_config(tmp_path, overfit_records()[:2], model__encoder=str(tmp_path / "no-such-model"))
    with pytest.raises(TrainingError, match="cannot load the encoder"):
        train(config, tmp_path / "out", log=lambda *a, **k: None)
