"""Strategy-specific behaviour: margin, diversity, ATLAS direction and adaptivity."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from synthetic_home import SyntheticHome

from atlas.strategies import AtlasSampling, DiversitySampling, MarginSampling, RandomSampling
from atlas.strategies.atlas import correctness_scores
from atlas.strategies.diversity import diversity_scores
from atlas.strategies.margin import margin_scores


class ConfidentlyWrongInCluster(ClassifierMixin, BaseEstimator):
    """Predicts the true class from x0's sign, except it says "a" with 0.95 wherever x1 > 5.

    Elsewhere the margin shrinks towards x0 = 0, so margin sampling picks near that boundary,
    while every labeled use in the x1 > 5 cluster is wrong under cross-validation.
    """

    def fit(self, X, y):
        self.classes_ = np.array(["a", "b"], dtype=object)
        return self

    def predict_proba(self, X):
        X = np.asarray(X, dtype=float)
        p_a = 1.0 / (1.0 + np.exp(3.0 * X[:, 0]))  # x0 < 0 -> "a"
        p_a = np.where(X[:, 1] > 5.0, 0.95, p_a)
        return np.column_stack([p_a, 1.0 - p_a])

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def embedding(self, X):
        return np.asarray(X, dtype=float)


def clustered_errors(seed: int = 0):
    """x0 in [-3, 3] (truth by sign), plus a cluster at x1 ~ 8 whose truth is "b"."""
    rng = np.random.RandomState(seed)
    n_main, n_cluster = 200, 40
    main = np.column_stack([rng.uniform(-3, 3, n_main), rng.normal(0, 1, n_main)])
    cluster = np.column_stack([rng.uniform(-3, -1, n_cluster), rng.normal(8, 0.5, n_cluster)])
    X = np.vstack([main, cluster])
    truth = np.array(["a" if x < 0 else "b" for x in main[:, 0]] + ["b"] * n_cluster, object)
    y = np.full(X.shape[0], None, dtype=object)
    labeled = np.concatenate([rng.choice(n_main, 16, replace=False), n_main + np.arange(5)])
    y[labeled] = truth[labeled]
    in_cluster = np.arange(X.shape[0]) >= n_main
    return X, y, in_cluster


def test_margin_scores_rank_ties_first():
    scores = margin_scores(np.array([[0.5, 0.5, 0.0], [0.9, 0.05, 0.05]]))
    np.testing.assert_allclose(scores, [1.0, 0.15])


def test_margin_at_category_level_ignores_valve_confusion(home: SyntheticHome, fitted):
    p_valve = MarginSampling(level="valve").scores(home.X, home.y, fitted)
    p_cat = MarginSampling(level="category").scores(home.X, home.y, fitted)
    assert not np.allclose(p_valve, p_cat)


def test_diversity_scores_prefer_uncovered_clusters():
    s = diversity_scores(np.array([0, 0, 1]), np.array([1.0, 0.2, 0.3]), np.array([True, False]))
    assert s.argmax() == 2


def test_diversity_picks_spread_over_valves(home: SyntheticHome, fitted):
    """Cold start: one label in one valve; five picks should reach at least four other valves."""
    y = np.full_like(home.y, None)
    y[0] = home.truth[0]
    picks = DiversitySampling(random_state=0).query(home.X, y, None, batch_size=5)
    assert len(set(home.truth[picks].tolist()) - {home.truth[0]}) >= 4


def test_correctness_scores_direction():
    """Rows like the wrong ones score high: P(wrong), not P(correct) as in the reference code."""
    H = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    wrong = np.array([False, False, False, True, True, True])
    p = correctness_scores(H, wrong, np.array([[0.05], [5.05]]))
    assert p[1] > 0.5 > p[0]


def test_atlas_picks_the_cluster_where_the_model_is_confidently_wrong():
    X, y, in_cluster = clustered_errors()
    clf = ConfidentlyWrongInCluster().fit(X, y)
    atlas = AtlasSampling(n_splits=3, diversity_weight=0.0, random_state=0)
    picks, util = atlas.query(X, y, clf, batch_size=3, return_utilities=True)
    assert not atlas.fell_back_
    assert in_cluster[picks].all()  # direction: the likely-wrong uses come first
    cand = np.flatnonzero(y == None)  # noqa: E711
    assert np.nanmean(util[0, cand[in_cluster[cand]]]) > np.nanmean(
        util[0, cand[~in_cluster[cand]]]
    )
    margin_picks = MarginSampling(random_state=0).query(X, y, clf, batch_size=3)
    assert not in_cluster[margin_picks].any()  # margin trusts the confident wrong answers


def test_atlas_adapts_after_each_pick():
    X, y, _ = clustered_errors()
    clf = ConfidentlyWrongInCluster().fit(X, y)
    _, util = AtlasSampling(n_splits=3, random_state=0).query(
        X, y, clf, batch_size=2, return_utilities=True
    )
    cand = np.flatnonzero(y == None)  # noqa: E711
    first, second = util[0, cand], util[1, cand]
    both = ~np.isnan(first) & ~np.isnan(second)
    assert not np.allclose(first[both], second[both])  # retrained with the pick as correct
    assert np.nanmax(second) <= np.nanmax(first)


def test_atlas_falls_back_to_diversity_without_errors():
    X, y, in_cluster = clustered_errors()
    y[in_cluster] = None  # the stub is right on every remaining label
    clf = ConfidentlyWrongInCluster().fit(X, y)
    atlas = AtlasSampling(n_splits=3, random_state=0)
    picks = atlas.query(X, y, clf, batch_size=2)
    assert atlas.fell_back_ and atlas.n_errors_ == 0
    expected = DiversitySampling(random_state=0).query(X, y, clf, batch_size=2)
    np.testing.assert_array_equal(picks, expected)


def test_atlas_runs_on_the_hierarchical_classifier_and_differs_from_margin(home: SyntheticHome):
    """Noisy labels on one valve pair give real CV errors through all three levels."""
    from atlas.classifier import HierarchicalClassifier

    rng = np.random.RandomState(1)
    X = home.X.copy()
    kitchen_cold = home.truth == "kitchen/cold"
    toilet = home.truth == "toilet/fill"
    X[kitchen_cold, -6:] = X[toilet, -6:][: kitchen_cold.sum()] + rng.normal(0, 0.3, (40, 6))
    y = home.y.copy()
    extra = np.flatnonzero(kitchen_cold | toilet)[rng.choice(80, 12, replace=False)]
    y[extra] = home.truth[extra]
    clf = HierarchicalClassifier.for_home(home.spec, random_state=0).fit(X, y)
    atlas = AtlasSampling(n_splits=4, random_state=0)
    picks = atlas.query(X, y, clf, batch_size=3)
    assert not atlas.fell_back_ and atlas.n_errors_ >= 3
    margin = MarginSampling(random_state=0).query(X, y, clf, batch_size=3)
    assert set(picks.tolist()) != set(margin.tolist())


@pytest.mark.parametrize("seed", [0, 1])
def test_random_sampling_covers_the_pool(home: SyntheticHome, seed):
    picks = RandomSampling(random_state=seed).query(home.X, home.y, None, batch_size=50)
    assert len(set(home.truth[picks].tolist())) == len(home.spec.valves)
