"""The training sampler: a (seed, epoch) shuffle, optionally length-bucketed."""

import random

from marsad.training.trainer import EpochSampler


def _batches(order, size):
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_plain_shuffle_is_a_permutation_per_seed_and_epoch():
    s = EpochSampler(100, seed=3)
    a = list(s)
    assert sorted(a) == list(range(100)) and a == list(EpochSampler(100, seed=3))
    s.set_epoch(1)
    assert list(s) != a


def test_bucketing_cuts_padding_and_keeps_every_row_once():
    rng = random.Random(0)
    lengths = [rng.randint(5, 120) for _ in range(1000)]
    size = 32
    bucketed = EpochSampler(1000, seed=1, lengths=lengths, batch_size=size, pool=10)
    plain = EpochSampler(1000, seed=1)

    def padded(order):  # positions the batches hold, padding included
        return sum(len(b) * max(lengths[i] for i in b) for b in _batches(order, size))

    order = list(bucketed)
    assert sorted(order) == list(range(1000))
    assert padded(order) < 0.75 * padded(list(plain))
    # full batches first, the one short batch last
    assert [len(b) for b in _batches(order, size)] == [size] * 31 + [1000 - 31 * size]


def test_bucketing_is_deterministic_and_changes_with_the_epoch():
    lengths = [i % 37 for i in range(300)]
    a = EpochSampler(300, seed=5, lengths=lengths, batch_size=16)
    b = EpochSampler(300, seed=5, lengths=lengths, batch_size=16)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
