"""Fleet transfer: Beta-binomial prior coverage, privacy of the fleet object, opt-out."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time

import numpy as np
import pytest

from atlas.engine.records import LabelRecord
from atlas.estimate import ScoredLabel, estimate_accuracy
from atlas.events import Event
from atlas.fleet import FleetConfig, LocalHome, build_fleet, fit_beta_binomial
from atlas.fleet.category import FleetCategoryModel, category_stats
from atlas.pairing import pair_events
from atlas.uses import WaterUse
from simulator.generate import generate_run
from simulator.presets import load_preset


def _audit_labels(correct: int, n: int) -> list[ScoredLabel]:
    return [
        ScoredLabel(
            f"u{i}",
            "category",
            {"category": "a" if i < correct else "b"},
            {"category": "a"},
            1,
            1.0,
            True,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(("alpha", "beta"), [(17.0, 3.0), (40.0, 10.0), (6.0, 2.0)])
def test_fleet_prior_bound_covers_truth_at_nominal_rate(alpha, beta):
    rng = np.random.default_rng(0)
    covered, tighter = [], []
    for _ in range(400):
        p_fleet = rng.beta(alpha, beta, size=10)
        n_fleet = rng.integers(15, 40, size=10)
        prior = fit_beta_binomial(rng.binomial(n_fleet, p_fleet), n_fleet)
        assert prior.a + prior.b <= 10 + 1e-9  # never more than one pseudo-label per home
        p_new = rng.beta(alpha, beta)
        n_new = 15
        labels = _audit_labels(int(rng.binomial(n_new, p_new)), n_new)
        with_fleet = estimate_accuracy(labels, "category", method="audit_beta", prior=prior)
        alone = estimate_accuracy(labels, "category", method="audit_beta")
        covered.append(with_fleet.lower <= p_new)
        tighter.append(with_fleet.lower - alone.lower)
    assert np.mean(covered) >= 0.93  # nominal 0.95
    assert np.mean(tighter) > 0.0  # and the fleet does tighten the bound on average


def test_fit_beta_binomial_refuses_a_single_home():
    with pytest.raises(ValueError, match="needs >= 2"):
        fit_beta_binomial([9], [10])


def test_category_stats_leave_out_categories_with_too_few_labels():
    T = np.arange(12.0).reshape(6, 2)
    stats = category_stats(T, ["a", "a", "a", "b", None, None], ("x", "y"), min_count=3)
    assert stats.categories == ("a",) and stats.counts.tolist() == [3.0]
    with pytest.raises(ValueError, match="min_count"):
        category_stats(T, ["a"] * 6, ("x", "y"), min_count=1)


def test_category_model_from_sums_separates_two_gaussians():
    rng = np.random.default_rng(1)
    homes = []
    for _ in range(3):
        T = np.vstack([rng.normal(0, 1, (20, 2)), rng.normal(4, 1, (20, 2))])
        homes.append(category_stats(T, ["a"] * 20 + ["b"] * 20, ("x", "y")))
    model = FleetCategoryModel(homes)
    post = model.posterior(np.array([[0.0, 0.0], [4.0, 4.0]]), ("x", "y"), ["a", "b", "c"])
    assert post[0, 0] > 0.99 and post[1, 1] > 0.99 and np.isnan(post[:, 2]).all()
    marginal = model.posterior(np.array([[4.0]]), ("y",), ["a", "b"])  # exact marginal
    assert marginal[0, 1] > 0.99


def _local_home(preset: str, seed: int, *, opt_out: bool = False) -> LocalHome:
    spec = load_preset(preset)
    sim = generate_run(spec, days=2, seed=seed)
    events = [s.event for s in sim]
    truth = {s.event.event_id: s.truth for s in sim}
    uses = pair_events(events).uses
    tz = events[0].t.tzinfo
    installed = datetime.combine(events[0].t.date(), time(0), tz)
    labels = []
    for u in uses[::3]:  # every third use labeled with its true valve
        valve = Counter(truth[e]["valve"] for e in u.event_ids).most_common(1)[0][0]
        labels.append(LabelRecord(u.use_id, valve, "valve", "guided", u.t, valve))
    return LocalHome(f"{preset}-{seed}", spec, installed, uses, events, labels, opt_out=opt_out)


@pytest.fixture(scope="module")
def homes() -> list[LocalHome]:
    return [
        _local_home("apartment", 1),
        _local_home("two_bath_house", 2),
        _local_home("apartment", 3, opt_out=True),
    ]


def _walk(obj, seen=None):
    """Every object reachable from ``obj`` through attributes and containers."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (int, float, bool, type(None), np.ndarray, type)):
        return
    seen.add(id(obj))
    yield obj
    children = []
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    for child in children:
        yield from _walk(child, seen)


def test_fleet_holds_no_event_use_or_label_of_any_home(homes):
    fleet = build_fleet(homes, FleetConfig(min_homes=2))
    assert fleet.category_model is not None and fleet.projection is not None
    private_ids = {e.event_id for h in homes for e in h.events}
    private_ids |= {u.use_id for h in homes for u in h.uses}
    for obj in _walk(fleet):
        assert not isinstance(obj, (Event, WaterUse, LabelRecord, ScoredLabel, LocalHome))
        if isinstance(obj, str):
            assert obj not in private_ids and not obj.startswith(("apartment-", "two_bath"))


def test_opted_out_home_is_never_read(homes):
    opted = homes[2]
    with pytest.raises(PermissionError, match="opted out"):
        opted.accuracy_counts()
    with_opt_out = build_fleet(homes, FleetConfig(min_homes=2))
    without = build_fleet(homes[:2], FleetConfig(min_homes=2))
    assert with_opt_out.n_homes == 2
    np.testing.assert_array_equal(with_opt_out.projection.components, without.projection.components)
    np.testing.assert_array_equal(with_opt_out.category_model.means_, without.category_model.means_)


def test_accuracy_prior_pools_only_homes_of_the_same_layout():
    from atlas.fleet import AccuracyCount, FleetAccuracyPrior

    counts = {f"h{i}": [AccuracyCount("category", 2, 18.0 - i % 2, 20.0)] for i in range(6)}
    layouts = {f"h{i}": "house" if i < 4 else "flat" for i in range(6)}
    prior = FleetAccuracyPrior(counts, min_homes=3, layouts=layouts)
    assert prior.prior("category", 3, "house") is not None  # week 3 falls back to week 2
    assert prior.prior("category", 2, "flat") is None  # only 2 flats: not enough support
    assert prior.prior("category", 1, "house") is None  # no evidence that early
    assert prior.prior("category", 2) is not None  # all homes
