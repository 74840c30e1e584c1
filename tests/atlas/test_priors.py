"""Spec-physics ring prior (atlas.physics_prior) and hand-washing context (atlas.context_prior)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from atlas.classifier import HierarchicalClassifier
from atlas.context_prior import handwash_log_likelihood
from atlas.domain import Category
from atlas.homespec import parse_home_spec
from atlas.physics_prior import expected_ring_hz, ring_log_likelihood, rings_visibly
from atlas.uses import UseStatus, WaterUse


def two_bath_spec():
    """Two sinks on different copper runs (5 m, 8.6 m), two toilets on near-equal runs."""

    def fx(fid, cat, handle, loc, cold_m, hot_m=None):
        runs = {"cold": {"material": "copper", "length_m": cold_m}}
        if hot_m is not None:
            runs["hot"] = {"material": "copper", "length_m": hot_m}
        return {
            "id": fid,
            "name": fid,
            "category": cat,
            "handle": handle,
            "location": loc,
            "runs": runs,
        }

    return parse_home_spec(
        {
            "home_id": "h",
            "name": "h",
            "residents": 2,
            "static_pressure_kpa": 400,
            "sensors": {"hot": {"sensor_id": "hot"}, "cold": {"sensor_id": "cold"}},
            "fixtures": [
                fx("kitchen", "kitchen_faucet", "two_handle", "kitchen", 5.0, 6.5),
                fx("b1-sink", "bathroom_faucet", "two_handle", "b1", 8.6, 10.5),
                fx("b1-toilet", "toilet", "fill_valve", "b1", 9.2),
                fx("b2-sink", "bathroom_faucet", "two_handle", "b2", 20.0, 22.0),
                fx("b2-toilet", "toilet", "fill_valve", "b2", 9.6),
            ],
        }
    )


def rings(cold_close: list[float]) -> np.ndarray:
    out = np.zeros((len(cold_close), 2, 2))
    out[:, 1, 1] = cold_close
    return out


def test_expected_ring_is_quarter_wave():
    spec = two_bath_spec()
    assert expected_ring_hz(spec.valve("kitchen/cold"), "cold") == pytest.approx(1300.0 / 20.0)
    assert expected_ring_hz(spec.valve("kitchen/hot"), "hot") == pytest.approx(1339.0 / 26.0)
    assert expected_ring_hz(spec.valve("kitchen/cold"), "hot") is None


def test_float_valves_do_not_ring():
    spec = two_bath_spec()
    assert not rings_visibly(spec.valve("b1-toilet/fill"), "cold")
    assert rings_visibly(spec.valve("b1-sink/cold"), "cold")


def test_ring_picks_the_run_with_the_matching_length():
    spec = two_bath_spec()
    valves = [spec.valve(v) for v in spec.hierarchy.valve_ids]
    ll = ring_log_likelihood(rings([63.0, 39.0, 0.0]), valves)
    ids = spec.hierarchy.valve_ids
    assert ids[int(np.argmax(ll[0]))] == "kitchen/cold"
    assert ids[int(np.argmax(ll[1]))] == "b1-sink/cold"
    assert np.all(ll[2] == 0.0)  # no ring: no information
    assert np.all(ll <= 0.0)


def test_outlier_mass_keeps_a_wrong_ring_possible():
    spec = two_bath_spec()
    valves = [spec.valve(v) for v in spec.hierarchy.valve_ids]
    ll = ring_log_likelihood(rings([63.0]), valves)
    assert np.isfinite(ll).all() and ll.min() > -10


@pytest.mark.parametrize("bad", [{"sigma": 0.0}, {"outlier": {"open": 0.5, "close": 1.0}}])
def test_ring_parameters_are_checked(bad):
    spec = two_bath_spec()
    with pytest.raises(ValueError):
        ring_log_likelihood(rings([50.0]), list(spec.valves), **bad)


def use(i: int, t: datetime) -> WaterUse:
    return WaterUse(
        f"u{i}",
        "h",
        ("cold",),
        t,
        t + timedelta(seconds=20),
        UseStatus.PAIRED,
        (f"o{i}",),
        (f"c{i}",),
        {"cold": 3.0},
    )


def test_handwash_after_flush_points_at_that_bathroom():
    spec = two_bath_spec()
    ids = spec.hierarchy.valve_ids
    valves = [spec.valve(v) for v in ids]
    t0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
    uses = [use(0, t0), use(1, t0 + timedelta(seconds=10)), use(2, t0 + timedelta(hours=1))]
    b2_sink_ring = expected_ring_hz(spec.valve("b2-sink/cold"), "cold")
    physics = ring_log_likelihood(rings([0.0, b2_sink_ring, 0.0]), valves)
    ctx = handwash_log_likelihood(spec, uses, physics)
    b1, b2 = ids.index("b1-toilet/fill"), ids.index("b2-toilet/fill")
    assert ctx[0, b2] > ctx[0, b1]
    assert np.all(ctx[2] == 0.0)  # nothing followed: no information
    others = [
        i for i, v in enumerate(ids) if spec.hierarchy.category_of_valve(v) != Category.TOILET
    ]
    assert np.all(ctx[:, others] == 0.0)


def test_classifier_uses_physics_columns_as_a_prior():
    spec = two_bath_spec()
    ids = spec.hierarchy.valve_ids
    valves = [spec.valve(v) for v in ids]
    n = 40
    rng = np.random.default_rng(0)
    ring = np.where(np.arange(n) % 2 == 0, 65.0, 37.8) * np.exp(rng.normal(0, 0.02, n))
    ll = ring_log_likelihood(rings(list(ring)), valves)
    base = np.column_stack([np.zeros(n), np.ones(n), rng.normal(0, 1, (n, 3))])
    X = np.hstack([base, ll])
    y = np.full(n, None, dtype=object)
    y[0], y[1] = "kitchen/cold", "b1-sink/cold"  # the other columns are pure noise

    def accuracy(physics_power: float) -> float:
        clf = HierarchicalClassifier(
            hierarchy=spec.hierarchy,
            valve_lines={v.id: tuple(str(line) for line in v.lines) for v in valves},
            line_columns=(0, 1),
            physics_columns=(5, 5 + len(ids)),
            physics_power=physics_power,
        ).fit(X, y)
        truth = np.where(np.arange(n) % 2 == 0, "kitchen/cold", "b1-sink/cold")
        return float((clf.predict(X) == truth).mean())

    assert accuracy(1.0) > 0.95
    assert accuracy(0.0) < 0.8
