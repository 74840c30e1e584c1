"""The interface every label-selection strategy implements (scikit-activeml style).

WHY one interface: the service, :mod:`atlas.sampling` and the calibration benchmark call
strategies interchangeably, and the conformance test runs the same checks on each. A strategy
sees every use of the home (``X``), the labels so far (``y``, ``None`` = unlabeled), the fitted
classifier and the indices of the uses that may be asked about (``candidates``, from
:func:`atlas.strategies.candidates.answerable`). It returns the picks and, on request, the
utilities behind them: ``utilities[j]`` scores every use for pick ``j`` given picks ``0..j-1``
(NaN for non-candidates and for uses already picked). Higher means more wanted.
:func:`atlas.sampling.draw_batch` turns a row of utilities into a stochastic draw with logged
inclusion probabilities; the deterministic picks are for analysis and tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from atlas.classifier import is_labeled


@dataclass(frozen=True, eq=False)
class Pool:
    """What a strategy sees in one query (validated by :meth:`QueryStrategy.query`).

    ``tie_order`` ranks the candidates for tie-breaking (a random permutation drawn from the
    strategy's ``random_state``); adaptive strategies use :meth:`pick` to know which candidate
    the base class will take for a row of utilities.
    """

    X: np.ndarray
    y: np.ndarray
    labeled: np.ndarray  # indices into X
    candidates: np.ndarray  # indices into X
    tie_order: np.ndarray
    rng: np.random.RandomState

    def pick(self, row: np.ndarray, picked: list[int]) -> int:
        """Position in ``candidates`` of the best utility not yet picked (ties: ``tie_order``)."""
        r = np.asarray(row, dtype=float).copy()
        r[picked] = -np.inf
        ties = np.flatnonzero(r == np.max(r))
        return int(ties[np.argmin(self.tie_order[ties])])


class QueryStrategy(BaseEstimator, ABC):
    """Base class: validates the pool, calls :meth:`_utilities`, returns picks and utilities.

    Subclasses implement ``_utilities(pool, clf, batch_size)`` returning an array
    (batch_size, n_candidates): row ``j`` is used for pick ``j`` (:meth:`Pool.pick` over the
    candidates not yet picked). A strategy whose scores do not depend on earlier picks returns
    the same row ``batch_size`` times; an adaptive one calls ``pool.pick`` to follow the picks.
    """

    def __init__(self, random_state: int | np.random.RandomState | None = None) -> None:
        self.random_state = random_state

    def query(
        self,
        X: Any,
        y: Any,
        clf: Any,
        *,
        candidates: Any = None,
        batch_size: int = 1,
        return_utilities: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Pick ``batch_size`` uses to ask about.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All uses of the home (labeled and unlabeled), as the classifier was fitted on.
        y : array-like of shape (n_samples,)
            Labels so far; ``None`` for unlabeled uses.
        clf : fitted classifier
            Fitted on ``(X, y)``; strategies that need no model accept ``None``.
        candidates : array-like of int, default=None
            Indices into ``X`` that may be asked about. None: every unlabeled use. Labeled
            indices are refused (a use is never asked twice).
        batch_size : int, default=1
        return_utilities : bool, default=False

        Returns
        -------
        query_indices : ndarray of shape (batch_size,)
            Indices into ``X``, in pick order.
        utilities : ndarray of shape (batch_size, n_samples)
            Only with ``return_utilities``; NaN outside the candidates and for earlier picks.
        """
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=object).ravel()
        if X.ndim != 2 or y.shape[0] != X.shape[0]:
            raise ValueError(f"X has shape {X.shape} and y {y.shape}; expected 2-d X, same rows.")
        labeled = is_labeled(y)
        if candidates is None:
            cand = np.flatnonzero(~labeled)
        else:
            cand = np.asarray(candidates, dtype=int).ravel()
            if cand.size and (cand.min() < 0 or cand.max() >= X.shape[0]):
                raise ValueError(f"candidates must index X's {X.shape[0]} rows; got {cand}.")
            if np.unique(cand).size != cand.size:
                raise ValueError("candidates contains duplicate indices.")
            if labeled[cand].any():
                raise ValueError(f"candidates {cand[labeled[cand]].tolist()} are already labeled.")
        if not isinstance(batch_size, int | np.integer) or not 1 <= batch_size <= cand.size:
            raise ValueError(
                f"batch_size={batch_size!r} should be an int in [1, n_candidates={cand.size}]."
            )
        rng = check_random_state(self.random_state)
        pool = Pool(X, y, np.flatnonzero(labeled), cand, rng.permutation(cand.size), rng)
        util_c = np.asarray(self._utilities(pool, clf, batch_size), dtype=float)
        if util_c.shape != (batch_size, cand.size):
            raise RuntimeError(
                f"{type(self).__name__}._utilities returned shape {util_c.shape}; "
                f"expected {(batch_size, cand.size)}."
            )
        if not np.all(np.isfinite(util_c)):
            raise RuntimeError(f"{type(self).__name__}._utilities returned non-finite values.")
        picked: list[int] = []
        utilities = np.full((batch_size, X.shape[0]), np.nan)
        for j in range(batch_size):
            row = util_c[j].copy()
            row[picked] = np.nan
            utilities[j, cand] = row
            picked.append(pool.pick(util_c[j], picked))
        query_indices = cand[picked]
        return (query_indices, utilities) if return_utilities else query_indices

    def scores(self, X: Any, y: Any, clf: Any, *, candidates: Any = None) -> np.ndarray:
        """First-pick utilities over ``candidates`` (1-d), for :func:`atlas.sampling.draw_batch`."""
        cand = np.flatnonzero(~is_labeled(y)) if candidates is None else np.asarray(candidates)
        _, utilities = self.query(X, y, clf, candidates=cand, batch_size=1, return_utilities=True)
        return utilities[0, cand.astype(int)]

    @abstractmethod
    def _utilities(self, pool: Pool, clf: Any, batch_size: int) -> np.ndarray:
        """Utilities (batch_size, n_candidates) as described in the class docstring."""

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        """Parameters the conformance test constructs this strategy with."""
        return {"random_state": 0}
