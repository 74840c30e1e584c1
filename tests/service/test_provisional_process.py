"""The provisional pairing in its child process: every use classified once, models asked for and
updated, features shared back, and a dead child replaced."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from atlas.engine import CalibrationEngine
from atlas.pairing import pair_events
from service import metrics
from service.intake.provisional_process import ProvisionalProcess
from service.waiting import wait_until
from simulator.generate import generate_run
from simulator.presets import load_preset


class _Parent:
    """What the runtime gives the process: a preview model per home, and a hub."""

    def __init__(self, spec) -> None:
        self.model = CalibrationEngine(spec, datetime(2026, 1, 1, tzinfo=UTC)).preview_model()
        self.loads = 0
        self.rows: list[dict] = []
        self.shared: set[str] = set()
        self.lock = threading.Lock()

    def preview_model(self, home_id: str):
        self.loads += 1
        return self.model

    def cached(self, home_id: str):
        return self.model

    def publish(self, home_id: str, rows: list[dict]) -> None:
        with self.lock:
            self.rows.extend(rows)

    def share(self, home_id, features) -> None:
        self.shared.update(features)


def _events(seed: int, days: int = 1):
    spec = load_preset("two_bath_house")
    return spec, [s.event for s in generate_run(spec, days=days, seed=seed)]


def _provisional_pauses() -> float:
    """Collections of the child counted in the parent's ``/metrics`` so far."""
    samples = next(iter(metrics.GC_PAUSES.collect())).samples
    return sum(
        s.value
        for s in samples
        if s.name.endswith("_count") and s.labels["process"] == "provisional"
    )


def test_the_child_classifies_each_use_once_and_shares_features():
    pauses_before = _provisional_pauses()
    timed = "atlas_provisional_delay_seconds_count"
    timed_before = REGISTRY.get_sample_value(timed)
    spec, events = _events(seed=3)
    parent = _Parent(spec)
    proc = ProvisionalProcess(
        parent.preview_model, parent.cached, parent.publish, share_features=parent.share
    )
    proc.start()
    try:
        for i in range(0, len(events), 5):  # committed batches, the first 4 exactly as received
            batch = events[i : i + 5]
            proc.add(batch, exact=[e.event_id for e in batch] if i < 20 else [])
    finally:
        proc.stop()  # pairs and classifies what it was given first
    assert not proc.alive
    ids = [r["use_id"] for r in parent.rows]
    assert len(ids) == len(set(ids))  # each use once
    offline = {u.use_id for u in pair_events(events).uses}
    assert len(set(ids) & offline) >= 0.95 * len(offline)
    assert all(r["provisional"] and r["display_level"] for r in parent.rows)
    assert parent.loads == 1  # asked once for the home's model, then kept it
    assert parent.shared == {e.event_id for e in events[:20]}
    assert REGISTRY.get_sample_value(timed) - timed_before == len(ids)  # every use timed
    # the child's collector pauses reach the parent's metrics (at least its start-up collection)
    assert _provisional_pauses() > pauses_before


def _quiet(parent: _Parent, for_s: float = 1.5, timeout_s: float = 60.0) -> int:
    """Wait until rows came and then none for ``for_s``: the child has classified its events."""
    assert wait_until(lambda: parent.rows, timeout_s=timeout_s)
    seen = -1
    while len(parent.rows) != seen:
        seen = len(parent.rows)
        time.sleep(for_s)
    return seen


def test_a_changed_model_reaches_the_child():
    spec, events = _events(seed=5, days=2)
    parent = _Parent(spec)
    sent = threading.Event()
    cached = parent.cached

    def cached_and_seen(home_id):  # read under the send lock, just before the model is sent
        model = cached(home_id)
        sent.set() if model.model_version == 7 else None
        return model

    parent.cached = cached_and_seen

    def retrained(proc: ProvisionalProcess) -> None:
        parent.model = dataclasses.replace(parent.model, model_version=7)
        proc.model_changed(spec.home_id)  # the engine changed
        assert sent.wait(10)  # the second half is sent after the model: classified with it

    before = _in_two_halves(parent, events, retrained)
    later = parent.rows[before:]
    assert len(later) > 5 and {r["model_version"] for r in later} == {"m7"}
    assert {r["model_version"] for r in parent.rows[:before]} == {"rules"}
    assert parent.loads == 1


def test_a_dead_child_is_replaced_with_the_next_events():
    spec, events = _events(seed=6, days=2)
    parent = _Parent(spec)

    def killed(proc: ProvisionalProcess) -> None:
        (child,) = [p for p in multiprocessing.active_children() if p.name == "atlas-provisional"]
        child.kill()
        child.join(10)
        assert not proc.alive

    before = _in_two_halves(parent, events, killed)  # the second half starts a new child
    assert len(parent.rows) > before + 5
    assert parent.loads == 2  # the new child asked for the model again


def _in_two_halves(parent: _Parent, events, between) -> int:
    """Feed half the events, let the child finish them, call ``between(process)``, feed the
    rest, stop (which classifies what was given); returns the rows of the first half."""
    proc = ProvisionalProcess(parent.preview_model, parent.cached, parent.publish)
    proc.start()
    half = len(events) // 2
    try:
        proc.add(events[:half])
        before = _quiet(parent)
        between(proc)
        proc.add(events[half:])
        assert proc.alive
    finally:
        proc.stop()
    return before


def test_pauses_are_drained_once_by_threads_that_race_for_them():
    """The pairer and the main thread of the child both send pauses after their rows."""
    from collections import deque

    from service.intake.provisional_process import drain_pauses

    pauses: deque[tuple[int, float]] = deque((0, float(i)) for i in range(200_000))
    got: list[list[tuple[int, float]]] = [[], []]
    threads = [
        threading.Thread(target=lambda k=k: got[k].extend(drain_pauses(pauses))) for k in (0, 1)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got[0] + got[1]) == [(0, float(i)) for i in range(200_000)]
