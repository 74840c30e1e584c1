"""When each home's next round and daily update are due (pure: engine views and time zones)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from atlas.engine import CalibrationEngine

#: The daily update runs just after local midnight: the estimates of the day that ended, and the
#: codebook (due "once day 7 is over") before the first round on day 8.
DAILY_AT = time(0, 5)


def next_daily(after: datetime, tz: ZoneInfo) -> datetime:
    """The first local ``DAILY_AT`` strictly after ``after``."""
    local = after.astimezone(tz)
    candidate = datetime.combine(local.date(), DAILY_AT, tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), DAILY_AT, tz)
    return candidate


def next_round(
    engine: CalibrationEngine, after: datetime, horizon_days: int = 60
) -> datetime | None:
    """The first round time (the day's last timetable slot) strictly after ``after``."""
    local = after.astimezone(engine.tz)
    for d in range(horizon_days):
        noon = datetime.combine(local.date() + timedelta(days=d), time(12), engine.tz)
        t = engine.round_time(noon)
        if t is not None and t > after:
            return t
    return None
