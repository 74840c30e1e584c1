"""The service's clock: real time in production, scaled simulated time in the demo and tests.

Why a clock object instead of ``datetime.now``: the demo plays 28 days in minutes, so every
decision that depends on time (quiet hours, round days, expiry) must read the *simulated* time,
and APScheduler (which only knows wall time) must be told *when in wall time* a simulated instant
happens. :meth:`Clock.to_wall` is that mapping; jobs carry their simulated due time as an
argument, so a job that runs late (downtime, a slow machine) still computes what was due then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Now, and the wall-clock instant at which a service-time instant happens."""

    def now(self) -> datetime: ...

    def to_wall(self, t: datetime) -> datetime: ...

    def wall_seconds(self, service_seconds: float) -> float: ...


class SystemClock:
    """Real time; service time and wall time are the same."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def to_wall(self, t: datetime) -> datetime:
        return t.astimezone(UTC)

    def wall_seconds(self, service_seconds: float) -> float:
        return service_seconds


@dataclass(frozen=True)
class ScaledClock:
    """Simulated time running ``speed`` times faster than the wall clock from an anchor.

    ``sim_start`` happens at ``wall_start`` (Unix seconds). The anchor is configuration, not
    process state, so a restarted service (and the simulator streaming the events) agree on
    what time it is.
    """

    sim_start: datetime
    wall_start: float
    speed: float

    def __post_init__(self) -> None:
        if self.sim_start.tzinfo is None:
            raise ValueError(f"sim_start={self.sim_start!r} should be timezone-aware.")
        if not self.speed > 0:
            raise ValueError(f"speed={self.speed} should be > 0.")
        # in UTC: aware arithmetic with a ZoneInfo is wall-clock arithmetic, so a start in
        # America/Chicago put "now" an hour behind once the simulation crossed the DST change
        # (every event after it was refused as being from the future)
        object.__setattr__(self, "sim_start", self.sim_start.astimezone(UTC))

    def now(self) -> datetime:
        return self.sim_start + timedelta(seconds=(time.time() - self.wall_start) * self.speed)

    def to_wall(self, t: datetime) -> datetime:
        seconds = self.wall_start + (t - self.sim_start).total_seconds() / self.speed
        return datetime.fromtimestamp(seconds, UTC)

    def wall_seconds(self, service_seconds: float) -> float:
        return service_seconds / self.speed


def clock_from_settings(sim_start: str, sim_wall_start: float, sim_speed: float) -> Clock:
    """A :class:`ScaledClock` when ``sim_start`` is set (ISO 8601), else :class:`SystemClock`."""
    if not sim_start:
        return SystemClock()
    return ScaledClock(datetime.fromisoformat(sim_start), sim_wall_start, sim_speed)
