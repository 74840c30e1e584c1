"""Fleet transfer: the fleet prior's coverage and strength, privacy of the fleet object, opt-out."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time

import numpy as np
import pytest

from atlas.engine.records import LabelRecord
from atlas.estimate import ScoredLabel, estimate_accuracy
from atlas.events import Event
from atlas.fleet import FleetConfig, LocalHome, build_fleet, fit_population
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


def _fleet_and_new_home(rng, mean: float, sd: float, n_fleet: int):
    """Counts of ``n_fleet`` homes and a new home, accuracies ~ Beta(mean, sd), 3-19 labels each
    (a fleet home's effective labels at a week's end) and 0-14 for the new home."""
    strength = mean * (1 - mean) / sd**2 - 1
    p = rng.beta(mean * strength, (1 - mean) * strength, size=n_fleet + 1)
    n = rng.integers(3, 20, size=n_fleet + 1).astype(float)
    x = rng.binomial(n.astype(int), p).astype(float)
    n_new = int(rng.integers(0, 15))
    return x[:n_fleet], n[:n_fleet], int(rng.binomial(n_new, p[-1])), n_new, float(p[-1])


@pytest.mark.slow
@pytest.mark.parametrize(("mean", "sd"), [(0.9, 0.05), (0.93, 0.03)])
def test_fleet_prior_bound_covers_new_homes_at_nominal_rate(mean, sd):
    """Coverage over fleets and new homes drawn from one population (nominal 0.9); the fleet
    knows the population only through 20 homes' few labels each."""
    rng = np.random.default_rng(0)
    covered, gain = [], []
    for _ in range(200):
        x, n, x_new, n_new, p_new = _fleet_and_new_home(rng, mean, sd, 20)
        labels = _audit_labels(x_new, n_new)
        prior = fit_population(x, n)
        with_fleet = estimate_accuracy(
            labels, "category", method="audit_beta", confidence=0.9, prior=prior
        )
        alone = estimate_accuracy(labels, "category", method="audit_beta", confidence=0.9)
        covered.append(with_fleet.lower <= p_new)
        gain.append(with_fleet.lower - alone.lower)
    assert np.mean(covered) >= 0.88  # measured 0.91 and 0.92 (nominal 0.9)
    assert np.mean(gain) > 0.15  # measured +0.22 and +0.25 over the home alone


def test_a_fleet_that_agrees_is_worth_more_labels_than_it_has_homes():
    """The prior's strength follows the between-home spread, not the number of homes."""
    tight = fit_population([196, 188, 192, 190, 194, 189], [200] * 6)
    spread = fit_population([196, 150, 192, 120, 194, 170], [200] * 6)
    assert tight.strength > 6 * 5
    assert spread.strength < tight.strength / 5
    assert abs(tight.mean - 0.958) < 0.01


def test_fleet_doubt_widens_the_prior_when_homes_have_few_labels():
    """Six homes at 9/10 say less about the population than six at 180/200."""
    few = fit_population([9] * 6, [10] * 6)
    many = fit_population([180] * 6, [200] * 6)
    assert few.strength < many.strength
    with pytest.raises(ValueError, match="needs >= 2"):
        fit_population([9], [10])


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


# ---------------------------------------------------------------- stand-ins (atlas.fleet.standin)


def _standin_matrix(spec, rows):
    """Feature rows with only lines, rule evidence and physics set: (lines, category, valve).

    ``category``: the rules' decided category (likelihood 0.9, others 0.05) or None; ``valve``:
    the valve the physics prior favours by 3 log units, or None (flat).
    """
    from atlas.domain import Category
    from atlas.features import EVIDENCE_COLUMNS, feature_names

    names = feature_names(0)
    valves = list(spec.hierarchy.valve_ids)
    X = np.zeros((len(rows), len(names) + len(valves)))
    order = [str(c) for c in Category]
    for i, (lines, category, valve) in enumerate(rows):
        X[i, 0], X[i, 1] = float("hot" in lines), float("cold" in lines)
        ev = np.ones(len(order)) if category is None else np.full(len(order), 0.05)
        if category is not None:
            ev[order.index(category)] = 0.9
        X[i, EVIDENCE_COLUMNS[0] : EVIDENCE_COLUMNS[1]] = ev
        if valve is not None:
            X[i, len(names) + valves.index(valve)] = 3.0
    return X, (len(names), len(names) + len(valves))


def test_stand_in_scores_take_the_category_from_evidence_and_the_valve_from_physics():
    from atlas.fleet.standin import picks, standin_scores

    spec = load_preset("two_bath_house")
    X, phys = _standin_matrix(
        spec,
        [
            ({"cold"}, "toilet", "bath2-toilet/fill"),  # which toilet: the physics prior
            ({"hot", "cold"}, "shower", None),  # the one shower's mixed valve
            ({"cold"}, None, None),  # no evidence: no pick
        ],
    )
    scores = standin_scores(spec, X, phys, np.ones((3, 8)))
    valves = list(spec.hierarchy.valve_ids)
    chosen = picks(scores, 0.5)
    assert valves[chosen[0]] == "bath2-toilet/fill"
    assert valves[chosen[1]] == "bath1-shower/mixed"
    assert chosen[2] == -1
    # a valve never scores on a use with other lines than its own
    assert scores[0, valves.index("bath1-shower/mixed")] == 0.0


def test_trust_needs_enough_right_picks_and_grouped_valves_need_the_right_valve():
    from atlas.fleet.standin import StandinCounts, StandinTrust

    shower = ("shower", ("cold", "hot"))
    hose = ("outdoor_hose", ("cold",))
    toilet = ("toilet", ("cold",))
    homes = [
        StandinCounts({shower: (2, 2, 0, 0), hose: (1, 1, 0, 0), toilet: (4, 4, 4, 2)})
        for _ in range(4)
    ]
    trust = StandinTrust(homes, min_precision=0.8, confidence=0.8, min_homes=3)
    assert shower in trust.alone_  # 8 of 8 right
    assert hose not in trust.alone_  # 4 of 4: too few to be sure
    assert toilet in trust.alone_ and toilet not in trust.grouped_  # category yes, valve 8/16
    two_toilets = load_preset("two_bath_house")
    one_toilet = load_preset("apartment")
    assert trust.covers(one_toilet, "toilet/fill")
    assert not trust.covers(two_toilets, "bath1-toilet/fill")
    assert trust.covers(two_toilets, "bath1-shower/mixed")
    assert not StandinTrust(homes[:2], min_homes=3).alone_  # two homes are not a fleet


def test_stand_ins_fill_only_trusted_valves_without_own_labels():
    from atlas.fleet.standin import StandinCounts, StandinTrust, stand_in_targets

    spec = load_preset("apartment")
    trusted = {("toilet", ("cold",)): (9, 9, 0, 0), ("shower", ("cold", "hot")): (9, 9, 0, 0)}
    trust = StandinTrust([StandinCounts(trusted)] * 3)
    valves = list(spec.hierarchy.valve_ids)
    scores = np.zeros((6, len(valves)))
    scores[:4, valves.index("toilet/fill")] = [0.9, 0.8, 0.7, 0.6]
    scores[4:, valves.index("shower/mixed")] = 0.9
    y = np.array([None, "kitchen-sink/cold", None, None, "shower/hot", None], dtype=object)
    out = stand_in_targets(spec, scores, y, trust, threshold=0.5, k=2)
    assert out.tolist() == [
        "toilet/fill",  # the best free pick
        "kitchen-sink/cold",  # a real label is never overwritten
        "toilet/fill",  # k=2 stand-ins
        None,
        "shower/hot",
        "shower/mixed",  # shower/mixed has no label of its own yet
    ]
    y[0] = "toilet/fill"  # the home's own label takes over
    out = stand_in_targets(spec, scores, y, trust, threshold=0.5, k=2)
    assert out.tolist().count("toilet/fill") == 1
    assert y[2] is None  # y itself is not changed


def test_fleet_checklist_leaves_out_covered_items_only():
    from atlas.checklist import build_checklist
    from atlas.fleet.standin import StandinCounts, StandinTrust, fleet_checklist

    spec = load_preset("two_bath_house")
    trust = StandinTrust([StandinCounts({("shower", ("cold", "hot")): (3, 3, 0, 0)})] * 3)
    full = build_checklist(spec.fixtures)
    short = fleet_checklist(spec, trust)
    assert [i.item_id for i in full if i not in short] == ["bath1-shower"]
    assert fleet_checklist(spec, None) == full


def test_engine_trains_on_stand_ins_but_never_scores_them(homes):
    from datetime import timedelta

    from atlas.engine import CalibrationEngine

    config = FleetConfig(
        min_homes=2, standin_min_homes=1, standin_min_precision=0.05, standin_confidence=0.5
    )
    fleet = build_fleet(homes, config)
    assert fleet.trust is not None and fleet.trust.alone_
    new = _local_home("apartment", 7)
    engine = CalibrationEngine(new.spec, new.installed_at, fleet=fleet.for_home(new.spec))
    now = new.installed_at + timedelta(days=2)
    engine.ingest(new.uses, new.events, now)
    report = engine.daily_update(now)
    assert engine.model_version >= 1  # a model before the homeowner gave any label
    assert engine.labels == () and engine.scored_labels() == []
    assert all(e.n_labels == 0 for e in report.estimates.values())
    alone = CalibrationEngine(new.spec, new.installed_at)
    alone.ingest(new.uses, new.events, now)
    alone.daily_update(now)
    assert alone.model_version == 0  # without the fleet: no label, no model


def _plain(obj):
    """``obj`` (a ``to_dict``) with arrays as (dtype, shape, bytes): compares bit for bit."""
    if isinstance(obj, np.ndarray):
        return (obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def test_fleet_round_trips_through_plain_types_bit_for_bit(homes):
    from dataclasses import replace

    from atlas.fleet import AccuracyCount, FleetAccuracyPrior, FleetPrior
    from atlas.fleet.prior import FLEET_FORMAT

    config = FleetConfig(min_homes=2, standin_min_homes=1, standin_min_precision=0.05)
    fleet = build_fleet(homes, config)
    assert fleet.trust is not None and fleet.trust.alone_
    # the simulated homes have no active labels: an accuracy prior from counts instead
    counts = {
        f"h{i}": [AccuracyCount(lv, 2, 17.0 + i % 3, 20.0) for lv in ("category", "valve")]
        for i in range(4)
    }
    accuracy = FleetAccuracyPrior(counts, min_homes=3, layouts={f"h{i}": "x" for i in range(4)})
    fleet = replace(fleet, accuracy=accuracy)
    state = fleet.to_dict()
    back = FleetPrior.from_dict(state)
    assert _plain(back.to_dict()) == _plain(state)
    assert back.projection.codebook.version_ == fleet.projection.codebook.version_
    spec = homes[0].spec
    assert back.checklist(spec) == fleet.checklist(spec)
    assert back.accuracy.prior("valve", 3, "x") == accuracy.prior("valve", 3, "x") is not None
    X = np.random.default_rng(0).normal(size=(5, fleet.category_model.means_.shape[1] + 40))
    np.testing.assert_array_equal(
        back.category_likelihood(spec, X, None), fleet.category_likelihood(spec, X, None)
    )
    with pytest.raises(ValueError, match="format"):
        FleetPrior.from_dict({**state, "format": f"{FLEET_FORMAT}x"})
