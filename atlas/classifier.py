"""Per-home hierarchical use classifier: a probability for every valve, summed upwards.

WHY this shape:

* The homeowner sees category, fixture or valve depending on what the system can back up, so
  the three levels must never contradict each other. The model therefore predicts valves only and
  :func:`level_proba` sums columns up the :class:`~atlas.domain.Hierarchy`.
* A home has a handful of labels (8-60) and thousands of unlabeled uses. The unlabeled uses are
  used twice: label spreading over a k-nearest-neighbour graph of all uses gives pseudo-labels to
  uses near labeled ones (self-training), and the rule classifier's category decision enters as a
  likelihood ("virtual evidence") on every use, so even a fixture nobody labeled yet can win.
* The home spec gives structure for free: a use seen only on the hot line cannot be a cold-only
  valve. That is a hard mask, not something to learn from 20 labels.
* Valves nobody labeled yet keep a small smoothing mass, so nothing possible is ever exactly 0.

The feature layout (which columns are the line indicators and the rule evidence) comes from
:mod:`atlas.features`; :meth:`HierarchicalClassifier.for_home` wires it up. With the default
parameters the estimator is a plain semi-supervised classifier (classes taken from ``y``), which
is what the scikit-learn conformance checks exercise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import kneighbors_graph
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.extmath import softmax
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import ThreadpoolController

from atlas.domain import LEVELS, Category, Handle, Hierarchy, Line
from atlas.features import EVIDENCE_COLUMNS, LINE_COLUMNS
from atlas.homespec import HomeSpec

#: Marks an unlabeled use in ``y`` (semi-supervised convention, as scikit-learn's -1).
MISSING_LABEL = None

#: Category order of the evidence columns (the enum order, fixed across homes).
EVIDENCE_CATEGORIES: tuple[Category, ...] = tuple(Category)


_BLAS: list[ThreadpoolController] = []  # created on first use, then reused


def _one_blas_thread():
    """A context limiting BLAS to one thread.

    WHY a shared controller: ``threadpool_limits()`` scans the process's loaded libraries at
    every call (~1 ms); a provisional classification made three such calls for one row.
    """
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def is_labeled(y: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Boolean mask of the labeled entries of ``y`` (anything but ``None`` or NaN)."""
    y = np.asarray(y, dtype=object)
    return np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in y])


def rowwise_proba(head: LogisticRegression, Z: np.ndarray) -> np.ndarray:
    """``head.predict_proba(Z)``, with each row's result independent of the other rows.

    WHY: BLAS picks its kernels by matrix size, so a row's probabilities differed in the last
    bits between a batch of a few rows and the whole home. The engine predicts only the rows
    an ingest changed and must agree bit for bit with predicting every row, or a near-tie in
    a later fit (label spreading's neighbours) decides differently. Same formulas as
    scikit-learn's: softmax of the decision function, or expit for two classes.
    """
    coef = np.ascontiguousarray(head.coef_)  # einsum's sums follow the memory order
    decision = np.einsum("ij,kj->ik", np.ascontiguousarray(Z), coef) + head.intercept_
    if decision.shape[1] == 1:
        p = expit(decision[:, 0])
        return np.vstack([1 - p, p]).T
    return softmax(decision, copy=False)


def level_matrix(hierarchy: Hierarchy, level: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """0/1 matrix (n_valves, n_groups) mapping valve columns to ``level`` groups, and group names.

    ``proba_valve @ M`` gives the probabilities at ``level``: sums over the hierarchy.
    """
    if level not in LEVELS:
        raise ValueError(f"level={level!r} should be one of {LEVELS}.")
    groups = tuple(dict.fromkeys(hierarchy.label_at(v, level) for v in hierarchy.valve_ids))
    index = {g: i for i, g in enumerate(groups)}
    matrix = np.zeros((len(hierarchy.valve_ids), len(groups)))
    for row, vid in enumerate(hierarchy.valve_ids):
        matrix[row, index[hierarchy.label_at(vid, level)]] = 1.0
    return matrix, groups


def level_proba(
    proba_valve: np.ndarray, hierarchy: Hierarchy, level: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Probabilities at ``level`` (columns named by the returned labels), summed from valves."""
    proba_valve = np.asarray(proba_valve, dtype=float)
    n_valves = len(hierarchy.valve_ids)
    if proba_valve.ndim != 2 or proba_valve.shape[1] != n_valves:
        raise ValueError(
            f"proba_valve has shape {proba_valve.shape}; expected (n_samples, {n_valves})."
        )
    matrix, groups = level_matrix(hierarchy, level)
    return np.einsum("ij,jk->ik", proba_valve, matrix), groups  # rows independent


def line_compatibility(
    valve_lines: Mapping[str, Sequence[str]],
    valve_ids: Sequence[str],
    *,
    paired_valves: Sequence[str] = (),
    leak: float = 0.02,
) -> dict[tuple[bool, bool], np.ndarray]:
    """Per observed (hot, cold) pattern, a weight per valve: 1 plausible, ``leak``, or 0 impossible.

    * A use on lines that the valve does not draw from at all is impossible (0).
    * A use on exactly the valve's lines is plausible (1).
    * A two-line use on a one-line valve is plausible for valves in ``paired_valves`` (an appliance
      whose hot and cold solenoids fill at once) and unlikely (``leak``) otherwise: pairing may
      have merged two overlapping uses.
    * A one-line use on a mixed valve is unlikely (``leak``): the other line's transient was missed.
    """
    hot, cold = str(Line.HOT), str(Line.COLD)
    table: dict[tuple[bool, bool], np.ndarray] = {}
    for pattern in ((True, False), (False, True), (True, True), (False, False)):
        seen = {line for line, on in zip((hot, cold), pattern, strict=True) if on}
        weights = np.empty(len(valve_ids))
        for col, vid in enumerate(valve_ids):
            lines = {str(line) for line in valve_lines[vid]}
            if not seen:
                weights[col] = 1.0  # no line information: no constraint
            elif not seen & lines:
                weights[col] = 0.0
            elif seen == lines or (seen > lines and vid in paired_valves):
                weights[col] = 1.0
            else:
                weights[col] = leak
        table[pattern] = weights
    return table


class HierarchicalClassifier(ClassifierMixin, BaseEstimator):
    """Semi-supervised valve classifier with line masking and category-level rule evidence.

    ``fit(X, y)`` takes every use of the home: labeled rows carry a valve id, unlabeled rows
    :data:`MISSING_LABEL` (``None``). The pipeline is: standardize all rows; spread the labels
    over a kNN graph of all rows (respecting the line mask and the rule evidence); keep the
    confident spread labels as weighted pseudo-labels; fit a multinomial logistic regression
    on labels + pseudo-labels. Prediction multiplies the regression's probabilities (smoothed
    over all valves) by the line mask and the rule evidence, and renormalizes.

    Parameters
    ----------
    hierarchy : Hierarchy or None, default=None
        The home's valves (column order of ``predict_proba``). None: classes come from ``y``.
    valve_lines : mapping of str to sequence of str or None, default=None
        Lines each valve draws from; needed with ``line_columns``.
    paired_valves : tuple of str, default=()
        One-line valves of appliances that fill hot and cold at once (see
        :func:`line_compatibility`).
    line_columns : tuple of (int, int) or None, default=None
        Columns of ``X`` holding the hot and cold line indicators (0/1). None: no masking.
    evidence_columns : tuple of (int, int) or None, default=None
        ``(start, stop)`` of the rule-evidence columns of ``X``: one likelihood per category in
        :data:`EVIDENCE_CATEGORIES` order. None: no evidence.
    physics_columns : tuple of (int, int) or None, default=None
        ``(start, stop)`` of the spec-physics log-likelihood columns of ``X``: one per valve of
        the hierarchy (:func:`atlas.physics_prior.ring_log_likelihood`). They multiply the
        probabilities (like the line mask) and are kept out of the standardized features the
        linear head and the kNN graph see. None: no physics prior.
    physics_power : float, default=1.0
        Exponent tempering the physics likelihood (0 ignores it).
    evidence_power : float, default=0.3
        Exponent tempering the rule evidence (0 ignores it). Tempered because the rules'
        precisions are not calibrated yet: on two_bath_house seed 1 they were right on 59% of
        the uses they decided, and full-strength evidence cost accuracy (docs/learning.md).
    smoothing : float, default=0.02
        Probability mass spread uniformly over all valves before masking, so unlabeled valves
        keep a non-zero probability.
    n_neighbors : int, default=10
        Neighbours per use in the label-spreading graph.
    spreading_alpha : float, default=0.9
        Label-spreading clamping factor (scikit-learn's ``LabelSpreading.alpha``).
    pseudo_threshold : float, default=0.8
        Minimum spread confidence for an unlabeled use to become a pseudo-label.
    pseudo_weight : float, default=0.3
        Sample weight of a pseudo-label relative to a real label (times its confidence).
    C : float, default=10.0
        Inverse regularization of the logistic regression.
    random_state : int, RandomState instance or None, default=None
        Unused by the deterministic solver today; kept so clones and strategies can pass one.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Valve ids (the hierarchy order) or the sorted labels of ``y``.
    scaler_ : StandardScaler
        Fitted on all rows, labeled and unlabeled (the columns of ``feature_mask_``).
    feature_mask_ : ndarray of bool
        Columns of ``X`` the scaler, the graph and the head see (all but the physics columns).
    head_ : LogisticRegression or None
        The linear head; None when fewer than two classes were (pseudo-)labeled.
    head_columns_ : ndarray of int
        Column in ``classes_`` of each of the head's classes.
    n_pseudo_labels_ : int
        Unlabeled rows used as pseudo-labels in the last fit.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1], [0.05], [1.05]])
    >>> y = np.array(["a", "a", "b", "b", None, None], dtype=object)
    >>> HierarchicalClassifier(n_neighbors=2).fit(X, y).predict([[0.02], [1.02]]).tolist()
    ['a', 'b']
    """

    _parameter_constraints: ClassVar[dict] = {
        "hierarchy": [Hierarchy, None],
        "valve_lines": [Mapping, None],
        "paired_valves": [tuple],
        "line_columns": [tuple, None],
        "evidence_columns": [tuple, None],
        "physics_columns": [tuple, None],
        "physics_power": [Interval(Real, 0, None, closed="left")],
        "evidence_power": [Interval(Real, 0, None, closed="left")],
        "smoothing": [Interval(Real, 0, 1, closed="neither")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "spreading_alpha": [Interval(Real, 0, 1, closed="neither")],
        "pseudo_threshold": [Interval(Real, 0, 1, closed="both")],
        "pseudo_weight": [Interval(Real, 0, None, closed="left")],
        "C": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        hierarchy: Hierarchy | None = None,
        valve_lines: Mapping[str, Sequence[str]] | None = None,
        paired_valves: tuple[str, ...] = (),
        line_columns: tuple[int, int] | None = None,
        evidence_columns: tuple[int, int] | None = None,
        physics_columns: tuple[int, int] | None = None,
        physics_power: float = 1.0,
        evidence_power: float = 0.3,
        smoothing: float = 0.02,
        n_neighbors: int = 10,
        spreading_alpha: float = 0.9,
        pseudo_threshold: float = 0.8,
        pseudo_weight: float = 0.3,
        C: float = 10.0,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.hierarchy = hierarchy
        self.valve_lines = valve_lines
        self.paired_valves = paired_valves
        self.line_columns = line_columns
        self.evidence_columns = evidence_columns
        self.physics_columns = physics_columns
        self.physics_power = physics_power
        self.evidence_power = evidence_power
        self.smoothing = smoothing
        self.n_neighbors = n_neighbors
        self.spreading_alpha = spreading_alpha
        self.pseudo_threshold = pseudo_threshold
        self.pseudo_weight = pseudo_weight
        self.C = C
        self.random_state = random_state

    @classmethod
    def for_home(cls, spec: HomeSpec, **params: Any) -> HierarchicalClassifier:
        """A classifier wired to a :class:`~atlas.homespec.HomeSpec` and the feature layout.

        Uses :data:`atlas.features.LINE_COLUMNS` / ``EVIDENCE_COLUMNS`` for the masks.
        """
        paired = tuple(
            v.id for f in spec.fixtures if f.handle == Handle.SOLENOID_PAIR for v in f.valves
        )
        defaults: dict[str, Any] = {
            "hierarchy": spec.hierarchy,
            "valve_lines": {v.id: tuple(str(line) for line in v.lines) for v in spec.valves},
            "paired_valves": paired,
            "line_columns": LINE_COLUMNS,
            "evidence_columns": EVIDENCE_COLUMNS,
        }
        defaults.update(params)
        return cls(**defaults)

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any) -> HierarchicalClassifier:
        """Fit on all uses of a home; ``y`` is ``None`` for the unlabeled ones.

        BLAS runs single-threaded here: a home's matrices are small, and with threads on a
        shared 2-core machine the fit of 300 labeled + 3000 unlabeled uses measured 0.9-1.7 s
        instead of 0.07 s (docs/learning.md).
        """
        with _one_blas_thread(), warnings.catch_warnings():
            # one label per valve is normal here, not a sign of a regression target
            warnings.filterwarnings("ignore", message="The number of unique classes is greater")
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any) -> HierarchicalClassifier:
        self._validate_params()
        X = validate_data(self, X, reset=True, dtype=np.float64)
        if y is None:
            name = type(self).__name__
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        y = column_or_1d(np.asarray(y, dtype=object), warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} entries; X has {X.shape[0]} rows.")
        labeled = is_labeled(y)
        if not labeled.any():
            raise ValueError("y has no labeled entry; at least one label is needed to fit.")
        check_classification_targets(np.array(y[labeled].tolist()))
        self.classes_ = self._resolve_classes(y[labeled])
        self._check_structure(X.shape[1])
        index = {c: i for i, c in enumerate(self.classes_.tolist())}
        y_idx = np.full(X.shape[0], -1)
        y_idx[labeled] = [index[v] for v in y[labeled].tolist()]

        self.feature_mask_ = np.ones(X.shape[1], dtype=bool)
        if self.physics_columns is not None:
            self.feature_mask_[slice(*self.physics_columns)] = False
        self.scaler_ = StandardScaler().fit(X[:, self.feature_mask_])
        Z = self.scaler_.transform(X[:, self.feature_mask_])
        prior = self._prior(X)  # (n_samples, n_classes): line mask x rule evidence
        pseudo_idx, pseudo_conf = self._spread(Z, y_idx, prior)
        self.n_pseudo_labels_ = len(pseudo_idx)

        rows = np.concatenate([np.flatnonzero(labeled), pseudo_idx])
        targets = np.concatenate([y_idx[labeled], pseudo_conf.argmax(axis=1)])
        weights = np.concatenate([np.ones(labeled.sum()), self.pseudo_weight * pseudo_conf.max(1)])
        present = np.unique(targets)
        self.head_columns_ = present
        if len(present) < 2:
            self.head_ = None
        else:
            self.head_ = LogisticRegression(C=self.C, max_iter=300)
            self.head_.fit(Z[rows], targets, sample_weight=weights)
            self.head_columns_ = self.head_.classes_.astype(int)
        return self

    def _resolve_classes(self, y_labeled: np.ndarray) -> np.ndarray:
        if self.hierarchy is None:
            return np.unique(np.array(y_labeled.tolist()))
        known = set(self.hierarchy.valve_ids)
        unknown = sorted({str(v) for v in y_labeled.tolist()} - known)
        if unknown:
            raise ValueError(f"y has labels {unknown} that are not valves of the hierarchy.")
        return np.array(self.hierarchy.valve_ids, dtype=object)

    def _check_structure(self, n_features: int) -> None:
        for name in ("line_columns", "evidence_columns", "physics_columns"):
            cols = getattr(self, name)
            if cols is not None and (len(cols) != 2 or max(cols) > n_features or min(cols) < 0):
                raise ValueError(f"{name}={cols!r} does not fit X with {n_features} features.")
        if self.line_columns is not None:
            if self.hierarchy is None or self.valve_lines is None:
                raise ValueError("line_columns needs hierarchy and valve_lines (both were given?).")
            missing = [v for v in self.hierarchy.valve_ids if v not in self.valve_lines]
            if missing:
                raise ValueError(f"valve_lines has no entry for valves {missing}.")
        if self.physics_columns is not None:
            start, stop = self.physics_columns
            if self.hierarchy is None or stop - start != len(self.hierarchy.valve_ids):
                raise ValueError(
                    f"physics_columns={self.physics_columns!r} needs a hierarchy and one column "
                    "per valve."
                )
        if self.evidence_columns is not None:
            start, stop = self.evidence_columns
            if self.hierarchy is None or stop - start != len(EVIDENCE_CATEGORIES):
                raise ValueError(
                    f"evidence_columns={self.evidence_columns!r} needs a hierarchy and "
                    f"{len(EVIDENCE_CATEGORIES)} columns (one per Category)."
                )

    def _prior(self, X: np.ndarray) -> np.ndarray:
        """Per-row weights over classes from the line mask and the rule evidence."""
        prior = np.ones((X.shape[0], len(self.classes_)))
        if self.line_columns is not None:
            table = line_compatibility(
                self.valve_lines, self.hierarchy.valve_ids, paired_valves=self.paired_valves
            )
            hot = X[:, self.line_columns[0]] > 0.5
            cold = X[:, self.line_columns[1]] > 0.5
            for pattern, weights in table.items():
                rows = (hot == pattern[0]) & (cold == pattern[1])
                prior[rows] *= weights
        if self.evidence_columns is not None and self.evidence_power > 0:
            start, stop = self.evidence_columns
            evidence = np.clip(X[:, start:stop], 1e-6, None)
            cat_col = [
                EVIDENCE_CATEGORIES.index(self.hierarchy.category_of_valve(v))
                for v in self.hierarchy.valve_ids
            ]
            prior *= evidence[:, cat_col] ** self.evidence_power
        if self.physics_columns is not None and self.physics_power > 0:
            # normalized among the valves still possible, so a masked-out valve with the best
            # ring cannot push every possible one to an underflowing 0
            loglik = np.where(prior > 0, X[:, slice(*self.physics_columns)], -np.inf)
            best = loglik.max(axis=1, keepdims=True)
            loglik = np.where(np.isfinite(best), loglik - best, 0.0)
            prior *= np.exp(self.physics_power * np.maximum(loglik, -200.0))
        return prior

    def _spread(
        self, Z: np.ndarray, y_idx: np.ndarray, prior: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Label spreading (Zhou et al. 2004) masked by ``prior``; the confident pseudo-labels."""
        unlabeled = np.flatnonzero(y_idx < 0)
        if unlabeled.size == 0 or self.pseudo_weight == 0:
            return np.empty(0, dtype=int), np.empty((0, len(self.classes_)))
        k = min(self.n_neighbors, Z.shape[0] - 1)
        W = kneighbors_graph(Z, k, mode="connectivity", include_self=False)
        W = ((W + W.T) > 0).astype(float)
        d = np.asarray(W.sum(axis=1)).ravel()
        d_inv = sp.diags(1.0 / np.sqrt(np.maximum(d, 1e-12)))
        S = d_inv @ W @ d_inv
        Y0 = np.zeros_like(prior)
        has = y_idx >= 0
        Y0[np.flatnonzero(has), y_idx[has]] = 1.0
        F = Y0.copy()
        for _ in range(20):
            F = self.spreading_alpha * (S @ F) + (1 - self.spreading_alpha) * Y0
            F *= prior > 0  # never spread onto an impossible valve
        F = F[unlabeled] * prior[unlabeled]
        total = F.sum(axis=1)
        conf = np.divide(F, total[:, None], out=np.zeros_like(F), where=total[:, None] > 0)
        keep = (total > 0) & (conf.max(axis=1) >= self.pseudo_threshold)
        return unlabeled[keep], conf[keep]

    # ------------------------------------------------------------------ prediction

    def embedding(self, X: Any) -> np.ndarray:
        """The hidden representation the linear head sees (standardized features).

        ATLAS's correctness model is trained on it.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.scaler_.transform(X[:, self.feature_mask_])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of every class (valve) per row; rows sum to 1."""
        check_is_fitted(self)
        with _one_blas_thread():
            return self._predict_proba(X)

    def _predict_proba(self, X: Any) -> np.ndarray:
        X = validate_data(self, X, reset=False, dtype=np.float64)
        n_classes = len(self.classes_)
        head = np.zeros((X.shape[0], n_classes))
        if self.head_ is None:
            head[:, self.head_columns_] = 1.0 / len(self.head_columns_)
        else:
            Z = self.scaler_.transform(X[:, self.feature_mask_])
            head[:, self.head_columns_] = rowwise_proba(self.head_, Z)
        proba = (1 - self.smoothing) * head + self.smoothing / n_classes
        masked = proba * self._prior(X)
        total = masked.sum(axis=1, keepdims=True)
        # A row whose observed lines no valve can explain keeps the unmasked probabilities:
        # the data are inconsistent with the spec, and a guess beats a division by zero.
        out = np.where(total > 0, masked / np.where(total > 0, total, 1.0), proba)
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_level_proba(self, X: Any, level: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """Probabilities at ``level`` ("valve", "fixture", "category"), summed from valves."""
        proba = self.predict_proba(X)
        if self.hierarchy is None:
            if level != "valve":
                raise ValueError(f"level={level!r} needs a hierarchy; this classifier has none.")
            return proba, tuple(self.classes_.tolist())
        return level_proba(proba, self.hierarchy, level)
