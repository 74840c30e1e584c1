"""HierarchicalClassifier: hierarchy sums, line masks, evidence, scikit-learn conformance."""

from __future__ import annotations

import numpy as np
import pytest
import spec_factory
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from atlas.classifier import (
    EVIDENCE_CATEGORIES,
    HierarchicalClassifier,
    is_labeled,
    level_matrix,
    level_proba,
    line_compatibility,
    rowwise_proba,
)
from atlas.domain import LEVELS, Category

RUN = {"material": "copper", "length_m": 6.0}


def home_spec():
    """Toilet (cold), kitchen single-handle (hot/cold/mixed), washer (hot+cold solenoids)."""
    fixtures = [
        ("toilet", "toilet", "fill_valve", {"cold": RUN}),
        ("kitchen", "kitchen_faucet", "single_handle", {"hot": RUN, "cold": RUN}),
        ("washer", "washing_machine", "solenoid_pair", {"hot": RUN, "cold": RUN}),
    ]
    return spec_factory.home_spec([spec_factory.fixture(*f) for f in fixtures])


def home_data(seed: int = 0, n_per_valve: int = 30, n_labeled: int = 3):
    """Blobs per valve in the atlas.features layout (lines, neutral evidence, 4 features)."""
    rng = np.random.RandomState(seed)
    spec = home_spec()
    X, truth = [], []
    for valve in spec.valves:
        center = rng.normal(0, 3, 4)
        lines = [float("hot" in valve.lines), float("cold" in valve.lines)]
        for _ in range(n_per_valve):
            X.append([*lines, *np.ones(len(Category)), *(center + rng.normal(0, 1, 4))])
            truth.append(valve.id)
    truth = np.array(truth, dtype=object)
    y = truth.copy()
    for vid in set(truth.tolist()):
        y[np.flatnonzero(truth == vid)[n_labeled:]] = None
    return spec, np.array(X), truth, y


@parametrize_with_checks([HierarchicalClassifier()])
def test_sklearn_conformance(estimator, check):
    check(estimator)


@pytest.mark.parametrize("level", LEVELS)
def test_levels_are_sums_over_the_hierarchy(level):
    spec, X, _, y = home_data()
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    valve_p = clf.predict_proba(X)
    p, groups = clf.predict_level_proba(X, level)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    for col, group in enumerate(groups):
        members = [
            i
            for i, v in enumerate(spec.hierarchy.valve_ids)
            if spec.hierarchy.label_at(v, level) == group
        ]
        np.testing.assert_allclose(p[:, col], valve_p[:, members].sum(axis=1))
    # the coarse argmax is the argmax of the summed valves
    M, _ = level_matrix(spec.hierarchy, level)
    np.testing.assert_array_equal(p.argmax(axis=1), (valve_p @ M).argmax(axis=1))


def test_coarse_argmax_can_differ_from_parent_of_best_valve():
    spec = home_spec()
    h = spec.hierarchy
    proba = np.zeros((1, len(h.valve_ids)))
    # the toilet's one valve (0.28) is the best valve, the kitchen's three (0.72) the best fixture
    proba[0, h.valve_ids.index("toilet/fill")] = 0.28
    for name in ("hot", "cold", "mixed"):
        proba[0, h.valve_ids.index(f"kitchen/{name}")] = 0.24
    p, groups = level_proba(proba, h, "fixture")
    assert groups[p.argmax()] == "kitchen"  # although the single best valve is the toilet's


def test_level_proba_refuses_wrong_width():
    with pytest.raises(ValueError, match="expected"):
        level_proba(np.ones((2, 3)), home_spec().hierarchy, "valve")


def test_unlabeled_valves_keep_probability():
    spec, X, truth, y = home_data()
    y[truth == "kitchen/mixed"] = None  # never labeled
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    p = clf.predict_proba(X[truth == "kitchen/mixed"])
    assert np.all(p[:, list(clf.classes_).index("kitchen/mixed")] > 0)


def test_hot_only_use_is_never_a_cold_only_valve():
    spec, X, _, y = home_data()
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    hot_only = X[X[:, 0] == 1][:5].copy()
    hot_only[:, 1] = 0.0
    p = clf.predict_proba(hot_only)
    for vid in ("toilet/fill", "kitchen/cold", "washer/cold"):
        assert np.all(p[:, list(clf.classes_).index(vid)] == 0.0)


def test_line_compatibility_rules():
    spec = home_spec()
    lines = {v.id: tuple(map(str, v.lines)) for v in spec.valves}
    ids = spec.hierarchy.valve_ids
    table = line_compatibility(lines, ids, paired_valves=("washer/hot", "washer/cold"), leak=0.1)
    both = dict(zip(ids, table[(True, True)], strict=True))
    assert both["kitchen/mixed"] == 1.0
    assert both["washer/hot"] == 1.0  # an appliance filling hot and cold at once
    assert both["kitchen/hot"] == 0.1  # possible only if pairing merged two uses
    cold = dict(zip(ids, table[(False, True)], strict=True))
    assert cold["kitchen/hot"] == 0.0 and cold["kitchen/mixed"] == 0.1 and cold["toilet/fill"] == 1


def test_rule_evidence_moves_probability_to_its_category():
    spec, X, truth, y = home_data()
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    rows = X[truth == "kitchen/cold"][:5].copy()
    before = clf.predict_level_proba(rows, "category")
    start = 2 + EVIDENCE_CATEGORIES.index(Category.TOILET)
    rows[:, start] = 1e3  # the rules are sure it is a toilet
    after = clf.predict_level_proba(rows, "category")
    col = after[1].index("toilet")
    assert np.all(after[0][:, col] > before[0][:, col])


def test_semi_supervised_uses_unlabeled_rows():
    spec, X, _, y = home_data(n_labeled=1)
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    assert clf.n_pseudo_labels_ > 0
    assert HierarchicalClassifier.for_home(spec, pseudo_weight=0.0).fit(X, y).n_pseudo_labels_ == 0


def test_accuracy_on_separable_home():
    spec, X, truth, y = home_data()
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    assert (clf.predict(X) == truth).mean() > 0.9


def test_deterministic_by_random_state():
    spec, X, _, y = home_data()
    a = HierarchicalClassifier.for_home(spec, random_state=3).fit(X, y).predict_proba(X)
    b = HierarchicalClassifier.for_home(spec, random_state=3).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_embedding_shape():
    spec, X, _, y = home_data()
    clf = HierarchicalClassifier.for_home(spec).fit(X, y)
    assert clf.embedding(X).shape == X.shape


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"line_columns": (0, 1)}, "needs hierarchy"),
        ({"evidence_columns": (2, 5)}, "evidence_columns"),
    ],
)
def test_structure_errors_name_the_parameter(params, message):
    _, X, _, y = home_data()
    with pytest.raises(ValueError, match=message):
        HierarchicalClassifier(**params).fit(X, y)


def test_labels_outside_the_hierarchy_are_refused():
    spec, X, _, y = home_data()
    y[0] = "garage/hose"
    with pytest.raises(ValueError, match="garage/hose"):
        HierarchicalClassifier.for_home(spec).fit(X, y)


def test_is_labeled():
    assert is_labeled(["a", None, float("nan"), 0]).tolist() == [True, False, False, True]


def test_a_rows_probabilities_do_not_depend_on_the_rows_predicted_with_it():
    """The engine predicts only the rows an ingest changed: they must equal, bit for bit, the
    same rows predicted with the whole home (else later fits drift from a full rebuild)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 6))
    for n_classes in (2, 5):
        head = LogisticRegression().fit(X, rng.integers(0, n_classes, len(X)))
        full = rowwise_proba(head, X)
        for rows in ([7], [3, 250, 399], list(range(40, 77))):
            np.testing.assert_array_equal(rowwise_proba(head, X[rows]), full[rows])
        np.testing.assert_allclose(full, head.predict_proba(X), rtol=0, atol=1e-12)
