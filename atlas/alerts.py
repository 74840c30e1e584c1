"""Leak and anomaly alerts over a home's classified uses (pure).

WHY: the water nobody meant to use is the water worth knowing about soonest. Three patterns
cover the common household losses, each readable straight off the uses Atlas already has (when
the water ran, on which fixture or category, and with :mod:`atlas.volume`, how much):

``running``
    Water has run longer than a setting (a hose forgotten in a flower bed, a tap left on).
    A paired use that lasted that long, or an open still without its close (pending, or
    open-ended after the pairing's timeout), alerts once the setting has passed since it
    opened. Pairing also leaves an open unclosed, or pairs it with a much later close, when it
    mis-read a close among overlapping uses; the slip then shows as a second irregularity
    (an orphan close, a close read as an open, another unusually long use) within minutes, while
    the close of water really left running comes much later. So a long or unclosed use with
    another irregularity on its lines near its open or close is not alerted, nor one whose
    fixture (category, when the fixture is not known) opened again soon after: a valve cannot
    open twice without closing in between.
``flapper``
    A toilet's flapper that no longer seals lets the tank drain into the bowl; the float drops
    and the fill valve tops the tank up with a short refill, again and again. The signature is
    short toilet uses (a few seconds, not a flush's ~40 s) that each come the same time after
    that toilet's previous fill (the tank drains at a steady rate; a flush restarts the cycle),
    day and night.
``night``
    Water at night in a home that is usually quiet then: a night whose uses exceed a few
    flushes' worth and twice the home's largest recent night, when most recent nights were
    quiet.

Each detector is a pure function of a time-ordered sequence of :class:`ObservedUse` and the
:class:`AlertSettings`, returning :class:`Alert` (kind, home-local time, evidence). No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from atlas.domain import Category
from atlas.uses import UseStatus, WaterUse

RUNNING = "running"
FLAPPER = "flapper"
NIGHT = "night"
KINDS: tuple[str, ...] = (RUNNING, FLAPPER, NIGHT)

TOILET = str(Category.TOILET)


@dataclass(frozen=True)
class ObservedUse:
    """One use as the alerts see it.

    ``category`` / ``fixture`` are the classifier's (or a label's); ``litres`` the volume
    estimate (None or NaN when unknown). A pending open (still waiting for its close) has
    ``t_close`` None, like an open-ended use; an orphan close has ``t_open`` None.
    """

    use_id: str
    t_open: datetime | None
    t_close: datetime | None
    lines: tuple[str, ...] = ()
    category: str | None = None
    fixture: str | None = None
    litres: float | None = None

    @property
    def t(self) -> datetime:
        t = self.t_open or self.t_close
        assert t is not None, "a use has an open or a close"
        return t

    @property
    def duration_s(self) -> float | None:
        if self.t_open is None or self.t_close is None:
            return None
        return (self.t_close - self.t_open).total_seconds()

    @classmethod
    def from_use(
        cls,
        use: WaterUse,
        category: str | None = None,
        fixture: str | None = None,
        litres: float | None = None,
    ) -> ObservedUse:
        t_close = use.t_close if use.status != UseStatus.OPEN_ENDED else None
        return cls(use.use_id, use.t_open, t_close, tuple(use.lines), category, fixture, litres)


@dataclass(frozen=True)
class AlertSettings:
    """What counts as an anomaly; every threshold is a setting a homeowner may change.

    Attributes
    ----------
    timezone : str
        The home's IANA zone: nights and alert times are home-local.
    max_run_min : float
        ``running``: minutes of continuous flow that alert (longer than a shower, a bath fill
        or a usual watering).
    max_run_min_by_category : dict of str to float
        Per-category overrides (e.g. a longer one for a garden hose that waters for an hour).
    unmatched_slack_min : float
        ``running``: a long or unclosed use with another pairing irregularity on its lines
        (an unmatched open or close, or another use lasting this long) within this many
        minutes of its open or close is a pairing slip, not running water. Keep it below
        ``max_run_min`` so that a live home knows by the time it would alert.
    refill_max_s : float
        ``flapper``: a toilet use at most this long is a refill, not a flush's fill (~30-60 s).
    refill_min_count : int
        ``flapper``: this many consecutive regular refills of one toilet alert.
    refill_window_h : float
        ``flapper``: ... within this many hours; also the quiet time after an alert.
    refill_tolerance : float
        ``flapper``: refills are regular when their delays after the toilet's previous fill are
        within this fraction of the median delay.
    refill_min_delay_min : float
        ``flapper``: a refill sooner than this after the previous fill is not a leak's rhythm
        (a flush's fill split in two by overlapping water).
    unplaced_refills : bool
        ``flapper``: also watch cold-only uses without a category (the rules leave refills
        undecided) as one more toilet ...
    unplaced_min_count : int
        ... which needs this many consecutive regular refills: short undecided cold uses
        also come from hands washed at a sink.
    night_start_h, night_end_h : float
        The night, home-local hours (start < end, both within one calendar day): after the
        late showers, before the early risers.
    night_litres : float
        A night with at most this many litres is quiet (a few flushes).
    night_factor : float
        A night alerts only above this many times the largest recent night, too.
    unknown_use_litres : float
        What a use without a volume counts (a flush).
    quiet_share : float
        The home is usually quiet when at least this share of its recent nights were quiet.
    history_nights : int
        How many previous nights "recent" means.
    min_history_nights : int
        No night alert before the home has been watched for this many nights.
    """

    timezone: str = "UTC"
    max_run_min: float = 30.0
    max_run_min_by_category: dict[str, float] = field(default_factory=dict)
    unmatched_slack_min: float = 20.0
    refill_max_s: float = 15.0
    refill_min_count: int = 4
    refill_window_h: float = 24.0
    refill_tolerance: float = 0.25
    refill_min_delay_min: float = 3.0
    unplaced_refills: bool = True
    unplaced_min_count: int = 6
    night_start_h: float = 1.0
    night_end_h: float = 5.0
    night_litres: float = 20.0
    night_factor: float = 2.0
    unknown_use_litres: float = 6.0
    quiet_share: float = 0.8
    history_nights: int = 14
    min_history_nights: int = 7

    def __post_init__(self) -> None:
        if not 0 <= self.night_start_h < self.night_end_h <= 24:
            raise ValueError(
                f"night_start_h={self.night_start_h}, night_end_h={self.night_end_h}: "
                "need 0 <= start < end <= 24."
            )
        if self.refill_min_count < 2:
            raise ValueError(f"refill_min_count={self.refill_min_count} should be >= 2.")
        for name in ("max_run_min", "refill_max_s", "refill_window_h", "refill_tolerance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} should be > 0.")
        if not 0 < self.quiet_share <= 1:
            raise ValueError(f"quiet_share={self.quiet_share} should be in (0, 1].")

    def max_run(self, category: str | None) -> timedelta:
        minutes = self.max_run_min_by_category.get(category or "", self.max_run_min)
        return timedelta(minutes=minutes)


@dataclass(frozen=True)
class Alert:
    """One anomaly: its kind, when it could first be raised (home-local), the uses behind it
    and the evidence a person can check (numbers with their units in the key)."""

    kind: str
    at: datetime
    use_ids: tuple[str, ...]
    evidence: dict[str, float | int | str]
    message: str

    @property
    def subject(self) -> str:
        """What the alert is about, the unit a repeat is judged by: the running use, the toilet
        (its fixture, the toilet category, or the unplaced cold water), the night's date."""
        if self.kind == FLAPPER:
            return str(self.evidence["toilet"])
        if self.kind == NIGHT:
            return str(self.evidence["night"])
        return self.use_ids[0]


def is_repeat(
    alert: Alert, earlier: Iterable[tuple[str, str, datetime]], settings: AlertSettings
) -> bool:
    """Whether ``alert`` repeats one already raised (``earlier``: kind, subject, time).

    A live service re-runs the detectors over a sliding window, so the same anomaly is found
    again and again: a running use or a night is one alert for good; a leaking flapper keeps
    refilling, and alerts again only after ``refill_window_h`` of the earlier alert, as the
    detector itself would over a complete record.
    """
    window = timedelta(hours=settings.refill_window_h)
    for kind, subject, at in earlier:
        if kind != alert.kind or subject != alert.subject:
            continue
        if kind != FLAPPER or abs(alert.at - at) < window:
            return True
    return False


def _local(t: datetime, settings: AlertSettings) -> datetime:
    return t.astimezone(ZoneInfo(settings.timezone))


def _sorted(uses: Iterable[ObservedUse]) -> list[ObservedUse]:
    return sorted(uses, key=lambda u: (u.t, u.use_id))


def _irregular_events(
    uses: Sequence[ObservedUse], settings: AlertSettings, now: datetime | None
) -> list[tuple[datetime, set[str], str]]:
    """(time, lines, use id) of the events a pairing slip leaves: an open without its close, a
    close without its open, and both ends of a use lasting ``unmatched_slack_min`` or more
    (longer than showers and baths; a slip pairs an open with a close from much later). Live
    (``now`` given), an open still waiting for its close counts once it has waited that long.
    """
    slack = timedelta(minutes=settings.unmatched_slack_min)
    out = []
    for u in uses:
        if u.t_open is None or (u.t_close is None and (now is None or now - u.t_open >= slack)):
            out.append((u.t, set(u.lines), u.use_id))
        elif u.t_close is not None and u.t_close - u.t_open >= slack:
            out += [(u.t_open, set(u.lines), u.use_id), (u.t_close, set(u.lines), u.use_id)]
    return out


def _same_valve(a: ObservedUse, b: ObservedUse) -> bool:
    """Whether two uses are of the same fixture (the same category when no fixture is known)."""
    if a.fixture is not None or b.fixture is not None:
        return a.fixture == b.fixture
    return a.category is not None and a.category == b.category


def _reopened(use: ObservedUse, uses: Sequence[ObservedUse], slack: timedelta) -> bool:
    """Another use of the same fixture on a shared line opened within ``slack`` after ``use``
    opened: the fixture must have closed in between, so ``use`` is not still running."""
    assert use.t_open is not None
    return any(
        other.use_id != use.use_id
        and other.t_open is not None
        and use.t_open < other.t_open <= use.t_open + slack
        and set(other.lines) & set(use.lines)
        and _same_valve(use, other)
        for other in uses
    )


def running_alerts(
    uses: Sequence[ObservedUse], settings: AlertSettings, now: datetime | None = None
) -> list[Alert]:
    """``running`` alerts (see the module docstring).

    ``now`` is the present for a live home: an open without a close alerts only once it has
    been open ``max_run`` by then. Without it (a complete offline record) an open-ended use
    alerts when the pairing's timeout outlasted the setting, as an open-ended use ran at least
    that long.
    """
    slack = timedelta(minutes=settings.unmatched_slack_min)
    irregular = _irregular_events(uses, settings, now)
    alerts = []
    for use in _sorted(uses):
        if use.t_open is None:
            continue
        limit = settings.max_run(use.category)
        at = use.t_open + limit
        if use.t_close is not None:
            if use.t_close - use.t_open < limit:
                continue
            ran = f"ran {(use.t_close - use.t_open).total_seconds() / 60:.0f} min"
        else:
            if now is not None and now < at:
                continue
            ran = "no close yet"
        own = [t for t in (use.t_open, use.t_close) if t is not None]
        if any(
            other != use.use_id
            and lines & set(use.lines)
            and any(abs(t - mine) <= slack for mine in own)
            and (now is None or t <= now)
            for t, lines, other in irregular
        ):
            continue  # a pairing slip (see the module docstring), not running water
        if _reopened(use, uses, slack):
            continue  # a valve cannot open again before it closed: its close was mis-read
        what = use.fixture or use.category or "water"
        evidence: dict[str, float | int | str] = {
            "opened": _local(use.t_open, settings).isoformat(timespec="seconds"),
            "limit_min": limit.total_seconds() / 60,
            "lines": ",".join(use.lines),
        }
        if use.t_close is not None:
            evidence["duration_min"] = round((use.t_close - use.t_open).total_seconds() / 60, 1)
        if use.litres is not None and math.isfinite(use.litres):
            evidence["litres"] = round(use.litres, 1)
        alerts.append(
            Alert(
                RUNNING,
                _local(at, settings),
                (use.use_id,),
                evidence,
                f"{what} running for more than {limit.total_seconds() / 60:.0f} min ({ran})",
            )
        )
    return alerts


UNPLACED_COLD = "unplaced cold water"


def _flapper_groups(uses: Sequence[ObservedUse], settings: AlertSettings) -> dict[str, list]:
    """Toilet uses per toilet (its fixture when known, else the category); with
    ``unplaced_refills``, cold-only uses the classifier left undecided form one more group
    (week one's rules abstain on refills: they are not a flush)."""
    groups: dict[str, list[ObservedUse]] = {}
    for use in _sorted(uses):
        if use.category == TOILET:
            groups.setdefault(use.fixture or TOILET, []).append(use)
        elif settings.unplaced_refills and use.category is None and use.lines == ("cold",):
            groups.setdefault(UNPLACED_COLD, []).append(use)
    return groups


def flapper_alerts(uses: Sequence[ObservedUse], settings: AlertSettings) -> list[Alert]:
    """``flapper`` alerts: per toilet, the first moment its last ``refill_min_count`` refills
    (short uses, within ``refill_window_h``) each came the same delay, within
    ``refill_tolerance``, after the toilet's previous fill; then quiet for ``refill_window_h``.
    """
    window = timedelta(hours=settings.refill_window_h)
    min_delay = settings.refill_min_delay_min * 60.0
    alerts = []
    for key, group in _flapper_groups(uses, settings).items():
        n = settings.unplaced_min_count if key == UNPLACED_COLD else settings.refill_min_count
        candidates: list[tuple[ObservedUse, float]] = []  # (refill, delay after previous fill)
        quiet_until: datetime | None = None
        last_end: datetime | None = None
        for use in group:
            duration = use.duration_s
            end = use.t_close or use.t_open
            previous_end, last_end = last_end, max(last_end, end) if last_end else end
            if duration is None or duration > settings.refill_max_s or previous_end is None:
                continue
            assert use.t_open is not None and use.t_close is not None
            delay = (use.t_open - previous_end).total_seconds()
            if delay < min_delay:
                continue
            candidates.append((use, delay))
            recent = candidates[-n:]
            if len(recent) < n or use.t_close - recent[0][0].t_open > window:
                continue
            if quiet_until is not None and use.t_close < quiet_until:
                continue
            median = float(np.median([d for _, d in recent]))
            if any(abs(d - median) > settings.refill_tolerance * median for _, d in recent):
                continue
            litres = [u.litres for u, _ in recent if u.litres is not None]
            evidence: dict[str, float | int | str] = {
                "toilet": key,
                "refills": n,
                "median_interval_min": round(median / 60.0, 1),
                "median_refill_s": round(float(np.median([u.duration_s for u, _ in recent])), 1),
                "first_refill": _local(recent[0][0].t, settings).isoformat(timespec="seconds"),
            }
            if litres and all(math.isfinite(x) for x in litres):
                evidence["median_refill_litres"] = round(float(np.median(litres)), 2)
            alerts.append(
                Alert(
                    FLAPPER,
                    _local(use.t_close, settings),
                    tuple(u.use_id for u, _ in recent),
                    evidence,
                    f"{key}: {n} short refills without a flush, every ~{median / 60:.0f} min: "
                    "a toilet flapper is probably leaking",
                )
            )
            quiet_until = use.t_close + window
    return sorted(alerts, key=lambda a: a.at)


def _night_of(t: datetime, settings: AlertSettings) -> date | None:
    """The calendar date of the night ``t`` (home-local) falls in, or None outside nights."""
    local = _local(t, settings)
    hours = local.hour + local.minute / 60 + local.second / 3600
    if settings.night_start_h <= hours < settings.night_end_h:
        return local.date()
    return None


def night_alerts(
    uses: Sequence[ObservedUse], settings: AlertSettings, since: datetime | None = None
) -> list[Alert]:
    """``night`` alerts: the first use that takes a night's litres above both ``night_litres``
    and ``night_factor`` times the largest of the home's recent nights, when at least
    ``quiet_share`` of those (``min_history_nights`` or more watched) were quiet. At most one
    per night. A use without a volume counts ``unknown_use_litres``.

    ``since`` is when watching began (the installation); nights before it, or already under way
    then, are not history. Defaults to the first use's time.
    """
    ordered = _sorted(uses)
    if not ordered:
        return []
    tz = ZoneInfo(settings.timezone)
    begun = _local(since or ordered[0].t, settings)
    night_start = timedelta(hours=settings.night_start_h)
    start_of_first = datetime.combine(begun.date(), time(0), tz) + night_start
    watched_from = begun.date() if begun <= start_of_first else begun.date() + timedelta(days=1)
    totals: dict[date, list[float]] = {}  # night -> [litres, uses]
    alerted: set[date] = set()
    alerts = []
    for use in ordered:
        night = _night_of(use.t, settings)
        if night is None:
            continue
        acc = totals.setdefault(night, [0.0, 0.0])
        litres = use.litres
        acc[0] += (
            litres if litres is not None and math.isfinite(litres) else settings.unknown_use_litres
        )
        acc[1] += 1
        if acc[0] <= settings.night_litres or night in alerted or night < watched_from:
            continue
        history = [
            totals.get(night - timedelta(days=k), [0.0, 0.0])[0]
            for k in range(1, settings.history_nights + 1)
            if night - timedelta(days=k) >= watched_from
        ]
        if len(history) < settings.min_history_nights:
            continue
        quiet = sum(litres <= settings.night_litres for litres in history)
        bar = max(settings.night_litres, settings.night_factor * max(history))
        if quiet < settings.quiet_share * len(history) or acc[0] <= bar:
            continue
        alerted.add(night)
        at = use.t_close or use.t
        alerts.append(
            Alert(
                NIGHT,
                at.astimezone(tz),
                (use.use_id,),
                {
                    "night": night.isoformat(),
                    "litres": round(acc[0], 1),
                    "uses": int(acc[1]),
                    "largest_recent_night_litres": round(max(history), 1),
                    "quiet_nights": quiet,
                    "of_nights": len(history),
                },
                f"water at night: {acc[0]:.0f} L in {int(acc[1])} uses since "
                f"{settings.night_start_h:02.0f}:00, where {quiet} of the last {len(history)} "
                f"nights were quiet (at most {max(history):.0f} L)",
            )
        )
    return alerts


def all_alerts(
    uses: Sequence[ObservedUse],
    settings: AlertSettings,
    now: datetime | None = None,
    since: datetime | None = None,
) -> list[Alert]:
    """Every kind's alerts, by time (``now`` and ``since`` as for the detectors)."""
    found = running_alerts(uses, settings, now) + flapper_alerts(uses, settings)
    found += night_alerts(uses, settings, since)
    return sorted(found, key=lambda a: (a.at, a.kind))


def observed_uses(
    uses: Sequence[WaterUse],
    categories: Mapping[str, str | None],
    fixtures: Mapping[str, str | None] | None = None,
    litres: Mapping[str, float] | None = None,
) -> list[ObservedUse]:
    """:class:`ObservedUse` for each use, with the given per-use-id predictions."""
    return [
        ObservedUse.from_use(
            u,
            categories.get(u.use_id),
            (fixtures or {}).get(u.use_id),
            (litres or {}).get(u.use_id),
        )
        for u in uses
    ]
