"""The AraBERT path on a local folder in AraBERT's *published* layout: ``config.json`` (a
``BertForMaskedLM``), ``pytorch_model.bin`` (``bert.``-prefixed keys and the MLM head),
``vocab.txt`` and a legacy ``tokenizer_config.json`` (``max_len``, ``do_lower_case: false``),
as ``configs/arabert.yaml`` loads ``aubmindlab/bert-base-arabertv02``: same code, small shape.
The tokenizer is read from the folder exactly as the hub folder is read (``AutoTokenizer``), so
the fixture's Arabic vocabulary is the one in use (``BertTokenizerFast(vocab_file=...)`` builds a
5-token vocabulary under transformers 5)."""

import json
from collections import Counter

import pytest
import torch

from conftest import overfit_records, tiny_config
from marsad.model import Extractor
from marsad.model.text import normalize_word, tokenize
from marsad.model.weights import WeightsError, read_pickled_state
from marsad.training.trainer import TrainingError, train

SENTENCE = "قتل ثلاثة مدنيين في قصف على حلب"


def _vocab(records) -> list[str]:
    from marsad.training.scratch import learn_wordpiece_vocab

    counts = Counter(normalize_word(t.text) for r in records for t in tokenize(r["text"]))
    counts.update(SENTENCE.split())
    counts = Counter({w: c + 1 for w, c in counts.items() if w})  # every word at least twice
    return learn_wordpiece_vocab(counts, 1200)


def _published_folder(folder, records, with_safetensors=False):
    from transformers import BertConfig, BertForMaskedLM

    vocab = _vocab(records)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "max_len": 128}), encoding="utf-8")
    config = BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, architectures=["BertForMaskedLM"])
    torch.manual_seed(3)
    mlm = BertForMaskedLM(config)
    (folder / "config.json").write_text(config.to_json_string(), encoding="utf-8")
    torch.save(mlm.state_dict(), folder / "pytorch_model.bin")  # a pickle of tensors, as published
    if with_safetensors:
        mlm.save_pretrained(str(folder / "st"))
        (folder / "st" / "model.safetensors").rename(folder / "model.safetensors")
    return folder


@pytest.fixture(scope="module")
def arabert_like(tmp_path_factory):
    return _published_folder(tmp_path_factory.mktemp("bert-base-arabertv02-layout"), overfit_records())


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MARSAD_CACHE", str(tmp_path / "cache"))


def test_folder_is_in_the_published_layout(arabert_like):
    names = {p.name for p in arabert_like.iterdir()}
    assert names == {"config.json", "pytorch_model.bin", "vocab.txt", "tokenizer_config.json"}


def test_tokenizer_is_read_from_vocab_txt_with_its_arabic_vocabulary(arabert_like):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(arabert_like), use_fast=True)
    assert tok.is_fast
    lines = (arabert_like / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(tok) == len(lines) > 300
    pieces = tok.tokenize(SENTENCE)
    assert pieces and tok.unk_token not in pieces
    assert tok.model_max_length == 128  # the legacy max_len


def test_fine_tune_starts_from_the_pretrained_bin_weights(arabert_like, tmp_path):
    from safetensors.torch import load_file

    bin_state = read_pickled_state(arabert_like / "pytorch_model.bin")
    key = "bert.embeddings.word_embeddings.weight"
    recs = overfit_records()[:4]
    config = tiny_config(tmp_path, recs, model__encoder=str(arabert_like), train__epochs=2, train__lr=3e-5)
    logs = []
    train(config, tmp_path / "out", log=lambda *a, **k: logs.append(" ".join(map(str, a))))
    assert any("converted" in line and "safetensors" in line for line in logs), logs  # said in one line
    converted = list((tmp_path / "cache" / "converted").glob("*/model.safetensors"))
    assert len(converted) == 1
    saved = load_file(str(tmp_path / "out" / "model.safetensors"))
    before, after = bin_state[key], saved[key]
    assert before.shape == after.shape
    assert not torch.equal(before, after)  # it was fine-tuned ...
    assert torch.corrcoef(torch.stack([before.flatten(), after.flatten()]))[0, 1] > 0.99  # ... from these weights
    ex = Extractor.from_pretrained(tmp_path / "out", device="cpu")
    assert len(ex.tokenizer) == len(bin_state[key])
    assert ex.tokenizer.unk_token_id not in ex.tokenizer(SENTENCE)["input_ids"]
    [rec] = ex.extract(recs[0]["text"])
    assert rec["text"] == recs[0]["text"]
    # a second run reads the conversion from the cache
    logs.clear()
    train(config, tmp_path / "out2", log=lambda *a, **k: logs.append(" ".join(map(str, a))))
    assert any("read from its safetensors conversion" in line for line in logs)


def test_safetensors_are_preferred_when_both_are_present(tmp_path):
    from marsad.model.modeling import load_encoder

    folder = _published_folder(tmp_path / "both", overfit_records()[:2], with_safetensors=True) if (tmp_path / "both").mkdir() is None else None
    # make the .bin different: if it were read, the weights would differ
    state = read_pickled_state(folder / "pytorch_model.bin")
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, folder / "pytorch_model.bin")
    logs = []
    enc = load_encoder(str(folder), log=logs.append)
    assert not logs and not (tmp_path / "cache").exists()
    assert torch.equal(enc.embeddings.word_embeddings.weight, state["bert.embeddings.word_embeddings.weight"])


class Payload:  # any object that is not a tensor
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize("payload", [Payload(), {"weights": Payload()}, {"a": 1}])
def test_a_bin_with_pickled_objects_is_refused(tmp_path, payload, capsys):
    from transformers import BertConfig

    folder = tmp_path / "evil"
    folder.mkdir()
    BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).to_json_file(folder / "config.json")
    torch.save(payload, folder / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="refused"):
        read_pickled_state(folder / "pytorch_model.bin")
    config = tiny_config(tmp_path, overfit_records()[:2], model__encoder=str(folder))
    with pytest.raises(TrainingError, match="refused"):
        train(config, tmp_path / "out", log=lambda *a, **k: None)
    assert "pickled code ran" not in capsys.readouterr().out


def test_missing_encoder_gives_clear_error(tmp_path):
    config = tiny_config(tmp_path, overfit_records()[:2], model__encoder=str(tmp_path / "no-such-model"))
    with pytest.raises(TrainingError, match="cannot load the encoder"):
        train(config, tmp_path / "out", log=lambda *a, **k: None)


def test_configs_arabert_yaml_trains_and_predicts_on_the_published_layout(arabert_like, tmp_path, cli):
    """``marsad train configs/arabert.yaml model.encoder=DIR`` (shortened: a few records, one
    epoch) and ``marsad predict`` with the result."""
    from conftest import ROOT, SEED_TXT, write_jsonl

    write_jsonl(overfit_records()[:6], tmp_path / "few.jsonl")
    few = str(tmp_path / "few.jsonl")
    code, out, err = cli("train", ROOT / "configs" / "arabert.yaml", "--output-dir", tmp_path / "run",
                         f"model.encoder={arabert_like}", f"data.train=[{few}]", f"data.dev=[{few}]", "data.test=[]",
                         "data.real_dev=[]", "data.real_test=[]", "train.epochs=1", "augment.enabled=false", "model.max_length=128")
    assert code == 0, err
    assert "converted" in out + err
    code, out, err = cli("predict", "-m", tmp_path / "run", SEED_TXT, "-q")
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["text"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(tmp_path / "run" / "README.md")  # the card the run wrote
    assert card.data.pipeline_tag == "token-classification" and card.data.language == ["ar"]
    assert {r.dataset_split for r in card.data.eval_results} == {"dev"}


def test_model_card_is_a_hub_card_with_its_results(monkeypatch):
    """``configs/arabert.yaml``'s card: hub front matter that ``huggingface_hub`` parses, with
    ``model-index`` results taken from the seqeval reports."""
    from huggingface_hub import ModelCard

    from conftest import ROOT
    from marsad.training.config import load_config
    from marsad.training.checkpoint import model_card as _model_card

    config = load_config(ROOT / "configs" / "arabert.yaml")
    report = {"entities": {"micro avg": {"precision": 0.7, "recall": 0.6, "f1-score": 0.6462, "support": 10}},
              "relations_end_to_end": {"micro avg": {"precision": 0.5, "recall": 0.4, "f1-score": 0.4444, "support": 5}},
              "relations_gold_entities": {"micro avg": {"precision": 0.6, "recall": 0.6, "f1-score": 0.6, "support": 5}},
              "entity_report": "(report)"}
    result = {"best_epoch": 3, "epochs": 4, "train_sentences": 100, "train_minutes": 1.0,
              "real_test": {"entity_f1": 0.6462, "relation_f1": 0.4444, "relation_f1_gold_entities": 0.6}}
    from marsad.training import checkpoint

    monkeypatch.setattr(checkpoint, "format_report", lambda rep: rep["entity_report"])  # the printed report is not under test
    text = _model_card(config, result, {"real_test": report})
    card = ModelCard(text)
    data = card.data.to_dict()
    assert data["language"] == ["ar"] and data["license"] == "cc-by-sa-4.0"
    assert data["base_model"] == "aubmindlab/bert-base-arabertv02"
    assert data["pipeline_tag"] == "token-classification" and data["datasets"]
    results = {(r.task_type, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert results[("token-classification", "entity f1 (seqeval strict IOB2, micro)")] == 0.6462
    assert results[("relation-extraction", "relation F1 (end-to-end, micro)")] == 0.4444
    assert all(r.dataset_split == "test" for r in card.data.eval_results)
