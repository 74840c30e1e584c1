"""Shared checks run on every strategy in atlas.strategies.STRATEGIES (river-style discovery)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
from synthetic_home import SyntheticHome

import atlas.strategies as strategies_pkg
from atlas.strategies import STRATEGIES, QueryStrategy, make_strategy


def test_every_strategy_class_is_registered():
    """A strategy module added without a STRATEGIES entry would escape these checks."""
    classes = set()
    for info in pkgutil.iter_modules(strategies_pkg.__path__):
        module = importlib.import_module(f"atlas.strategies.{info.name}")
        classes |= {
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, QueryStrategy) and not inspect.isabstract(obj)
        }
    assert classes == set(STRATEGIES.values())


@pytest.fixture(params=sorted(STRATEGIES))
def strategy(request) -> QueryStrategy:
    cls = STRATEGIES[request.param]
    return cls(**cls._unit_test_params())


@pytest.mark.parametrize("batch_size", [1, 3])
def test_picks_distinct_unlabeled_candidates(strategy, home: SyntheticHome, fitted, batch_size):
    cand = np.flatnonzero(home.y == None)[::7]  # noqa: E711 - elementwise
    picks, util = strategy.query(
        home.X, home.y, fitted, candidates=cand, batch_size=batch_size, return_utilities=True
    )
    assert picks.shape == (batch_size,)
    assert len(set(picks.tolist())) == batch_size
    assert set(picks.tolist()) <= set(cand.tolist())
    assert util.shape == (batch_size, home.X.shape[0])
    outside = np.setdiff1d(np.arange(home.X.shape[0]), cand)
    assert np.all(np.isnan(util[:, outside]))
    for j, pick in enumerate(picks):  # each pick is the best of its row among the not-yet-picked
        assert util[j, pick] == np.nanmax(util[j])
        assert np.all(np.isnan(util[j, picks[:j]]))


def test_deterministic_by_random_state(strategy, home: SyntheticHome, fitted):
    a = strategy.query(home.X, home.y, fitted, batch_size=2, return_utilities=True)
    b = strategy.query(home.X, home.y, fitted, batch_size=2, return_utilities=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_scores_match_first_row(strategy, home: SyntheticHome, fitted):
    cand = np.flatnonzero(home.y == None)[:40]  # noqa: E711
    scores = strategy.scores(home.X, home.y, fitted, candidates=cand)
    _, util = strategy.query(home.X, home.y, fitted, candidates=cand, return_utilities=True)
    assert scores.shape == (40,) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, util[0, cand])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10_000}, "batch_size"),
        ({"candidates": [0]}, "already labeled"),
        ({"candidates": [-1]}, "candidates"),
    ],
)
def test_bad_queries_are_refused(strategy, home: SyntheticHome, fitted, kwargs, message):
    with pytest.raises(ValueError, match=message):
        strategy.query(home.X, home.y, fitted, **kwargs)


def test_make_strategy_by_name():
    assert isinstance(make_strategy("margin", level="category"), STRATEGIES["margin"])
    with pytest.raises(ValueError, match="strategy='nope'"):
        make_strategy("nope")
