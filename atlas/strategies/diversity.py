"""Diversity sampling: typical uses of clusters no label covers yet (the cold-start remedy).

WHY: with a handful of labels the model's uncertainty is itself unreliable, and uncertainty
sampling is often no better than random (the cold start; Hacohen, Dekel & Weinshall, "Active
Learning on a Budget", ICML 2022, which proposes TypiClust). Clustering the labeled and
candidate uses into ``n_labeled + batch_size`` groups (TypiClust's choice) and asking about the
most typical member of a group without any label spreads the questions over the kinds of use
the home actually has. KMedoids (scikit-learn-extra) keeps cluster centres on real uses and
works with any metric.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn_extra.cluster import KMedoids

from atlas.strategies._base import Pool, QueryStrategy

#: Added to the typicality of a use in an uncovered cluster, so every such use outranks every
#: use of a covered cluster (typicality is in (0, 1]).
UNCOVERED_BONUS = 1.0


def cluster_typicality(
    Z: np.ndarray, n_clusters: int, random_state: int | np.random.RandomState | None
) -> tuple[np.ndarray, np.ndarray]:
    """KMedoids labels and typicality ``1 / (1 + distance to own medoid / median distance)``.

    Typicality is in (0, 1], 1 for the medoids themselves; the distance is scaled by the median
    so the scores do not depend on the feature units.
    """
    Z = np.asarray(Z, dtype=float)
    if not 1 <= n_clusters <= Z.shape[0]:
        raise ValueError(f"n_clusters={n_clusters} should be in [1, n_samples={Z.shape[0]}].")
    km = KMedoids(
        n_clusters=n_clusters, method="alternate", init="k-medoids++", random_state=random_state
    )
    with warnings.catch_warnings():
        # scikit-learn-extra 0.3 calls sklearn's deprecated stable_cumsum in k-medoids++ init
        warnings.filterwarnings("ignore", message=".*stable_cumsum.*", category=FutureWarning)
        km.fit(Z)
    dist = np.linalg.norm(Z - km.cluster_centers_[km.labels_], axis=1)
    scale = np.median(dist[dist > 0]) if np.any(dist > 0) else 1.0
    return km.labels_, 1.0 / (1.0 + dist / scale)


def diversity_scores(
    cluster: np.ndarray, typicality: np.ndarray, covered: np.ndarray
) -> np.ndarray:
    """Score per item: typicality, plus :data:`UNCOVERED_BONUS` when its cluster has no label.

    >>> diversity_scores(np.array([0, 1]), np.array([0.5, 0.4]), np.array([True, False])).tolist()
    [0.5, 1.4]
    """
    return typicality + UNCOVERED_BONUS * ~np.asarray(covered, dtype=bool)[cluster]


class DiversitySampling(QueryStrategy):
    """Typical uses of clusters not covered by a label, one new cluster per pick.

    Parameters
    ----------
    columns : slice, sequence of int or None, default=None
        Feature columns to cluster on (e.g. the codebook codes); None: all. Columns are
        standardized first.
    random_state : int, RandomState instance or None, default=None
    """

    def __init__(
        self,
        columns: slice | tuple[int, ...] | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__(random_state=random_state)
        self.columns = columns

    def _utilities(self, pool: Pool, clf: Any, batch_size: int) -> np.ndarray:
        return diversity_utilities(pool, batch_size, self.columns)


def diversity_utilities(
    pool: Pool, batch_size: int, columns: slice | tuple[int, ...] | None
) -> np.ndarray:
    """Rows of :func:`diversity_scores` for successive picks (each pick covers its cluster).

    Shared with ATLAS, which uses it as its fallback and for its typicality weight.
    """
    labeled, candidates = pool.labeled, pool.candidates
    rows = np.concatenate([labeled, candidates])
    F = pool.X[rows] if columns is None else pool.X[rows][:, columns]
    Z = StandardScaler().fit_transform(F)
    n_clusters = min(labeled.size + batch_size, rows.size)
    cluster, typ = cluster_typicality(Z, n_clusters, pool.rng)
    covered = np.zeros(n_clusters, dtype=bool)
    covered[cluster[: labeled.size]] = True
    cand_cluster, cand_typ = cluster[labeled.size :], typ[labeled.size :]
    out = np.empty((batch_size, candidates.size))
    picked: list[int] = []
    for j in range(batch_size):
        out[j] = diversity_scores(cand_cluster, cand_typ, covered)
        picked.append(pool.pick(out[j], picked))
        covered[cand_cluster[picked[-1]]] = True
    return out
