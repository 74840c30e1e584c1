"""The simulated clock keeps real elapsed time across a daylight-saving change."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.clock import ScaledClock


def test_scaled_clock_counts_elapsed_time_across_dst(monkeypatch):
    start = datetime(2026, 3, 2, tzinfo=ZoneInfo("America/Chicago"))  # DST begins 03-08 02:00
    clock = ScaledClock(start, wall_start=1000.0, speed=3600.0)  # an hour per wall second
    week = 7 * 24
    monkeypatch.setattr(time, "time", lambda: 1000.0 + week)
    # a week of elapsed time, not a week of Chicago wall-clock time (an hour less)
    assert clock.now() == start.astimezone(UTC) + timedelta(hours=week)
    assert clock.to_wall(clock.now()).timestamp() == 1000.0 + week
    assert clock.sim_start == start and clock.sim_start.tzinfo == UTC
