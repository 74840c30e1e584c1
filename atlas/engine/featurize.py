"""A home's uses and transients, and the feature matrix the classifier and strategies share.

A row depends on more than its own use: the sequence context (gap to the previous use, uses
in the last half hour), the hand-wash context (uses that follow within half a minute), the
rule classifier's appliance cycles and toilet reference, and the codebook projection. So
:func:`build_matrix` computes rows in the context of other uses; with ``rows`` and
``rule_context`` it computes a few rows from a slice of the home, equal bit for bit to the
same rows of the full matrix (:class:`atlas.engine.rows.FeatureRows` keeps a home's matrix
up to date that way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA

from atlas.context_prior import WINDOW_S, handwash_log_likelihood
from atlas.features import MAX_GAP_S, RECENT_WINDOW_S, rule_evidence, use_codes, use_features
from atlas.homespec import HomeSpec
from atlas.physics_prior import ring_log_likelihood
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse
from codebook import Codebook, content_version
from rules import RuleClassifier, RuleConfig, build_views
from rules.conditions import Context

#: How far before and after a use the other uses can change its row (sequence context: the
#: gap to the previous use, capped at a day; the hand-wash context: the uses that follow
#: within :data:`~atlas.context_prior.WINDOW_S`). The rules' home-wide context is apart.
CONTEXT_BEFORE_S = max(MAX_GAP_S, RECENT_WINDOW_S)
CONTEXT_AFTER_S = WINDOW_S[1]


@dataclass(frozen=True)
class CodeProjection:
    """Codebook + PCA of the use-pooled codes: ``codes -> (codes - mean) @ components.T``.

    WHY a projection: a 16-atom codebook pools into ~200 columns per action, far more than a
    home's few dozen labels support; 12 principal components kept the valve accuracy of the raw
    codes in ``atlas bench learning`` at a fraction of the fit time.
    """

    codebook: Codebook
    mean: np.ndarray
    components: np.ndarray

    def project(self, pooled: np.ndarray) -> np.ndarray:
        # einsum on C-ordered operands, not BLAS: a row's value must not depend on the rows
        # projected with it, nor on the memory order the components were restored in
        components = np.ascontiguousarray(self.components)
        return np.einsum("ij,kj->ik", pooled - self.mean, components)

    def to_dict(self) -> dict:
        params = self.codebook.get_params()
        params["segment_edges_s"] = list(params["segment_edges_s"])
        return {
            "params": params,
            "components": self.codebook.components_.copy(),
            "mean": self.mean.copy(),
            "pca_components": self.components.copy(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> CodeProjection:
        params = dict(d["params"])
        params["segment_edges_s"] = tuple(params["segment_edges_s"])
        if params.get("pyramid") is not None:  # JSON gave a list
            params["pyramid"] = tuple(params["pyramid"])
        cb = Codebook(**params)
        cb.components_ = np.asarray(d["components"], dtype=np.float64)
        cb.version_ = content_version(cb.get_params(), cb.components_)
        return cls(cb, np.asarray(d["mean"], float), np.asarray(d["pca_components"], float))


def fit_projection(
    codebook: Codebook,
    uses: Sequence[WaterUse],
    event_codes: Mapping[str, np.ndarray],
    n_dims: int,
    random_state: int,
) -> CodeProjection:
    """PCA of the use-pooled codes of ``uses`` (at most ``n_dims`` components)."""
    pooled = use_codes(uses, event_codes, codebook.n_features_out_)
    n = max(1, min(n_dims, pooled.shape[0], pooled.shape[1]))
    pca = PCA(n_components=n, random_state=random_state).fit(pooled)
    return CodeProjection(codebook, pca.mean_, pca.components_)


@dataclass(frozen=True)
class Matrix:
    """Feature rows of all uses (in ``use_ids`` order) and the rules' category per use.

    ``physics_columns`` is the ``(start, stop)`` range of the prior log-likelihoods (one column
    per valve: :func:`atlas.physics_prior.ring_log_likelihood` plus
    :func:`atlas.context_prior.handwash_log_likelihood`), the last columns of X.
    """

    use_ids: tuple[str, ...]
    X: np.ndarray
    rule_category: tuple[str | None, ...]
    physics_columns: tuple[int, int]


def use_rings(
    uses: Sequence[WaterUse],
    features: Mapping[str, TransientFeatures],
    lines: Mapping[str, str],
) -> np.ndarray:
    """Observed ``ring_hz`` per use, line (hot, cold) and action (open, close); 0 when absent."""
    rings = np.zeros((len(uses), 2, 2))
    for row, use in enumerate(uses):
        for a, ids in enumerate((use.open_event_ids, use.close_event_ids)):
            for eid in ids:
                if eid in features and lines.get(eid) in ("hot", "cold"):
                    rings[row, 0 if lines[eid] == "hot" else 1, a] = features[eid].ring_hz
    return rings


def _physics_rows(
    spec: HomeSpec,
    uses: Sequence[WaterUse],
    features: Mapping[str, TransientFeatures],
    lines: Mapping[str, str],
    picked: list[int],
) -> np.ndarray:
    """The physics prior's columns of the ``picked`` uses (ring likelihood + hand-wash context).

    A use's ring likelihood is its own; its hand-wash term reads only the uses that start
    within :data:`~atlas.context_prior.WINDOW_S` after it. So the picked uses and those
    followers suffice: a provisional classification need not price a day of context uses
    (it did, and that cost grew with the day).
    """
    subset = np.arange(len(uses))
    if len(picked) < len(uses):
        lo, hi = WINDOW_S
        starts = np.array([u.t.timestamp() for u in uses])
        first = np.searchsorted(starts, starts[picked] + lo, side="left")
        last = np.searchsorted(starts, starts[picked] + hi, side="right")
        needed = set(picked).union(*(range(a, b) for a, b in zip(first, last, strict=True)))
        subset = np.array(sorted(needed))
    chosen = [uses[i] for i in subset]
    valves = [spec.valve(v) for v in spec.hierarchy.valve_ids]
    physics = ring_log_likelihood(use_rings(chosen, features, lines), valves)
    physics = physics + handwash_log_likelihood(spec, chosen, physics)
    return physics[np.searchsorted(subset, picked)]  # subset is sorted and holds every pick


def build_matrix(
    spec: HomeSpec,
    uses: Sequence[WaterUse],
    features: Mapping[str, TransientFeatures],
    lines: Mapping[str, str],
    event_codes: Mapping[str, np.ndarray],
    projection: CodeProjection | None,
    *,
    rows: Sequence[int] | None = None,
    rule_context: Context | None = None,
) -> Matrix:
    """Rules, codes, :func:`atlas.features.use_features` and the physics prior of every use.

    ``rows`` (indices into ``uses``): only those uses' rows, computed in the context of all of
    ``uses`` and equal to the same rows of the full matrix. A provisional classification needs
    one or two new rows; the whole matrix of its context cost it ten times as much.
    ``rule_context``: the rules' home-wide context of the chosen uses when it is kept
    incrementally (:class:`rules.context_index.ContextIndex`); ``uses`` then only needs the
    uses within a day before and a minute after each chosen one (:data:`CONTEXT_BEFORE_S`).
    """
    picked = list(range(len(uses))) if rows is None else list(rows)
    chosen = [uses[i] for i in picked]
    # Event lines are left out of the rule views on purpose: with them the line-aware ring
    # rules fire, and their uncalibrated decisions cost 11 points of valve accuracy at the end
    # of week 2 (two_bath_house seed 1, perfect homeowner: 56% with lines, 67% without;
    # docs/benchmarks.md). The classifier was tuned on views without lines (bench learning).
    rules = RuleClassifier(RuleConfig.from_home_spec(spec))
    if rule_context is None:
        decisions = rules.classify(build_views(uses, features), only=rows)
    else:
        decisions = rules.classify(build_views(chosen, features), context=rule_context)
    table = {eid: (lines[eid], features[eid].as_vector()) for u in chosen for eid in u.event_ids}
    codes = None
    if projection is not None:
        pooled = use_codes(chosen, event_codes, projection.codebook.n_features_out_)
        codes = projection.project(pooled)
    X = use_features(
        uses,
        table,
        codes=codes,
        evidence=rule_evidence(decisions),
        timezone=spec.model.timezone,
        rows=rows,
    )
    physics = _physics_rows(spec, uses, features, lines, picked)
    start = X.shape[1]
    return Matrix(
        tuple(u.use_id for u in chosen),
        np.hstack([X, physics]),
        tuple(None if d.category is None else str(d.category) for d in decisions),
        (start, start + physics.shape[1]),
    )
