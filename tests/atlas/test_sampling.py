"""atlas.sampling: fixed-size batches whose logged probabilities make Horvitz-Thompson unbiased."""

import numpy as np
import pytest

from atlas.sampling import draw_batch, pps_probabilities, softmax_mixture, systematic_sample


def test_batch_has_k_distinct_items_and_audit_first():
    rng = np.random.default_rng(0)
    batch = draw_batch(np.arange(20.0), 4, rng, n_audit=1)
    assert len(batch) == 4
    assert len(set(batch.indices.tolist())) == 4
    assert batch.is_audit.tolist() == [True, False, False, False]
    assert batch.audit_prob == pytest.approx(1 / 20)


@pytest.mark.parametrize("size", [1, 2, 5])
def test_pps_probabilities_sum_to_size_and_are_capped(size):
    pi = pps_probabilities([1.0, 1.0, 1.0, 50.0, 100.0, 2.0], size)
    assert pi.sum() == pytest.approx(size)
    assert pi.max() <= 1.0


def test_systematic_sample_hits_each_item_at_its_probability():
    rng = np.random.default_rng(1)
    pi = pps_probabilities([1.0, 2.0, 3.0, 4.0, 10.0], 2)
    hits = np.zeros(5)
    for _ in range(20000):
        hits[systematic_sample(pi, rng)] += 1
    np.testing.assert_allclose(hits / 20000, pi, atol=0.015)


@pytest.mark.parametrize(("k", "n_audit"), [(3, 1), (4, 2), (2, 2), (1, 1)])
def test_horvitz_thompson_sum_is_unbiased(k, n_audit):
    """The logged probabilities are the ones that make sum(y / pi) unbiased for the pool total."""
    rng = np.random.default_rng(2)
    y = (rng.random(15) < 0.7).astype(float)
    scores = 3.0 * (1 - y) + rng.normal(size=15)  # biased towards the zeros
    totals = []
    for _ in range(6000):
        b = draw_batch(scores, k, rng, n_audit=n_audit)
        totals.append(np.sum(y[b.indices] / b.inclusion_prob))
    assert np.mean(totals) == pytest.approx(y.sum(), rel=0.05)


def test_selection_follows_scores():
    rng = np.random.default_rng(3)
    scores = np.r_[np.zeros(18), 5.0, 5.0]
    picked = np.zeros(20)
    for _ in range(2000):
        b = draw_batch(scores, 3, rng)
        picked[b.indices[~b.is_audit]] += 1
    assert picked[18:].min() > 5 * picked[:18].max()


def test_uniform_mix_bounds_weights():
    rng = np.random.default_rng(4)
    scores = np.r_[np.zeros(29), 100.0]
    b_weights = []
    for _ in range(500):
        b = draw_batch(scores, 3, rng, uniform_mix=0.2)
        b_weights.extend(1.0 / b.inclusion_prob)
    assert max(b_weights) <= 29 / (2 * 0.2) + 1e-9


def test_small_pool_is_taken_whole():
    b = draw_batch([0.3, 0.1], 4, np.random.default_rng(5))
    assert sorted(b.indices.tolist()) == [0, 1]
    assert b.inclusion_prob.tolist() == [1.0, 1.0]
    assert b.is_audit.sum() == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k=0"),
        ({"n_audit": 0}, "n_audit=0"),
        ({"temperature": 0.0}, "temperature=0.0"),
        ({"uniform_mix": 1.5}, "uniform_mix=1.5"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    args = {"k": 2, **kwargs}
    k = args.pop("k")
    with pytest.raises(ValueError, match=match):
        draw_batch(np.arange(5.0), k, np.random.default_rng(0), **args)


def test_softmax_mixture_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        softmax_mixture([0.0, np.nan], 1.0, 0.1)
