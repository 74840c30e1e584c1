"""Random sampling: the baseline every other strategy must beat at equal labels."""

from __future__ import annotations

from typing import Any

import numpy as np

from atlas.strategies._base import Pool, QueryStrategy


def random_scores(n_candidates: int, rng: np.random.RandomState) -> np.ndarray:
    """Uniform scores in [0, 1): a uniformly random ranking of the candidates."""
    if n_candidates < 0:
        raise ValueError(f"n_candidates={n_candidates} should be >= 0.")
    return rng.random_sample(n_candidates)


class RandomSampling(QueryStrategy):
    """Pick uniformly at random among the candidates (``clf`` is ignored and may be None).

    Parameters
    ----------
    random_state : int, RandomState instance or None, default=None
    """

    def _utilities(self, pool: Pool, clf: Any, batch_size: int) -> np.ndarray:
        return np.tile(random_scores(pool.candidates.size, pool.rng), (batch_size, 1))
