"""The scikit-activeml outside reference: its utilities are scikit-activeml's, on our model."""

from __future__ import annotations

import numpy as np
import pytest

from atlas.classifier import HierarchicalClassifier
from service.bench._skactiveml import SkactivemlUncertainty


@pytest.mark.parametrize("method", ["least_confident", "margin_sampling", "entropy"])
def test_utilities_rank_the_least_certain_use_first(method):
    X = np.array([[0.0], [0.1], [1.0], [1.1], [0.5], [0.02], [1.05]])
    y = np.array(["a", "a", "b", "b", None, None, None], dtype=object)
    clf = HierarchicalClassifier(n_neighbors=2).fit(X, y)
    picks, util = SkactivemlUncertainty(method=method, random_state=0).query(
        X, y, clf, candidates=[4, 5, 6], batch_size=1, return_utilities=True
    )
    assert picks.tolist() == [4]  # 0.5 sits between the classes
    assert np.isnan(util[0, :4]).all() and np.isfinite(util[0, 4:]).all()


def test_unknown_method_is_named():
    X, y = np.array([[0.0], [1.0], [0.5]]), np.array(["a", "b", None], dtype=object)
    clf = HierarchicalClassifier(n_neighbors=1).fit(X, y)
    with pytest.raises(ValueError, match="method='best'"):
        SkactivemlUncertainty(method="best").query(X, y, clf, candidates=[2])
