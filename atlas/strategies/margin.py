"""Margin sampling: ask about the uses whose top two guesses are closest (at a chosen level).

WHY a level: early on the homeowner sees categories, and a use that is torn between the hot and
cold valve of the same sink is not worth a question when the category is what matters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from atlas.domain import LEVELS
from atlas.strategies._base import Pool, QueryStrategy


def margin_scores(proba: np.ndarray) -> np.ndarray:
    """``1 - (p_top1 - p_top2)`` per row: 1 when the two best classes tie, 0 when one has all.

    >>> margin_scores(np.array([[0.5, 0.5], [1.0, 0.0]])).tolist()
    [1.0, 0.0]
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 1:
        raise ValueError(f"proba has shape {proba.shape}; expected (n_samples, n_classes >= 1).")
    if proba.shape[1] == 1:
        return np.zeros(proba.shape[0])
    top2 = -np.sort(-proba, axis=1)[:, :2]
    return 1.0 - (top2[:, 0] - top2[:, 1])


def level_probabilities(clf: Any, X: np.ndarray, level: str) -> np.ndarray:
    """``clf``'s probabilities at ``level``; plain classifiers only have the "valve" level."""
    if level not in LEVELS:
        raise ValueError(f"level={level!r} should be one of {LEVELS}.")
    if hasattr(clf, "predict_level_proba") and getattr(clf, "hierarchy", None) is not None:
        return clf.predict_level_proba(X, level)[0]
    if level != "valve":
        raise ValueError(f"level={level!r} needs a classifier with a hierarchy.")
    return clf.predict_proba(X)


class MarginSampling(QueryStrategy):
    """Smallest top-2 margin first.

    Parameters
    ----------
    level : {"valve", "fixture", "category"}, default="valve"
    random_state : int, RandomState instance or None, default=None
        Breaks ties.
    """

    def __init__(
        self, level: str = "valve", random_state: int | np.random.RandomState | None = None
    ) -> None:
        super().__init__(random_state=random_state)
        self.level = level

    def _utilities(self, pool: Pool, clf: Any, batch_size: int) -> np.ndarray:
        scores = margin_scores(level_probabilities(clf, pool.X[pool.candidates], self.level))
        return np.tile(scores, (batch_size, 1))
