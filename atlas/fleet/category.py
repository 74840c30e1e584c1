"""Fleet category model: which category a use looks like, learned from other homes' labels.

WHY at category level only: a valve or fixture id is a name in one home ("bath2-sink"), but a
toilet's slow float-valve close, a washing machine's solenoid hammer or a shower's long mixed
draw look alike in every house. So the fleet learns categories from features that travel:

* as they are: the lines, the rules' category evidence (log), duration, time of day, the gap to
  the previous use and the recent-use count;
* normalised per home (z-score over the home's own uses, zeros = "absent" kept): the steady
  drops, the transient physics (ring frequency depends on the home's pipe lengths, steps on its
  pressure) and the fleet-codebook codes.

The model is linear discriminant analysis with a shared, shrunk covariance, because it is
fitted from *sufficient statistics*: each home sends, per category with at least
``min_count`` labels, a count, a sum vector and a scatter matrix (:class:`CategoryStats`);
summing them gives exactly the fleet's class means and pooled covariance. No labeled use
leaves its home, and a Gaussian marginal over a subset of features is exact, so a home whose
codebook is its own (codes not comparable) still uses the fleet model on the other columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from atlas.domain import Category
from atlas.features import feature_names

_AS_IS = (
    "line_hot",
    "line_cold",
    "log_duration_s",
    "duration_missing",
    "tod_sin",
    "tod_cos",
    "log_gap_s",
    "n_recent",
)


def _is_normalised(name: str) -> bool:
    return name.startswith(("drop_kpa_", "hot_", "cold_", "code_"))


def transfer_names(n_codes: int) -> tuple[str, ...]:
    """Names of the transferable features for a home matrix with ``n_codes`` code columns."""
    names = feature_names(n_codes)
    evidence = tuple(f"log_{n}" for n in names if n.startswith("evidence_"))
    return _AS_IS + evidence + tuple(n for n in names if _is_normalised(n))


def transfer_features(X: np.ndarray, n_codes: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Transferable features of a home's feature matrix (:func:`atlas.features.use_features`).

    Only the first ``len(feature_names(n_codes))`` columns are read (the engine may append
    per-valve columns after them, which do not transfer). Per-home normalisation uses every row
    (labeled or not), so a new home can compute it from its own unlabeled uses. Returns the
    matrix and its column names.
    """
    X = np.asarray(X, dtype=float)
    names = feature_names(n_codes)
    if X.ndim != 2 or X.shape[1] < len(names):
        raise ValueError(f"X has shape {X.shape}; expected (n_uses, >= {len(names)}) columns.")
    X = X[:, : len(names)]
    col = {n: i for i, n in enumerate(names)}
    parts = [X[:, [col[n] for n in _AS_IS]]]
    ev = [i for i, n in enumerate(names) if n.startswith("evidence_")]
    parts.append(np.log(np.clip(X[:, ev], 1e-6, None)))
    norm = [i for i, n in enumerate(names) if _is_normalised(n)]
    block = X[:, norm].copy()
    present = block != 0
    for j in range(block.shape[1]):
        vals = block[present[:, j], j]
        if vals.size >= 2:
            sd = vals.std()
            block[present[:, j], j] = (vals - vals.mean()) / (sd if sd > 1e-12 else 1.0)
    parts.append(block)
    return np.hstack(parts), transfer_names(n_codes)


@dataclass(frozen=True)
class CategoryStats:
    """Sufficient statistics of one home's labeled uses per category (aggregates only)."""

    names: tuple[str, ...]
    categories: tuple[str, ...]
    counts: np.ndarray  # (n_categories,)
    sums: np.ndarray  # (n_categories, n_features)
    scatters: np.ndarray  # (n_categories, n_features, n_features)


def category_stats(
    T: np.ndarray,
    categories: Sequence[str | None],
    names: Sequence[str],
    *,
    min_count: int = 3,
) -> CategoryStats:
    """Per-category count, sum and scatter of the labeled rows of ``T`` (None: unlabeled).

    A category with fewer than ``min_count`` labeled uses is left out: a sum over one use *is*
    that use's features.
    """
    if min_count < 2:
        raise ValueError(f"min_count={min_count!r} should be >= 2 (a sum of one row is the row).")
    T = np.asarray(T, dtype=float)
    if T.shape[0] != len(categories) or T.shape[1] != len(names):
        raise ValueError(
            f"T has shape {T.shape}; categories has {len(categories)}, names {len(names)}."
        )
    cats = np.array([c if c is not None else "" for c in categories], dtype=object)
    kept = sorted(c for c in set(cats.tolist()) - {""} if (cats == c).sum() >= min_count)
    rows = [T[cats == c] for c in kept]
    d = T.shape[1]
    return CategoryStats(
        tuple(names),
        tuple(kept),
        np.array([len(r) for r in rows], dtype=float),
        np.array([r.sum(axis=0) for r in rows]).reshape(len(kept), d),
        np.array([r.T @ r for r in rows]).reshape(len(kept), d, d),
    )


class FleetCategoryModel:
    """Shared-covariance Gaussian classes from summed :class:`CategoryStats`.

    Parameters
    ----------
    stats : sequence of CategoryStats
        One per contributing home, all with the same feature ``names``.
    shrinkage : float, default=0.3
        Covariance shrunk towards its diagonal: a few hundred uses in ~45 dimensions.

    Attributes
    ----------
    categories_, means_ (n_categories, n_features), covariance_, counts_, names_
    """

    def __init__(self, stats: Sequence[CategoryStats], shrinkage: float = 0.3) -> None:
        if not stats:
            raise ValueError("stats is empty; the fleet category model needs >= 1 home.")
        if not 0 <= shrinkage <= 1:
            raise ValueError(f"shrinkage={shrinkage!r} should be in [0, 1].")
        names = stats[0].names
        for s in stats[1:]:
            if s.names != names:
                raise ValueError("stats have different feature names; use one fleet codebook.")
        cats = sorted({c for s in stats for c in s.categories})
        d = len(names)
        n = np.zeros(len(cats))
        sums = np.zeros((len(cats), d))
        scatter = np.zeros((d, d))
        for s in stats:
            for k, c in enumerate(s.categories):
                i = cats.index(c)
                n[i] += s.counts[k]
                sums[i] += s.sums[k]
                scatter += s.scatters[k]
        if len(cats) < 2 or n.sum() <= len(cats):
            raise ValueError(f"{int(n.sum())} uses in {len(cats)} categories: too few to fit.")
        means = sums / n[:, None]
        within = scatter - (means.T * n) @ means
        cov = within / (n.sum() - len(cats))
        cov = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov))
        cov += 1e-3 * np.eye(d)
        self.names_ = names
        self.categories_ = tuple(cats)
        self.counts_ = n
        self.means_ = means
        self.covariance_ = cov

    def to_dict(self) -> dict[str, Any]:
        """The fitted parameters as plain types and arrays (read back by :meth:`from_dict`)."""
        return {
            "names": list(self.names_),
            "categories": list(self.categories_),
            "counts": self.counts_.copy(),
            "means": self.means_.copy(),
            "covariance": self.covariance_.copy(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FleetCategoryModel:
        """The model :meth:`to_dict` described, as fitted: a stored fleet keeps no home's sums
        to refit from."""
        model = cls.__new__(cls)
        model.names_ = tuple(d["names"])
        model.categories_ = tuple(d["categories"])
        model.counts_ = np.asarray(d["counts"], dtype=float)
        model.means_ = np.asarray(d["means"], dtype=float)
        model.covariance_ = np.asarray(d["covariance"], dtype=float)
        return model

    def log_likelihood(self, T: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """log N(t; mean_c, cov) up to a shared constant, per row and category, on ``names``.

        ``names`` may be any subset of the model's features (exact Gaussian marginal).
        """
        idx = [self.names_.index(n) for n in names]
        cov = self.covariance_[np.ix_(idx, idx)]
        prec = np.linalg.inv(cov)
        diff = np.asarray(T, dtype=float)[:, None, :] - self.means_[None][:, :, idx]
        return -0.5 * np.einsum("ncd,de,nce->nc", diff, prec, diff)

    def posterior(
        self, T: np.ndarray, names: Sequence[str], categories: Sequence[str]
    ) -> np.ndarray:
        """P(category | t) over ``categories`` (uniform prior); unknown ones get NaN columns."""
        ll = self.log_likelihood(T, names)
        out = np.full((ll.shape[0], len(categories)), np.nan)
        known = [
            (j, self.categories_.index(c))
            for j, c in enumerate(categories)
            if c in self.categories_
        ]
        if not known:
            return out
        cols = np.array([k for _, k in known])
        sub = ll[:, cols]
        sub = np.exp(sub - sub.max(axis=1, keepdims=True))
        out[:, [j for j, _ in known]] = sub / sub.sum(axis=1, keepdims=True)
        return out


def category_likelihood(
    model: FleetCategoryModel,
    home_categories: Sequence[str],
    X: np.ndarray,
    n_codes: int,
    *,
    codes_comparable: bool,
    floor: float,
    unseen: float,
) -> np.ndarray:
    """The fleet model's likelihood per use and :class:`Category` (enum order), in [floor, 1].

    The posterior over the home's categories (uniform prior) relative to its best category,
    floored; categories of the home the model never saw get ``unseen``, categories the home
    does not have 1 (no information). Code columns enter only when ``codes_comparable`` (the
    home encodes with the fleet's projection); otherwise the model is marginalised (exact).
    """
    T, names = transfer_features(X, n_codes)
    if not codes_comparable:
        keep = [i for i, n in enumerate(names) if not n.startswith("code_")]
        T, names = T[:, keep], tuple(names[i] for i in keep)
    keep = [i for i, n in enumerate(names) if n in model.names_]
    T, names = T[:, keep], tuple(names[i] for i in keep)
    home_cats = sorted({str(c) for c in home_categories})
    known = np.array([c in model.categories_ for c in home_cats])
    like = np.ones((X.shape[0], len(Category)))
    if X.shape[0] == 0:
        return like
    post = model.posterior(T, names, home_cats)
    top = np.nanmax(post, axis=1, keepdims=True) if known.any() else np.ones((len(T), 1))
    rel = np.maximum(floor, post / np.where(top > 0, top, 1.0))
    order = [str(c) for c in Category]
    for j, cat in enumerate(home_cats):
        like[:, order.index(cat)] = rel[:, j] if known[j] else unseen
    return like
