"""When to ask the homeowner for labels: a pure function of home-local time and model state.

Seed protocol: from day 8, every other day is a label-request round with 2-4 requests. Requests
go out only outside quiet hours (default 21:00-08:00 local, configurable, may cross midnight),
spread evenly over the day's awake time, so a use from the morning can still be asked about
while remembered. Fewer requests when the model is already good (the display level is high).

A request about a use expires ``memory_h`` (default 24 h) after the use: people do not remember
which tap they opened two days ago, and a wrong answer is worse than none. "End of the next day"
was rejected because it gives up to 48 h for early-morning uses.

Times are computed on the wall clock of the home's time zone (``zoneinfo``) and returned as
aware datetimes; a local day may have 23 or 25 hours around DST changes, and quiet hours are
judged on the local wall clock, so every returned time is outside them by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class TimetablePolicy:
    """Parameters of the label-request timetable.

    Parameters
    ----------
    first_round_day : int, default=8
    every_days : int, default=2
    last_round_day : int or None, default=None
        None = keep asking (week 4 is optional for the homeowner, but labels keep helping).
    quiet_start, quiet_end : datetime.time, default 21:00 and 08:00
        Local wall-clock quiet hours; equal values mean no quiet hours.
    requests_by_level : mapping display level -> count
        Requests per round given the level shown now (2-4 from the seed protocol).
    memory_h : float, default=24.0
    """

    first_round_day: int = 8
    every_days: int = 2
    last_round_day: int | None = None
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    requests_by_level: tuple[tuple[str, int], ...] = (
        ("rule_categories", 4),
        ("category", 4),
        ("fixture", 3),
        ("valve", 2),
    )
    memory_h: float = 24.0

    def __post_init__(self) -> None:
        if self.first_round_day < 1:
            raise ValueError(f"first_round_day={self.first_round_day} should be >= 1.")
        if self.every_days < 1:
            raise ValueError(f"every_days={self.every_days} should be >= 1.")
        if self.memory_h <= 0:
            raise ValueError(f"memory_h={self.memory_h} should be > 0.")
        for level, count in self.requests_by_level:
            if count < 1:
                raise ValueError(f"requests_by_level[{level!r}]={count} should be >= 1.")


@dataclass(frozen=True)
class DayPlan:
    """The label-request plan of one local day."""

    day: int
    is_round: bool
    n_requests: int
    times: tuple[datetime, ...]
    reason: str


def _aware(t: datetime, name: str) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name}={t!r} should be timezone-aware.")


def day_number(now: datetime, installed_at: datetime, tz: ZoneInfo) -> int:
    """1-based local day since installation (the installation day is day 1)."""
    _aware(now, "now")
    _aware(installed_at, "installed_at")
    return (now.astimezone(tz).date() - installed_at.astimezone(tz).date()).days + 1


def is_quiet(t: datetime, tz: ZoneInfo, policy: TimetablePolicy) -> bool:
    """Whether ``t`` falls in the quiet hours on the home's wall clock."""
    _aware(t, "t")
    local = t.astimezone(tz).time().replace(tzinfo=None)
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # crosses midnight


def next_awake(now: datetime, tz: ZoneInfo, policy: TimetablePolicy) -> datetime:
    """``now`` if outside quiet hours, else the first minute after them (home wall clock).

    When a request planned for ``now`` can reach the homeowner at the earliest.
    """
    t = now
    for _ in range(24 * 60 + 1):
        if not is_quiet(t, tz, policy):
            return t
        t = (t + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return now  # quiet hours cover the whole day (start == end means none; cannot happen)


def is_round_day(day: int, policy: TimetablePolicy) -> bool:
    """Every ``every_days`` days from ``first_round_day`` (up to ``last_round_day``)."""
    if day < policy.first_round_day:
        return False
    if policy.last_round_day is not None and day > policy.last_round_day:
        return False
    return (day - policy.first_round_day) % policy.every_days == 0


def request_count(display_level: str, policy: TimetablePolicy) -> int:
    """Requests per round: fewer when the model already backs a finer display level."""
    counts = dict(policy.requests_by_level)
    if display_level not in counts:
        raise ValueError(f"display_level={display_level!r} should be one of {sorted(counts)}.")
    return counts[display_level]


def awake_minutes(local_day: date, tz: ZoneInfo, policy: TimetablePolicy) -> list[datetime]:
    """Every whole minute of ``local_day`` (as UTC instants) outside quiet hours.

    Walking real minutes from local midnight to the next local midnight handles 23- and 25-hour
    days; a wall-clock time that does not exist (spring-forward gap) is simply never visited.
    """
    start = datetime.combine(local_day, time(0), tz).astimezone(_UTC)
    end = datetime.combine(local_day + timedelta(days=1), time(0), tz).astimezone(_UTC)
    minutes = int((end - start).total_seconds() // 60)
    out = []
    for m in range(minutes):
        t = start + timedelta(minutes=m)
        if not is_quiet(t, tz, policy):
            out.append(t)
    return out


def plan_day(
    now: datetime,
    installed_at: datetime,
    tz: ZoneInfo,
    display_level: str,
    policy: TimetablePolicy | None = None,
) -> DayPlan:
    """The request plan of the local day containing ``now``.

    Times are spread evenly over the day's awake minutes (the k-th of n requests at the
    (k + 0.5)/n quantile), in the home's time zone; times already past are included, the
    caller skips those it has sent.
    """
    policy = policy or TimetablePolicy()
    day = day_number(now, installed_at, tz)
    if not is_round_day(day, policy):
        return DayPlan(day, False, 0, (), f"day {day} is not a label-request round")
    n = request_count(display_level, policy)
    awake = awake_minutes(now.astimezone(tz).date(), tz, policy)
    if not awake:
        return DayPlan(day, True, 0, (), f"day {day}: quiet hours cover the whole day")
    picks = [awake[int((k + 0.5) * len(awake) / n)] for k in range(n)]
    times = tuple(t.astimezone(tz) for t in picks)
    reason = f"day {day} is a round: {n} requests while showing {display_level}"
    return DayPlan(day, True, n, times, reason)


def request_expiry(use_time: datetime, policy: TimetablePolicy | None = None) -> datetime:
    """When a request about a use expires (``memory_h`` after the use)."""
    policy = policy or TimetablePolicy()
    _aware(use_time, "use_time")
    return use_time + timedelta(hours=policy.memory_h)
