"""Training's cheaper CPU dropout: the same distribution as dropout, the same model otherwise."""

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from marsad.training.fastdropout import FastDropout, fast_dropout, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_drops_about_p_and_keeps_the_mean(p):
    torch.manual_seed(0)
    y = fast_dropout(torch.ones(400, 500), p)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005
    zero, kept = torch.unique(y).tolist()
    assert zero == 0.0 and kept == pytest.approx(1 / (1 - p))
    assert abs(y.mean().item() - 1.0) < 0.01


def test_is_identity_in_eval_mode_and_seeded_in_training():
    x = torch.randn(7, 9)
    assert torch.equal(fast_dropout(x, 0.3, training=False), x)
    torch.manual_seed(3)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(3)
    b = fast_dropout(x, 0.3)
    assert torch.equal(a, b)
    assert not torch.equal(a, fast_dropout(x, 0.3))


def test_gradient_flows_through_kept_elements_only():
    x = torch.randn(50, 40, requires_grad=True)
    torch.manual_seed(1)
    y = fast_dropout(x, 0.2)
    y.sum().backward()
    kept = y.detach() != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 1 / 0.8))
    assert (x.grad[~kept] == 0).all()


def _bert(p: float) -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        vocab_size=60, hidden_dropout_prob=p, attention_probs_dropout_prob=p)
    return BertModel(config, add_pooling_layer=False)


def test_swapped_model_computes_what_the_original_does():
    """With dropout out of play (eval mode, or training with p so small nothing is dropped), the
    swapped encoder's outputs equal the original's: the attention mask reaches the new attention."""
    ids = torch.randint(5, 60, (3, 11))
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    for mode in ("eval", "train"):
        plain, fast = _bert(1e-9), _bert(1e-9)
        getattr(plain, mode)()
        getattr(use_fast_dropout(fast), mode)()
        keys = set(fast.state_dict())
        assert keys == set(plain.state_dict())
        ref = plain(input_ids=ids, attention_mask=mask).last_hidden_state
        out = fast(input_ids=ids, attention_mask=mask).last_hidden_state
        assert torch.allclose(out, ref, atol=1e-5), mode
    assert isinstance(fast.embeddings.dropout, FastDropout)
    assert not any(type(m) is nn.Dropout for m in fast.modules())


def test_swapped_model_still_drops_in_training():
    model = use_fast_dropout(_bert(0.3)).train()
    ids = torch.randint(5, 60, (2, 8))
    a = model(input_ids=ids).last_hidden_state
    b = model(input_ids=ids).last_hidden_state
    assert not torch.allclose(a, b)
