"""Outside reference for ``atlas bench calibration``: scikit-activeml's UncertaintySampling.

WHY an adapter and not a re-implementation: the point of an outside reference is that its
scores come from someone else's code. :class:`SkactivemlUncertainty` implements the engine's
:class:`atlas.strategies.QueryStrategy` interface and asks
``skactiveml.pool.UncertaintySampling.query`` (``fit_clf=False``) for the utilities, with the
engine's already-fitted classifier wrapped as a scikit-activeml classifier over integer-coded
valves (missing label -1). Only the benchmark imports this module (scikit-activeml is the
``bench`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skactiveml.base import SkactivemlClassifier
from skactiveml.pool import UncertaintySampling

from atlas.classifier import is_labeled
from atlas.strategies import Pool, QueryStrategy

METHODS = ("least_confident", "margin_sampling", "entropy")


class _Prefitted(SkactivemlClassifier):
    """A fitted Atlas classifier seen through scikit-activeml's classifier interface."""

    def __init__(self, clf: Any = None, classes: Any = None, missing_label: int = -1) -> None:
        super().__init__(classes=classes, missing_label=missing_label)
        self.clf = clf

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _Prefitted:
        raise RuntimeError("_Prefitted wraps an already fitted classifier; use fit_clf=False.")

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.clf.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


class SkactivemlUncertainty(QueryStrategy):
    """scikit-activeml ``UncertaintySampling`` behind the engine's strategy interface.

    Parameters
    ----------
    method : {"least_confident", "margin_sampling", "entropy"}, default="least_confident"
        Passed to scikit-activeml (its default).
    random_state : int, RandomState instance or None, default=None
    """

    def __init__(
        self,
        method: str = "least_confident",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__(random_state=random_state)
        self.method = method

    def _utilities(self, pool: Pool, clf: Any, batch_size: int) -> np.ndarray:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} should be one of {METHODS}.")
        if clf is None:
            raise ValueError("clf is None; uncertainty sampling needs a fitted classifier.")
        classes = list(clf.classes_)
        index = {c: i for i, c in enumerate(classes)}
        labeled = is_labeled(pool.y)
        y = np.full(len(pool.y), -1)
        y[labeled] = [index[v] for v in pool.y[labeled]]
        wrapped = _Prefitted(clf, classes=np.arange(len(classes)), missing_label=-1)
        seed = int(pool.rng.randint(2**31 - 1))
        qs = UncertaintySampling(method=self.method, missing_label=-1, random_state=seed)
        _, utilities = qs.query(
            pool.X,
            y,
            wrapped,
            fit_clf=False,
            candidates=pool.candidates,
            batch_size=1,
            return_utilities=True,
        )
        row = np.asarray(utilities[0], dtype=float)[pool.candidates]
        return np.tile(row, (batch_size, 1))

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        return {"random_state": 0}


def make_reference(seed: int) -> QueryStrategy:
    """``strategy_factory`` for :class:`atlas.engine.CalibrationEngine`."""
    return SkactivemlUncertainty(random_state=seed)
