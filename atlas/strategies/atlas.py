"""ATLAS: active transfer learning for adaptive sampling (Munro, *Human-in-the-Loop ML*, ch. 5).

A small "is the model correct here?" model is trained on the base classifier's hidden
representation (:meth:`atlas.classifier.HierarchicalClassifier.embedding`, plus its confidence
at each level) of labeled uses marked correct or wrong. It then scores the candidates by the
probability that the base model is WRONG there; the most likely wrong use is picked, added back
as presumed correct (it is about to be labeled, so its neighbourhood is being taken care of),
the correctness model is retrained, and the next use is picked: one per pass, so it adapts
within a round of 2-4 questions.

Three choices WHY, against the pitfalls of the reference implementation
(the book's code, rmunro/pytorch_active_learning, ``advanced_active_learning.py``):

* The score is P(wrong), highest first; the reference returns items most likely correct first.
  ``tests/atlas/strategies/test_atlas.py`` tests the direction.
* Correct/wrong marks come from cross-validated predictions: a model scored on its own training
  labels is almost never wrong. With 20-60 labels errors are rare, so every labeled use gives
  one row per level (valve, fixture, category, with a level indicator), pooling the errors; with
  fewer than ``min_errors`` wrong rows (or fewer than ``min_errors`` correct ones) the
  correctness model cannot be trained and the strategy falls back to diversity.
* Combined with diversity: P(wrong) is weighted by the use's typicality in a KMedoids
  clustering, so an outlier the model is unsure about does not beat a common kind of use it
  keeps getting wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from atlas.domain import LEVELS
from atlas.strategies._base import Pool, QueryStrategy
from atlas.strategies.diversity import cluster_typicality, diversity_utilities
from atlas.strategies.margin import level_probabilities


def correctness_scores(
    H_train: np.ndarray, wrong: np.ndarray, H_pool: np.ndarray, *, C: float = 1.0
) -> np.ndarray:
    """P(the base model is wrong) for each row of ``H_pool``, from labeled rows marked ``wrong``.

    A class-balanced logistic regression (the linear correctness layer of the reference), on
    standardized inputs. Needs both correct and wrong rows.
    """
    wrong = np.asarray(wrong, dtype=bool)
    if wrong.all() or not wrong.any():
        raise ValueError(
            f"wrong has {int(wrong.sum())} of {wrong.size} rows marked wrong; needs both kinds."
        )
    scaler = StandardScaler().fit(H_train)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=500)
    model.fit(scaler.transform(H_train), wrong)
    return model.predict_proba(scaler.transform(H_pool))[:, list(model.classes_).index(True)]


def levels_of(clf: Any) -> tuple[str, ...]:
    """Levels ``clf`` can predict: all three with a hierarchy, else only "valve"."""
    return LEVELS if getattr(clf, "hierarchy", None) is not None else ("valve",)


def representation(clf: Any, X: np.ndarray, level: str, levels: tuple[str, ...]) -> np.ndarray:
    """Correctness-model input: hidden representation, top-1 probability and margin, level one-hot.

    Plain classifiers without ``embedding`` contribute their probabilities as representation.
    """
    hidden = clf.embedding(X) if hasattr(clf, "embedding") else clf.predict_proba(X)
    proba = level_probabilities(clf, X, level)
    top2 = -np.sort(-proba, axis=1)[:, :2]
    margin = top2[:, 0] - (top2[:, 1] if proba.shape[1] > 1 else 0.0)
    onehot = np.zeros((X.shape[0], len(levels)))
    onehot[:, levels.index(level)] = 1.0
    return np.hstack([hidden, top2[:, :1], margin[:, None], onehot])


def cross_validated_correctness(
    clf: Any, pool: Pool, n_splits: int, levels: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (representation) and wrong-marks of every labeled use at every level, held out.

    Each fold refits a clone of ``clf`` with the fold's labels hidden (they stay in ``X`` as
    unlabeled uses, as they would be in the home), then scores the hidden ones.
    """
    labeled = pool.labeled
    folds = KFold(n_splits=min(n_splits, labeled.size), shuffle=True, random_state=pool.rng)
    H_rows, wrong_rows = [], []
    for _, test in folds.split(labeled):
        y_fold = pool.y.copy()
        y_fold[labeled[test]] = None
        model = clone(clf).fit(pool.X, y_fold)
        X_test = pool.X[labeled[test]]
        truth = pool.y[labeled[test]]
        for level in levels:
            proba, names = _named_level_proba(model, X_test, level)
            predicted = np.asarray(names, dtype=object)[np.argmax(proba, axis=1)]
            wanted = np.array([_label_at(model, t, level) for t in truth.tolist()], dtype=object)
            H_rows.append(representation(model, X_test, level, levels))
            wrong_rows.append(predicted != wanted)
    return np.vstack(H_rows), np.concatenate(wrong_rows)


def _named_level_proba(clf: Any, X: np.ndarray, level: str) -> tuple[np.ndarray, tuple]:
    if getattr(clf, "hierarchy", None) is not None:
        return clf.predict_level_proba(X, level)
    return clf.predict_proba(X), tuple(clf.classes_.tolist())


def _label_at(clf: Any, label: Any, level: str) -> Any:
    hierarchy = getattr(clf, "hierarchy", None)
    return label if hierarchy is None else hierarchy.label_at(label, level)


class AtlasSampling(QueryStrategy):
    """Most-likely-wrong first, one pick per pass, adapting after each; diversity-weighted.

    Parameters
    ----------
    level : {"valve", "fixture", "category"}, default="valve"
        The level whose correctness is scored for the candidates (training pools all levels).
    n_splits : int, default=5
        Folds of the cross-validated predictions that mark labeled uses correct or wrong.
    min_errors : int, default=3
        Below this many wrong (or correct) rows the correctness model is not trained and the
        strategy falls back to :class:`~atlas.strategies.diversity.DiversitySampling`.
    diversity_weight : float, default=0.5
        0: pure P(wrong); 1: P(wrong) times typicality.
    C : float, default=0.1
        Inverse regularization of the correctness model: strong, since it learns from a few
        dozen labeled rows (C=1.0 gave lower accuracy in ``atlas bench learning``, seed 1).
    columns : slice, sequence of int or None, default=None
        Feature columns for the diversity clustering (see ``DiversitySampling``).
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    fell_back_ : bool
        Whether the last query used the diversity fallback (for logs and the benchmark).
    n_errors_ : int
        Wrong rows (pooled over levels) the last query found among the labeled uses.
    """

    def __init__(
        self,
        level: str = "valve",
        n_splits: int = 5,
        min_errors: int = 3,
        diversity_weight: float = 0.5,
        C: float = 0.1,
        columns: slice | tuple[int, ...] | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__(random_state=random_state)
        self.level = level
        self.n_splits = n_splits
        self.min_errors = min_errors
        self.diversity_weight = diversity_weight
        self.C = C
        self.columns = columns

    def _utilities(self, pool: Pool, clf: Any, batch_size: int) -> np.ndarray:
        if not 0.0 <= self.diversity_weight <= 1.0:
            raise ValueError(f"diversity_weight={self.diversity_weight!r} should be in [0, 1].")
        if self.n_splits < 2:
            raise ValueError(f"n_splits={self.n_splits!r} should be >= 2.")
        levels = levels_of(clf)
        if self.level not in levels:
            raise ValueError(f"level={self.level!r} should be one of {levels} for this clf.")
        self.fell_back_, self.n_errors_ = True, 0
        if pool.labeled.size < 2:
            return diversity_utilities(pool, batch_size, self.columns)
        rng_state = pool.rng.get_state()
        H_train, wrong = cross_validated_correctness(clf, pool, self.n_splits, levels)
        self.n_errors_ = int(wrong.sum())
        if min(self.n_errors_, wrong.size - self.n_errors_) < self.min_errors:
            pool.rng.set_state(rng_state)  # the fallback picks exactly what diversity would
            return diversity_utilities(pool, batch_size, self.columns)
        self.fell_back_ = False

        X_cand = pool.X[pool.candidates]
        H_cand = representation(clf, X_cand, self.level, levels)
        H_cand_all = [representation(clf, X_cand, lv, levels) for lv in levels]
        weight = self._typicality_weight(pool)
        out = np.empty((batch_size, pool.candidates.size))
        picked: list[int] = []
        for j in range(batch_size):
            p_wrong = correctness_scores(H_train, wrong, H_cand, C=self.C)
            out[j] = p_wrong * weight
            picked.append(pool.pick(out[j], picked))
            # presumed correct at every level: it will be labeled, so do not chase it twice
            H_train = np.vstack([H_train, *(h[picked[-1] : picked[-1] + 1] for h in H_cand_all)])
            wrong = np.concatenate([wrong, np.zeros(len(levels), dtype=bool)])
        return out

    def _typicality_weight(self, pool: Pool) -> np.ndarray:
        """``1 - w + w * typicality`` of each candidate among the candidates."""
        if self.diversity_weight == 0 or pool.candidates.size < 2:
            return np.ones(pool.candidates.size)
        X = pool.X[pool.candidates]
        F = X if self.columns is None else X[:, self.columns]
        Z = StandardScaler().fit_transform(F)
        n_clusters = max(1, min(pool.candidates.size // 5, 20))
        _, typ = cluster_typicality(Z, n_clusters, pool.rng)
        return 1.0 - self.diversity_weight + self.diversity_weight * typ

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        return {"random_state": 0, "n_splits": 3}
