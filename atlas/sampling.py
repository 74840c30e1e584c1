"""Stochastic batch selection with known inclusion probabilities, plus uniform audit items.

Active learning asks about the uses a strategy finds most informative, which are mostly the
ones the model gets wrong. Accuracy measured on those labels is biased low (or, with other
strategies, high). :mod:`atlas.estimate` corrects the bias by inverse-probability weighting,
which needs, for every label, the exact probability with which its use was chosen. A
deterministic top-k pick has no such probability (items outside the top k have probability 0,
so their errors are never seen), so every strategy hands its scores to :func:`draw_batch`,
which turns them into a random batch whose inclusion probabilities are known exactly.

Design (one round, pool of ``n`` candidates, batch of ``k``):

1. ``n_audit`` *audit* items are drawn uniformly without replacement. They feed the audit-only
   estimator, which needs no weights at all.
2. The other ``k - n_audit`` items are drawn from the remaining ``n - n_audit`` candidates with
   probability proportional to size (systematic PPS sampling in a random order; Madow 1949):
   target probabilities ``pi_i = min(1, c * q_i)`` summing to ``k - n_audit``, where ``q`` is a
   softmax of the scores at ``temperature`` mixed with ``uniform_mix`` of the uniform
   distribution. The uniform floor bounds the weights ``1 / pi_i`` (defensive importance
   sampling), so a confident strategy cannot make the estimate's variance explode.

The inclusion probability logged for an item is one that makes the Horvitz-Thompson sum
``sum(y_i / pi_i)`` over the batch an unbiased estimate of ``sum(y_i)`` over the pool:

- with one audit item (the default), every item's exact *unconditional* probability of ending
  in the batch (:func:`unconditional_inclusion`). An audited error then carries its full weight
  (about ``n``), which keeps the weighted estimate honest when the strategy avoids errors;
- with several audit items the unconditional probability has no cheap exact form, so the
  *conditional* design is logged: PPS items their probability given the audit draw (exact for
  systematic sampling), audit items ``1`` (given the draw they are a census of themselves);
- with no PPS items, ``n_audit / n`` (a plain uniform sample).

Either way ``E[sum over batch of y_i / pi_i] = sum over pool of y_i``; the tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Batch:
    """A drawn batch.

    Attributes
    ----------
    indices : ndarray of shape (k,)
        Positions in the candidate pool, audit items first.
    inclusion_prob : ndarray of shape (k,)
        The probability to log with each label (the Horvitz-Thompson weight is its inverse).
    is_audit : ndarray of bool, shape (k,)
        True for the uniformly drawn audit items.
    audit_prob : float
        Probability of each pool item being an audit item (``n_audit / n``), for the record.
    """

    indices: np.ndarray
    inclusion_prob: np.ndarray
    is_audit: np.ndarray
    audit_prob: float

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def softmax_mixture(scores: ArrayLike, temperature: float, uniform_mix: float) -> np.ndarray:
    """Selection weights: softmax of standardised ``scores / temperature``, mixed with the uniform.

    Higher score = more wanted. Scores are divided by their standard deviation first, so one
    temperature suits every strategy whatever its score scale (margins in [0, 1], distances,
    log-odds). ``temperature`` sets how strongly the ranking is followed; ``uniform_mix`` is the
    share of the uniform distribution that keeps every item's probability (and so the
    estimator's weights) bounded.

    >>> softmax_mixture([0.0, 0.0], temperature=1.0, uniform_mix=0.1).tolist()
    [0.5, 0.5]
    """
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"scores should be a non-empty 1-d array, got shape {s.shape}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores should be finite; got NaN or infinite values.")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} should be > 0.")
    if not 0.0 <= uniform_mix <= 1.0:
        raise ValueError(f"uniform_mix={uniform_mix!r} should be in [0, 1].")
    spread = s.std()
    z = (s - s.max()) / (spread if spread > 0 else 1.0) / temperature
    p = np.exp(z)
    p /= p.sum()
    return (1.0 - uniform_mix) * p + uniform_mix / s.size


def pps_probabilities(weights: ArrayLike, size: int) -> np.ndarray:
    """Inclusion probabilities proportional to ``weights``, capped at 1, summing to ``size``.

    Items whose proportional share would exceed 1 are taken with certainty and the remaining
    size is shared among the others (the standard iterative capping).

    >>> pps_probabilities([1.0, 1.0, 8.0], 2).tolist()
    [0.5, 0.5, 1.0]
    """
    w = np.asarray(weights, dtype=float)
    n = w.size
    if np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights should be finite and > 0.")
    if not 0 <= size <= n:
        raise ValueError(f"size={size} should be between 0 and the number of items {n}.")
    pi = np.zeros(n)
    certain = np.zeros(n, dtype=bool)
    while True:
        remaining = size - certain.sum()
        free = ~certain
        pi[free] = remaining * w[free] / w[free].sum() if remaining > 0 else 0.0
        over = free & (pi >= 1.0)
        if not over.any():
            break
        certain |= over
    pi[certain] = 1.0
    return np.clip(pi, 0.0, 1.0)


def systematic_sample(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fixed-size sample with exact first-order inclusion probabilities ``pi``.

    Items are put in a random order, their probabilities laid end to end on [0, size), and the
    items under the points ``u, u + 1, ...`` (``u`` uniform in [0, 1)) are taken. Each ``pi_i``
    <= 1 so no item is hit twice, and item ``i`` is hit with probability exactly ``pi_i``.
    """
    size = round(float(pi.sum()))
    if size == 0:
        return np.empty(0, dtype=int)
    order = rng.permutation(pi.size)
    edges = np.cumsum(pi[order])
    edges[-1] = size  # remove rounding drift so the last point always lands
    points = rng.uniform() + np.arange(size)
    hit = np.searchsorted(edges, points, side="right")
    return order[hit]


def draw_batch(
    scores: ArrayLike,
    k: int,
    rng: np.random.Generator,
    *,
    n_audit: int = 1,
    temperature: float = 1.0,
    uniform_mix: float = 0.2,
) -> Batch:
    """Draw ``k`` candidates: ``n_audit`` uniformly, the rest by score, with logged probabilities.

    Parameters
    ----------
    scores : array-like of shape (n_candidates,)
        Any strategy's preference (higher = ask sooner), e.g. margin uncertainty or ATLAS's
        probability that the model is wrong. Only the ranking and spread matter.
    k : int
        Batch size; if the pool is smaller, the whole pool is taken (each with probability 1).
    rng : numpy.random.Generator
        Source of randomness (pass a seeded generator for reproducible rounds).
    n_audit : int, default=1
        Number of uniform audit items, at least 1 so the audit stream never dries up.
    temperature : float, default=1.0
        Softmax temperature on the standardised scores; lower follows the strategy more greedily.
        At 1.0 an item one standard deviation above another is e (2.7) times as likely.
    uniform_mix : float, default=0.2
        Share of the uniform distribution mixed into the score-based probabilities; it bounds
        each PPS item's weight by ``(n - n_audit) / ((k - n_audit) * uniform_mix)``.

    Returns
    -------
    Batch
    """
    s = np.asarray(scores, dtype=float)
    n = s.size
    if n == 0:
        raise ValueError("scores should hold at least one candidate, got an empty pool.")
    if k < 1:
        raise ValueError(f"k={k} should be >= 1.")
    if n_audit < 1:
        raise ValueError(f"n_audit={n_audit} should be >= 1: the audit stream must not dry up.")
    q_all = softmax_mixture(s, temperature, uniform_mix)  # validates the other parameters
    if n <= k:
        idx = rng.permutation(n)
        audit = np.zeros(n, dtype=bool)
        audit[: min(n_audit, n)] = True
        return Batch(idx, np.ones(n), audit, 1.0)
    n_audit = min(n_audit, k)
    audit_idx = rng.choice(n, size=n_audit, replace=False)
    rest = np.setdiff1d(np.arange(n), audit_idx)
    n_rest = k - n_audit
    if n_rest == 0:
        p = np.full(n_audit, n_audit / n)
        return Batch(audit_idx, p, np.ones(n_audit, dtype=bool), n_audit / n)
    pi_rest = pps_probabilities(q_all[rest], n_rest)
    picked = systematic_sample(pi_rest, rng)
    indices = np.concatenate([audit_idx, rest[picked]])
    if n_audit == 1:
        probs = unconditional_inclusion(q_all, n_rest)[indices]
    else:
        probs = np.concatenate([np.ones(n_audit), pi_rest[picked]])
    is_audit = np.concatenate([np.ones(n_audit, dtype=bool), np.zeros(n_rest, dtype=bool)])
    return Batch(indices, probs, is_audit, n_audit / n)


def unconditional_inclusion(q: np.ndarray, n_rest: int) -> np.ndarray:
    """Exact probability that each item ends in the batch: one uniform audit, then PPS.

    ``pi_i = 1/n + sum over a != i of (1/n) * pi_i(pool without a)``, computed by redoing the
    capped PPS allocation for each possible audit item: O(n^2), cheap for the tens of answerable
    uses in a round.
    """
    n = q.size
    weights = np.tile(q, (n, 1))
    np.fill_diagonal(weights, 0.0)  # row a: the pool once item a is the audit
    pi_given_audit = _pps_rows(weights, n_rest)
    np.fill_diagonal(pi_given_audit, 1.0)  # the audit item itself is in the batch
    return np.minimum(pi_given_audit.mean(axis=0), 1.0)


def _pps_rows(weights: np.ndarray, size: int) -> np.ndarray:
    """:func:`pps_probabilities` for every row at once (zero weights stay at probability 0)."""
    pi = np.zeros_like(weights)
    certain = np.zeros(weights.shape, dtype=bool)
    while True:
        free_w = np.where(certain, 0.0, weights)
        remaining = size - certain.sum(axis=1, keepdims=True)
        pi = np.where(certain, 1.0, remaining * free_w / free_w.sum(axis=1, keepdims=True))
        over = ~certain & (pi >= 1.0)
        if not over.any():
            return np.clip(pi, 0.0, 1.0)
        certain |= over
