"""The classifier takes the homes with new stored uses in passes (``classify_every_s``)."""

from __future__ import annotations

import threading
import time

from service.runtime.service import AtlasRuntime
from service.settings import Settings


def test_homes_dirtied_within_the_interval_are_classified_in_one_pass(sqlite_engine, uid):
    settings = Settings(db_url="sqlite:///unused.db", mqtt_client_prefix=f"t{uid}",
                        log_json=False, classify_every_s=1.0)  # fmt: skip
    rt = AtlasRuntime(settings, sqlite_engine)  # real time: 1 s of service time is 1 s
    calls: list[tuple[float, str]] = []
    rt.pipeline.process_home = lambda home_id: calls.append((time.monotonic(), home_id)) or 0
    loop = threading.Thread(target=rt._pipeline_loop, daemon=True)
    loop.start()
    try:
        rt._mark_dirty({"home-a"})
        time.sleep(0.1)
        rt._mark_dirty({"home-b"})
        deadline = time.monotonic() + 10
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        rt._stop.set()
        loop.join(5)
    assert [home for _, home in calls] == ["home-a", "home-b"]
    assert calls[1][0] - calls[0][0] < 0.05  # one pass, not one per notification
