"""Pairing on crafted event sequences: each test builds the waves a sensor would publish."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from atlas.events import Event
from atlas.pairing import pair_events
from atlas.uses import UseStatus

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
RATE = 1000


def wave(step_kpa: float, baseline_kpa: float = 400.0, ring_hz: float = 30.0) -> np.ndarray:
    """A 1.75 s window: quiet baseline for 0.25 s, then a step with a decaying ring.

    A close (positive step) overshoots upwards like water hammer; an open dips below its level.
    """
    t = np.arange(1750) / RATE
    after = t >= 0.25
    tau = t[after] - 0.25
    out = np.full(t.shape, baseline_kpa)
    ring = 0.6 * step_kpa * np.exp(-8 * tau) * np.cos(2 * np.pi * ring_hz * tau)
    out[after] = baseline_kpa + step_kpa * (1 - np.exp(-tau / 0.01)) + ring
    noise = np.random.default_rng(abs(int(step_kpa * 100))).normal(0, 0.05, t.size)
    return (out + noise).astype(np.float32)


def ev(event_id: str, line: str, at_s: float, step_kpa: float, home: str = "h1") -> Event:
    return Event(event_id, home, line, line, T0 + timedelta(seconds=at_s), RATE, wave(step_kpa))


def groups(result) -> dict[str, tuple[str, ...]]:
    return {u.use_id: tuple(sorted(u.event_ids)) for u in result.uses}


def test_simple_pair_is_one_paired_use() -> None:
    result = pair_events([ev("a", "cold", 0, -20), ev("b", "cold", 30, 20)])
    (use,) = result.uses
    assert use.use_id == "u-a"
    assert use.status is UseStatus.PAIRED
    assert use.open_event_ids == ("a",) and use.close_event_ids == ("b",)
    assert use.lines == ("cold",)
    assert use.duration_s == pytest.approx(30)
    assert use.drop_kpa["cold"] == pytest.approx(20, rel=0.1)
    assert result.pending == []


@pytest.mark.parametrize(
    ("close_order", "expected"),
    [
        # nested: the small draw started inside the big one and ends first
        (("s-close", "b-close"), {"u-big": ("big", "b-close"), "u-small": ("s-close", "small")}),
        # crossed: the big one ends first; magnitude still tells them apart
        (("b-close", "s-close"), {"u-big": ("b-close", "big"), "u-small": ("s-close", "small")}),
    ],
)
def test_overlapping_uses_on_one_line_are_told_apart_by_magnitude(close_order, expected) -> None:
    sizes = {"b-close": 30.0, "s-close": 8.0}
    events = [ev("big", "cold", 0, -30), ev("small", "cold", 10, -8)]
    events += [ev(name, "cold", 20 + 5 * i, sizes[name]) for i, name in enumerate(close_order)]
    result = pair_events(events)
    assert {k: tuple(sorted(v)) for k, v in groups(result).items()} == {
        k: tuple(sorted(v)) for k, v in expected.items()
    }
    assert all(u.status is UseStatus.PAIRED for u in result.uses)


def test_mixed_use_on_both_lines_is_one_use() -> None:
    events = [
        ev("oh", "hot", 0.000, -12),
        ev("oc", "cold", 0.004, -15),
        ev("ch", "hot", 60.000, 12),
        ev("cc", "cold", 60.006, 15),
    ]
    (use,) = pair_events(events).uses
    assert use.lines == ("hot", "cold")
    assert use.open_event_ids == ("oh", "oc") and use.close_event_ids == ("ch", "cc")
    assert use.use_id == "u-oh"
    assert set(use.drop_kpa) == {"hot", "cold"}


def test_mixed_close_of_two_single_line_uses_is_split() -> None:
    # a hot tap and a toilet that happened to stop together are still two uses
    events = [
        ev("h", "hot", 0, -10),
        ev("c", "cold", 20, -25),
        ev("hc", "hot", 40.0, 10),
        ev("cc", "cold", 40.01, 25),
    ]
    assert groups(pair_events(events)) == {"u-h": ("h", "hc"), "u-c": ("c", "cc")}


def test_orphan_close_is_kept_and_flagged() -> None:
    result = pair_events([ev("a", "cold", 0, -20), ev("b", "cold", 30, 20), ev("x", "hot", 50, 9)])
    orphan = next(u for u in result.uses if u.use_id == "u-x")
    assert orphan.status is UseStatus.ORPHAN_CLOSE
    assert orphan.t_open is None and orphan.close_event_ids == ("x",)
    assert orphan.t == orphan.t_close


def test_close_far_from_every_running_open_is_an_orphan() -> None:
    # the 40 kPa open's close was lost; a 5 kPa recovery must not steal it
    result = pair_events([ev("big", "cold", 0, -40), ev("tiny", "cold", 20, 5)])
    statuses = {u.use_id: u.status for u in result.uses}
    assert statuses == {"u-big": UseStatus.OPEN_ENDED, "u-tiny": UseStatus.ORPHAN_CLOSE}


def test_open_times_out_into_an_open_ended_use() -> None:
    events = [ev("a", "cold", 0, -20), ev("b", "cold", 7200, 20)]
    result = pair_events(events, open_timeout_s=3600)
    statuses = {u.use_id: u.status for u in result.uses}
    assert statuses == {"u-a": UseStatus.OPEN_ENDED, "u-b": UseStatus.ORPHAN_CLOSE}


def test_open_younger_than_timeout_stays_pending_until_now() -> None:
    events = [ev("a", "cold", 0, -20), ev("b", "cold", 30, 20), ev("c", "hot", 100, -9)]
    result = pair_events(events, now=T0 + timedelta(seconds=200))
    assert [e.event_id for e in result.pending] == ["c"]
    assert [u.use_id for u in result.uses] == ["u-a"]
    later = pair_events(events, now=T0 + timedelta(seconds=100 + 3600))
    assert later.pending == []
    assert {u.use_id: u.status for u in later.uses}["u-c"] is UseStatus.OPEN_ENDED


def test_shuffled_arrival_order_gives_the_same_uses() -> None:
    events = [
        ev("o1", "cold", 0, -20),
        ev("o2", "hot", 5, -11),
        ev("o3", "cold", 8, -6),
        ev("c3", "cold", 15, 6),
        ev("c1", "cold", 25, 20),
        ev("c2", "hot", 40, 11),
        ev("o4", "hot", 50.0, -9),
        ev("o5", "cold", 50.003, -13),
        ev("c4", "hot", 70.0, 9),
        ev("c5", "cold", 70.002, 13),
    ]
    reference = pair_events(events).uses
    assert len(reference) == 4
    for seed in range(5):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        assert pair_events(shuffled).uses == reference


def test_duplicate_events_are_counted_once() -> None:
    events = [ev("a", "cold", 0, -20), ev("b", "cold", 30, 20)]
    assert pair_events(events + events).uses == pair_events(events).uses


def test_features_are_returned_for_every_event() -> None:
    result = pair_events([ev("a", "cold", 0, -20), ev("b", "cold", 30, 20)])
    assert result.features["a"].kind == "open" and result.features["b"].kind == "close"


def test_events_of_several_homes_are_refused() -> None:
    with pytest.raises(ValueError, match="one home"):
        pair_events([ev("a", "cold", 0, -20, home="h1"), ev("b", "cold", 30, 20, home="h2")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"open_timeout_s": 0}, "open_timeout_s=0"),
        ({"max_mismatch": 1.5}, "max_mismatch=1.5"),
        ({"simultaneous_s": -1}, "simultaneous_s=-1"),
    ],
)
def test_bad_parameters_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        pair_events([], **kwargs)


def slow_close(event_id: str, line: str, at_s: float, step_kpa: float, ramp_s: float) -> Event:
    """A close whose level rises over ``ramp_s``, slowly at first as a float valve throttles
    the flow only near its seat: the window sees a small part."""
    t = np.arange(1750) / RATE
    level = 400.0 - step_kpa + step_kpa * np.clip((t - 0.25) / ramp_s, 0.0, 1.0) ** 2
    noise = np.random.default_rng(7).normal(0, 0.05, t.size)
    samples = (level + noise).astype(np.float32)
    return Event(event_id, "h1", line, line, T0 + timedelta(seconds=at_s), RATE, samples)


def test_slow_close_cut_by_the_window_still_pairs() -> None:
    # only ~11 % of the 20 kPa recovery fits in the window: an exact comparison would orphan it
    result = pair_events([ev("o", "cold", 0, -20), slow_close("c", "cold", 60, 20, 4.0)])
    (use,) = result.uses
    assert use.status is UseStatus.PAIRED


def test_slow_close_size_is_read_from_the_next_quiet_event() -> None:
    events = [
        ev("o", "cold", 0, -20),
        slow_close("c", "cold", 60, 20, 4.0),
        Event("n", "h1", "cold", "cold", T0 + timedelta(seconds=120), RATE, wave(-5, 400.0)),
    ]
    use = next(u for u in pair_events(events).uses if u.use_id == "u-o")
    assert use.drop_kpa["cold"] == pytest.approx(20, rel=0.1)


def test_the_level_median_is_numpys_bit_for_bit():
    """Pairing reads levels with its own median (speed); the uses must not change with it."""
    from atlas.pairing import fast_median

    rng = np.random.default_rng(0)
    for n in [*range(1, 40), 149, 150, 300, 301]:
        x = rng.normal(400.0, 3.0, n)
        x[: n // 3] = np.round(x[: n // 3], 1)  # quantised samples: ties
        assert fast_median(x) == float(np.median(x))


def test_a_size_memo_kept_across_live_re_pairings_changes_no_use():
    """A live service re-pairs a home's recent events after each new one with one memo of step
    sizes; a size must be read again when the event that follows it changes."""
    from simulator.generate import generate_run
    from simulator.presets import load_preset

    events = [s.event for s in generate_run(load_preset("two_bath_house"), days=1, seed=3)]
    memo: dict = {}
    for k in range(1, len(events) + 1):
        seen = events[:k]
        with_memo = pair_events(seen, now=seen[-1].t, size_memo=memo)
        fresh = pair_events(seen, now=seen[-1].t)
        assert with_memo.uses == fresh.uses
        assert with_memo.pending == fresh.pending
    # the memo was used: it holds every event, each with the event that follows it at the end
    assert set(memo) == {e.event_id for e in events}
