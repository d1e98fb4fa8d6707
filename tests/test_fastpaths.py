"""The fast inference paths agree with fp32: torch int8, ONNX Runtime int8, CPU and GPU bf16, GPU fp16.

Speed is measured by ``bench/throughput.py``, not here; these tests check that the fast paths
give the same entities as the fp32 reference on the overfit model, and that the ONNX export is
cached beside the model and rebuilt when the weights change.
"""

from __future__ import annotations

import shutil
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from conftest import SEED_TXT, overfit_records
from marsad.model import Extractor
from marsad.model.backends import cpu_has_fast_bf16

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _entities(records):
    return [{(e["start"], e["end"], e["label"]) for e in r["entities"]} for r in records]


def agreement(reference, other) -> tuple[float, float]:
    """(share of the reference's entities reproduced exactly, symmetric F1 between the two)."""
    ref, got = _entities(reference), _entities(other)
    same = sum(len(a & b) for a, b in zip(ref, got))
    n_ref, n_got = sum(map(len, ref)), sum(map(len, got))
    recall = same / n_ref if n_ref else 1.0
    f1 = 2 * same / (n_ref + n_got) if n_ref + n_got else 1.0
    return recall, f1


def agreement_of_sets(ref: list[set], got: list[set]) -> float:
    same = sum(len(a & b) for a, b in zip(ref, got))
    total = sum(map(len, ref)) + sum(map(len, got))
    return 2 * same / total if total else 1.0


@pytest.fixture(scope="module")
def texts():
    # the overfit sentences (the model knows them) and the seed article (it does not, so its
    # predictions are less confident: a harder test of agreement)
    return [r["text"] for r in overfit_records()] + [SEED_TXT.read_text(encoding="utf-8")]


@pytest.fixture(scope="module")
def reference(extractor, texts):
    return extractor.extract(texts)


@pytest.fixture(scope="module")
def onnx_model(trained_model, tmp_path_factory):
    """A private copy of the trained model, so ONNX files never land in the shared folder."""
    pytest.importorskip("onnxruntime")
    dst = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(trained_model, dst, ignore=shutil.ignore_patterns("checkpoint*", "best*", "onnx"))
    return dst


def test_torch_int8_agrees_with_fp32(trained_model, texts, reference):
    fast = Extractor.from_pretrained(trained_model, device="cpu", precision="int8")
    recall, f1 = agreement(reference, fast.extract(texts))
    assert sum(map(len, _entities(reference))) > 10
    assert recall >= 0.95 and f1 >= 0.95, (recall, f1)


@pytest.fixture(scope="module", params=["int8", "fp32"])
def default_path(request, trained_model, texts):
    """A CPU path that ``precision="auto"`` can pick without native bf16, and each text's record alone."""
    ex = Extractor.from_pretrained(trained_model, device="cpu", precision=request.param)
    return ex, {t: ex.extract(t)[0] for t in texts}


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_outputs_never_depend_on_the_batch(default_path, texts, data):
    """Any subset, order, batch size or batch budget: each text gets the very same record
    (entities, scores to the printed digit, relations, counts) as when it is extracted alone.
    int8 is batch-independent by construction (model/int8.py; bit for bit through its int8 layers); fp32 differs from
    batch to batch by float rounding (~1e-6) only, far below the printed digits."""
    ex, alone = default_path
    picked = data.draw(st.lists(st.sampled_from(texts), min_size=1, max_size=len(texts)))
    other = Extractor(ex.model, ex.tokenizer, device="cpu", precision=ex.precision,
                      batch_size=data.draw(st.integers(1, 8)), batch_tokens=data.draw(st.sampled_from([64, 256, 4096])))
    assert other.extract(picked) == [alone[t] for t in picked]


def test_int8_attention_on_a_run_of_equal_lengths_is_each_sentence_alone(trained_model, monkeypatch):
    """Sentences of one length share one attention call on the int8 path; each gets the very bits
    it gets in a call of its own (same batch, so every matmul sees the same rows)."""
    from marsad.model import fastbert

    fast = Extractor.from_pretrained(trained_model, device="cpu", precision="int8").backend.fast
    g = torch.Generator().manual_seed(0)
    lengths = [12, 12, 12, 9, 9, 5]
    ids = torch.randint(5, 60, (len(lengths), 12), generator=g)
    mask = (torch.arange(12)[None, :] < torch.tensor(lengths)[:, None]).long()
    assert fastbert._runs(lengths) == [(0, 3, 12), (3, 5, 9), (5, 6, 5)]
    grouped = fast(ids, mask)
    monkeypatch.setattr(fastbert, "_runs", lambda ls: [(i, i + 1, n) for i, n in enumerate(ls)])
    assert torch.equal(fast(ids, mask), grouped)


def test_row_int8_linear_rows_are_independent_and_close_to_fp32():
    from marsad.model.int8 import RowInt8Linear

    g = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(48, 40)
    x = torch.randn(30, 48, generator=g) * torch.rand(30, 1, generator=g) * 5
    q = RowInt8Linear(linear)
    y = q(x)
    assert torch.equal(q(x[7:8]), y[7:8]) and torch.equal(q(x.flip(0)), y.flip(0))
    assert torch.equal(q(x.view(5, 6, 48)), y.view(5, 6, 40))
    want = linear(x).detach()
    assert (y - want).abs().max() <= 0.03 * want.abs().max()


@pytest.mark.parametrize("flags, want", [
    ({"avx2", "fma"}, "fp32"),                                             # AMD Zen 3
    ({"avx2", "avx512f", "avx512_vnni"}, "int8"),                          # Cascade Lake / Ice Lake
    ({"avx2", "avx_vnni"}, "int8"),                                        # Alder Lake
    ({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}, "int8"),           # AMD Zen 4
    ({"avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_bf16"}, "bf16"),  # Sapphire Rapids
])
def test_auto_precision_is_decided_by_the_cpu_flags(monkeypatch, flags, want):
    from marsad.model import backends

    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset(flags))
    backends.cpu_has_fast_bf16.cache_clear()
    try:
        assert backends.auto_precision("cpu") == want
    finally:
        backends.cpu_has_fast_bf16.cache_clear()


def test_onnx_agrees_with_fp32(onnx_model, texts, reference):
    fast = Extractor.from_pretrained(onnx_model, device="cpu", precision="onnx-int8")
    got = fast.extract(texts)
    recall, f1 = agreement(reference, got)
    assert recall >= 0.95 and f1 >= 0.95, (recall, f1)
    assert (onnx_model / "onnx" / "encoder-int8.onnx").is_file()
    if (recall, f1) == (1.0, 1.0):  # same entities: the relation head sees the ONNX word states
        def rels(records):
            return [{(x["head"], x["tail"], x["label"]) for x in r["relations"]} for r in records]

        assert agreement_of_sets(rels(reference), rels(got)) >= 0.95


def test_onnx_fp32_was_removed_and_says_what_to_use(trained_model):
    from marsad.model.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'onnx-fp32' was removed: .* use fp32, or onnx-int8"):
        Extractor.from_pretrained(trained_model, device="cpu", precision="onnx-fp32")


def test_onnx_hidden_states_close_to_torch(onnx_model, extractor):
    from marsad.model.onnx_backend import load_onnx_encoder

    enc = load_onnx_encoder(extractor.model, onnx_model)
    ids = torch.tensor([[2, 10, 11, 12, 13, 3], [2, 14, 15, 3, 0, 0]])
    mask = (torch.arange(6) < torch.tensor([[6], [4]])).long()
    # token types carry features (e.g. gazetteer marks) when the encoder has more than one
    types = (ids % 2) * mask if extractor.model.encoder.config.type_vocab_size > 1 else torch.zeros_like(ids)
    with torch.inference_mode():
        want = extractor.model.encode(ids, mask, types)
    got = enc(ids, mask, types)
    assert got.shape == want.shape and got.dtype == torch.float32
    real = mask.bool()
    cosine = torch.nn.functional.cosine_similarity(got[real], want[real], dim=-1)
    assert cosine.min() > 0.999, cosine  # int8 weights and activations: close (0.9999 measured), not equal


def test_onnx_cache_reused_and_rebuilt_when_weights_change(onnx_model, tmp_path, monkeypatch):
    from marsad.model import MarsadModel, onnx_backend

    shutil.copytree(onnx_model, tmp_path / "model")  # the ONNX cache travels with the folder
    onnx_model = tmp_path / "model"
    Extractor.from_pretrained(onnx_model, device="cpu", precision="onnx-int8")  # exported (or cached)
    path = onnx_model / "onnx" / "encoder-int8.onnx"
    before = path.stat().st_mtime_ns
    calls = []
    real_export = onnx_backend.export_encoder
    monkeypatch.setattr(onnx_backend, "export_encoder", lambda *a, **k: calls.append(1) or real_export(*a, **k))

    Extractor.from_pretrained(onnx_model, device="cpu", precision="onnx-int8")
    assert calls == [] and path.stat().st_mtime_ns == before  # reused, not re-exported

    model = MarsadModel.from_pretrained(onnx_model)  # "retrain": other weights, same folder
    with torch.no_grad():
        model.encoder.embeddings.word_embeddings.weight[5] += 0.5
    model.save_pretrained(onnx_model)
    ex = Extractor.from_pretrained(onnx_model, device="cpu", precision="onnx-int8")
    assert calls == [1]
    assert ex.backend.onnx.metadata["marsad_weights_sha256"] == onnx_backend.weights_digest(onnx_model)
    assert not [p for p in (onnx_model / "onnx").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_onnx_read_only_folder_caches_in_user_cache(onnx_model, tmp_path, monkeypatch):
    from marsad.model import onnx_backend

    monkeypatch.setenv("MARSAD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_backend, "_writable", lambda folder: False)
    folder = tmp_path / "ro"
    shutil.copytree(onnx_model, folder, ignore=shutil.ignore_patterns("onnx"))
    ex = Extractor.from_pretrained(folder, device="cpu", precision="onnx-int8")
    assert ex.backend.onnx.path.is_relative_to(tmp_path / "cache") and not (folder / "onnx").exists()


def test_onnx_missing_names_the_extra(trained_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install marsad\[onnx\]"):
        Extractor.from_pretrained(trained_model, device="cpu", precision="onnx-int8")


@needs_cuda
def test_onnx_precisions_are_cpu_only(trained_model):
    with pytest.raises(ValueError, match="runs on the CPU"):
        Extractor.from_pretrained(trained_model, device="cuda", precision="onnx-int8")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_gpu_half_precision_agrees_with_fp32(trained_model, texts, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    ref = Extractor.from_pretrained(trained_model, device="cuda", precision="fp32").extract(texts)
    cpu = Extractor.from_pretrained(trained_model, device="cpu", precision="fp32").extract(texts)
    got = Extractor.from_pretrained(trained_model, device="cuda", precision=precision).extract(texts)
    assert agreement(cpu, ref)[1] >= 0.99  # CUDA fp32 (TF32 off by default) matches the CPU
    recall, f1 = agreement(ref, got)
    assert recall >= 0.95 and f1 >= 0.95, (recall, f1)


needs_fast_bf16 = pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no native bf16 (AMX / AVX512-BF16)")


@needs_fast_bf16
def test_cpu_bf16_agrees_with_fp32(trained_model, texts, reference):
    fast = Extractor.from_pretrained(trained_model, device="cpu", precision="bf16")
    assert any(p.dtype == torch.bfloat16 for p in fast.backend.fast.parameters())  # the lean BERT forward's matmuls
    assert all(p.dtype == torch.float32 for p in fast.model.relation_head.parameters())
    recall, f1 = agreement(reference, fast.extract(texts))
    assert recall >= 0.95 and f1 >= 0.95, (recall, f1)


@needs_fast_bf16
def test_cpu_bf16_leaves_the_callers_model_fp32(extractor):
    Extractor(extractor.model, extractor.tokenizer, device="cpu", precision="bf16")
    assert all(p.dtype == torch.float32 for p in extractor.model.parameters())


@needs_fast_bf16
def test_cpu_bf16_does_not_depend_on_batch_neighbours(trained_model, texts):
    """Unlike dynamic int8 (activation scales per batch), bf16 gives a sentence the same
    entities whatever shares its batch."""
    ex = Extractor.from_pretrained(trained_model, device="cpu", precision="bf16")
    together = ex.extract(texts)
    alone = [ex.extract(t)[0] for t in texts]
    assert _entities(together) == _entities(alone)


def test_cpu_without_native_bf16_refuses_it(trained_model, monkeypatch):
    import marsad.model.backends as backends

    monkeypatch.setattr(backends, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx2", "fma"}))  # nor VNNI (int8's CPUs)
    with pytest.raises(ValueError, match="would be emulated"):
        Extractor.from_pretrained(trained_model, device="cpu", precision="bf16")
    assert Extractor.from_pretrained(trained_model, device="cpu").precision == "fp32"


# --- the lean BERT forward (model/fastbert.py) -------------------------------------------------
def _padded_batch(vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (6, 23), generator=g)
    mask = torch.ones_like(ids)
    for r, n in enumerate([23, 20, 9, 1, 15, 2]):
        mask[r, n:] = 0
    types = torch.randint(0, 2, ids.shape, generator=g)
    return ids, mask, types


def test_fast_bert_matches_the_transformers_forward(extractor):
    """The CPU fp32/bf16 paths' BERT forward gives BertModel's hidden states: fp32 to float
    rounding, bf16 as BertModel with bf16 Linear weights under CPU autocast does."""
    import copy

    from marsad.model.fastbert import fast_bert

    encoder = extractor.model.encoder
    ids, mask, types = _padded_batch(encoder.config.vocab_size)
    real = mask.bool()
    with torch.inference_mode():
        want = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got = fast_bert(encoder, torch.float32)(ids, mask, types)
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert torch.allclose(got[real], want[real], atol=1e-5, rtol=1e-5)
        low = copy.deepcopy(encoder)
        for m in low.modules():
            if isinstance(m, torch.nn.Linear):
                m.to(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            want_bf16 = low(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.float()
        got_bf16 = fast_bert(encoder, torch.bfloat16)(ids, mask, types)
        assert got_bf16.dtype == torch.float32
        assert torch.allclose(got_bf16[real], want_bf16[real], atol=2e-2)
        assert (got_bf16[real] - want[real]).abs().max() < 0.25  # bf16 is close to fp32, not equal
    assert all(p.dtype == torch.float32 for p in encoder.parameters())  # the encoder's own weights untouched


def test_fast_bert_declines_encoders_it_does_not_reproduce(extractor):
    """Other architectures and activations keep the transformers forward (and still run)."""
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    from marsad.model.fastbert import fast_bert
    from marsad.model.modeling import MarsadModel

    shape = dict(vocab_size=len(extractor.tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=130)
    assert fast_bert(BertModel(BertConfig(**shape, hidden_act="silu"), add_pooling_layer=False)) is None
    roberta = RobertaModel(RobertaConfig(**shape, pad_token_id=extractor.tokenizer.pad_token_id or 0), add_pooling_layer=False)
    assert fast_bert(roberta) is None
    model = MarsadModel.from_encoder(roberta, extractor.settings)
    precisions = ["fp32"] + (["bf16"] if cpu_has_fast_bf16() else [])
    for precision in precisions:
        ex = Extractor(model, extractor.tokenizer, device="cpu", precision=precision)
        assert ex.backend.fast is None
        [record] = ex.extract("قتل ثلاثة مدنيين في قصف على حلب.")
        assert "error" not in record
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("flags, want", [
    ({"avx2", "fma"}, False),                                      # AMD Zen 3
    ({"avx2", "avx512f", "avx512_vnni"}, False),                   # Cascade Lake / Ice Lake: bf16 emulated
    ({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}, True),     # AMD Zen 4, Cooper Lake
    ({"avx2", "avx512f", "amx_tile", "amx_bf16"}, True),           # Sapphire Rapids
])
def test_fast_bf16_is_decided_by_the_cpu_flags(monkeypatch, flags, want):
    """oneDNN's own bf16 check says yes on every AVX-512 CPU; the flags must decide where known."""
    from marsad.model import backends

    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset(flags))
    backends.cpu_has_fast_bf16.cache_clear()
    try:
        assert backends.cpu_has_fast_bf16() is want
    finally:
        backends.cpu_has_fast_bf16.cache_clear()
