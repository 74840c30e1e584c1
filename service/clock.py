"""The service's clock: real time in production, simulated time in the demo and tests.

Why a clock object instead of ``datetime.now``: the demo plays 28 days in minutes, so every
decision that depends on time (quiet hours, round days, expiry) must read the *simulated* time,
and APScheduler (which only knows wall time) must be told *when in wall time* a simulated instant
happens. :meth:`Clock.to_wall` is that mapping; jobs carry their simulated due time as an
argument, so a job that runs late (downtime, a slow machine) still computes what was due then.

Two simulated clocks: :class:`ScaledClock` runs by itself, ``speed`` times wall time (a slow
machine then makes the service late in simulated time); :class:`VirtualClock` moves only when
its driver advances it, which ``atlas demo`` does once the service has finished what was due
(a discrete-event clock: the same seeds give the same run on any machine).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol


class Clock(Protocol):
    """Now, and the wall-clock instant at which a service-time instant happens (``to_wall``;
    ``from_wall`` is its inverse, e.g. for a stored job's run time).

    ``stepped``: time moves only when a driver advances it (:class:`VirtualClock`), so nothing
    may wait for a service-time instant in wall time; the driver wakes the scheduler instead.
    """

    stepped: bool

    def now(self) -> datetime: ...

    def to_wall(self, t: datetime) -> datetime: ...

    def from_wall(self, wall: datetime) -> datetime: ...

    def wall_seconds(self, service_seconds: float) -> float: ...


class SystemClock:
    """Real time; service time and wall time are the same."""

    stepped = False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def to_wall(self, t: datetime) -> datetime:
        return t.astimezone(UTC)

    def from_wall(self, wall: datetime) -> datetime:
        return wall.astimezone(UTC)

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
    stepped: ClassVar[bool] = False

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

    def from_wall(self, wall: datetime) -> datetime:
        return self.sim_start + timedelta(seconds=(wall.timestamp() - self.wall_start) * self.speed)

    def wall_seconds(self, service_seconds: float) -> float:
        return service_seconds / self.speed


#: Where a :class:`VirtualClock` puts its instants on the wall timeline: before any real "now".
#: APScheduler runs a job once its wall run time is past by the real clock, so every job of a
#: virtual clock is past due to it, and the job store decides which are due by asking the clock
#: (service/scheduler/service.py).
VIRTUAL_WALL_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


class VirtualClock:
    """Service time that moves only when :meth:`advance_to` moves it (a discrete-event clock).

    Its driver (``atlas demo``) advances it to the next instant at which something is due (an
    event to publish, a homeowner's answer, a scheduler job) only once the service has finished
    everything due before. A job that takes wall seconds therefore takes no service time, and
    what the service does depends on the seeds, not on the machine's speed.
    """

    stepped = True

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(f"start={start!r} should be timezone-aware.")
        self.start = start.astimezone(UTC)  # in UTC: see ScaledClock
        self._now = self.start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, t: datetime) -> None:
        """Move service time forward to ``t`` (never back: what happened stays in the past)."""
        t = t.astimezone(UTC)
        with self._lock:
            if t < self._now:
                raise ValueError(f"t={t.isoformat()} should not be before now={self._now}.")
            self._now = t

    def to_wall(self, t: datetime) -> datetime:
        """``t``'s place on the wall timeline, one wall second per service second from
        :data:`VIRTUAL_WALL_ORIGIN` (no real instant: ``t`` happens when the driver says)."""
        return VIRTUAL_WALL_ORIGIN + (t - self.start)

    def from_wall(self, wall: datetime) -> datetime:
        return self.start + (wall - VIRTUAL_WALL_ORIGIN)

    def wall_seconds(self, service_seconds: float) -> float:
        """0: service time does not pass while the service waits for it, so a pause in
        service time (between classifier passes, say) is no pause at all."""
        return 0.0


def clock_from_settings(sim_start: str, sim_wall_start: float, sim_speed: float) -> Clock:
    """A :class:`ScaledClock` when ``sim_start`` is set (ISO 8601), else :class:`SystemClock`."""
    if not sim_start:
        return SystemClock()
    return ScaledClock(datetime.fromisoformat(sim_start), sim_wall_start, sim_speed)
