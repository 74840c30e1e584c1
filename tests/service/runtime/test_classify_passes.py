"""The classifier takes the homes with new stored uses in passes (``classify_every_s``)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from service.clock import SystemClock, VirtualClock
from service.runtime.passes import ClassifyPasses

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_homes_dirtied_within_the_interval_are_classified_in_one_pass():
    passes = ClassifyPasses(SystemClock(), every_s=1.0)  # real time: 1 s is 1 s
    first = time.monotonic()
    passes.mark_dirty({"home-a"})
    time.sleep(0.1)
    passes.mark_dirty({"home-b"})
    homes = passes.take_pass(threading.Event())
    waited = time.monotonic() - first
    assert homes == {"home-a", "home-b"}  # one pass, not one per notification
    assert 0.95 <= waited < 1.5  # the pause started with the first home


def test_after_an_idle_spell_the_first_home_waits_for_the_others():
    """The interval starts with the first home dirtied, not with the last pass: a quiet service
    does not classify the first of a burst of homes on its own."""
    clock = VirtualClock(T0)
    passes = ClassifyPasses(clock, every_s=1.0)
    clock.advance_to(T0 + timedelta(hours=1))  # idle
    assert passes.next_due() is None and not passes.busy()
    passes.mark_dirty({"home-a"})
    due = T0 + timedelta(hours=1, seconds=1)
    assert passes.next_due() == due and not passes.busy()
    clock.advance_to(due - timedelta(seconds=0.5))
    passes.mark_dirty({"home-b"})
    assert passes.next_due() == due and not passes.busy()  # b joins a's pass
    clock.advance_to(due)
    assert passes.busy()  # due by the service clock: a stepped clock's driver waits
    assert passes.take_pass(threading.Event()) == {"home-a", "home-b"}
    assert passes.busy() and passes.next_due() is None  # under way
    passes.pass_done()
    assert not passes.busy()


def test_a_home_dirtied_during_a_pass_starts_a_new_pause():
    clock = VirtualClock(T0)
    passes = ClassifyPasses(clock, every_s=2.0)
    passes.mark_dirty({"home-a"})
    clock.advance_to(T0 + timedelta(seconds=2))
    assert passes.take_pass(threading.Event()) == {"home-a"}
    clock.advance_to(T0 + timedelta(seconds=3))
    passes.mark_dirty({"home-b"})
    assert passes.next_due() == T0 + timedelta(seconds=5)


def test_idle_it_hands_out_empty_passes_and_stopping_takes_the_rest_at_once():
    clock = VirtualClock(T0)
    passes = ClassifyPasses(clock, every_s=60.0)
    stop = threading.Event()
    assert passes.take_pass(stop, idle_s=0.01) == set()  # the runtime saves snapshots then
    passes.mark_dirty({"home-a"})
    stop.set()
    assert passes.take_pass(stop) == {"home-a"}  # not due, but the last pass
    passes.pass_done()
    assert passes.take_pass(stop) == set()  # the runtime's loop ends
