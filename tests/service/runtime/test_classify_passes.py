"""The classifier takes the homes with new stored uses in passes (``classify_every_s``)."""

from __future__ import annotations

import threading
import time

from service.runtime.service import AtlasRuntime
from service.settings import Settings


def _passes(sqlite_engine, uid: str, idle_s: float) -> list[tuple[float, str]]:
    """Run the classifier loop (process_home replaced) idle for ``idle_s``, then dirty two
    homes 0.1 s apart; when each was classified."""
    settings = Settings(
        db_url="sqlite:///unused.db",
        mqtt_client_prefix=f"t{uid}",
        log_json=False,
        classify_every_s=1.0,
    )
    rt = AtlasRuntime(settings, sqlite_engine)  # real time: 1 s of service time is 1 s
    calls: list[tuple[float, str]] = []
    rt.pipeline.process_home = lambda home_id, reads=None: (
        calls.append((time.monotonic(), home_id)) or 0
    )
    loop = threading.Thread(target=rt._pipeline_loop, daemon=True)
    loop.start()
    try:
        time.sleep(idle_s)
        rt._mark_dirty({"home-a"})
        time.sleep(0.1)
        rt._mark_dirty({"home-b"})
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rt._stop.set()
        loop.join(5)
    return calls


def test_homes_dirtied_within_the_interval_are_classified_in_one_pass(sqlite_engine, uid):
    calls = _passes(sqlite_engine, uid, idle_s=0.0)
    assert [home for _, home in calls] == ["home-a", "home-b"]
    assert calls[1][0] - calls[0][0] < 0.05  # one pass, not one per notification


def test_after_an_idle_spell_the_first_home_waits_for_the_others(sqlite_engine, uid):
    """The interval starts with the first home dirtied, not with the last pass: a quiet service
    does not classify the first of a burst of homes on its own."""
    calls = _passes(sqlite_engine, uid, idle_s=1.5)
    assert [home for _, home in calls] == ["home-a", "home-b"]
    assert calls[1][0] - calls[0][0] < 0.05
