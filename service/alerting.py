"""A home's leak and anomaly check in the live service: the stored uses and the opens still
running, through :mod:`atlas.alerts`, stored once.

Why a check on a timetable rather than on every classified use: water left running sends no
event until it stops, so waiting for events would find a hose only when it is turned off. The
scheduler runs :meth:`AlertCheck.check` over every home every ``alerts.check_minutes`` and,
while an open is running, on that home at the moment it reaches ``max_run_min``
(:attr:`CheckResult.deadlines`).

What a check reads: the stored uses of the last ``refill_window_h`` (and of the last
``history_nights`` nights while a night is under way or just over), each with its stored
category (and fixture once the display shows fixtures) when at least ``MIN_PROBABILITY``
likely, and the home's unpaired events paired as of now (:func:`atlas.pairing.pair_events`),
whose opens still waiting for their close are the uses that may be running now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from atlas.alerts import (
    FLAPPER,
    NIGHT,
    RUNNING,
    AlertSettings,
    ObservedUse,
    flapper_alerts,
    is_repeat,
    night_alerts,
    running_alerts,
)
from atlas.events import Event
from atlas.homespec import parse_home_spec
from atlas.pairing import DEFAULT_SIMULTANEOUS_S, pair_events
from service.settings import AlertsSettings
from service.storage import dashboard
from service.storage.alerts import StoredAlert, insert_alert, raised_since
from service.storage.events import load_unpaired_events
from service.storage.usage import UsageUse, first_use_at, uses_between, water_fingerprint

#: A stored classification below this probability does not name the use's fixture or category.
MIN_PROBABILITY = 0.5
#: Levels at which the display names fixtures, so a toilet's refills are grouped per toilet.
_FIXTURE_LEVELS = ("fixture", "valve")

#: Litres per use by use id, for the uses it is given (:func:`service.api.usage_report.use_litres`).
LitresOf = Callable[[Connection, str, Sequence[UsageUse]], dict[str, float]]


def alert_settings(settings: AlertsSettings, timezone: str) -> AlertSettings:
    """The detectors' settings for one home (its time zone: nights are home-local)."""
    return AlertSettings(
        timezone=timezone,
        max_run_min=settings.max_run_min,
        max_run_min_by_category=dict(settings.max_run_min_by_category),
        refill_min_count=settings.refill_min_count,
        refill_window_h=settings.refill_window_h,
        night_start_h=settings.night_start_h,
        night_end_h=settings.night_end_h,
        night_litres=settings.night_litres,
    )


@dataclass(frozen=True)
class CheckResult:
    """What one check stored, and when the home should be checked next."""

    new: list[StoredAlert]
    #: when the opens still running reach their limit (after the check), earliest first: the
    #: home is checked again then
    deadlines: list[datetime]


class AlertCheck:
    """Runs the watched detectors over one home's recent water (see the module docstring)."""

    def __init__(self, db: Engine, settings: AlertsSettings, litres_of: LitresOf) -> None:
        self.db = db
        self.settings = settings
        self.litres_of = litres_of
        #: per home, what the last full check saw: (fingerprint, deadlines of running opens)
        self._seen: dict[str, tuple[tuple, list[datetime]]] = {}

    def period(self) -> timedelta:
        """Time between checks: ``check_minutes``, but never longer than ``max_run_min``, so a
        check sees every running open before it reaches the setting and is checked then."""
        return timedelta(minutes=min(self.settings.check_minutes, self.settings.max_run_min))

    def check(self, home_id: str, now: datetime) -> CheckResult:
        """Store and return what is new as of ``now``; say when to check next."""
        every = self.period()
        kinds = set(self.settings.kinds)
        if not kinds:
            return CheckResult([], [])
        with self.db.connect() as conn:
            fingerprint = water_fingerprint(conn, home_id, now)
            seen = self._seen.get(home_id)
            if seen is not None and seen[0] == fingerprint and not any(d <= now for d in seen[1]):
                # no event, no use and no deadline since the last check: nothing new to find
                return CheckResult([], [d for d in seen[1] if d > now])
            spec = parse_home_spec(dashboard.home_spec_dict(conn, home_id))
            rules = alert_settings(self.settings, spec.model.timezone)
            since = now - self._lookback(rules, now, every)
            stored = uses_between(conn, home_id, since, now)
            status = dashboard.home_status_row(conn, home_id) or {}
            litres = (
                self.litres_of(conn, home_id, _at_night(stored, rules)) if NIGHT in kinds else {}
            )
            running = _running_opens(load_unpaired_events(conn, home_id), now)
            first = first_use_at(conn, home_id)
        names_fixtures = dashboard.shown_level(status) in _FIXTURE_LEVELS
        observed = [_observed(u, names_fixtures, litres.get(u.use_id)) for u in stored]
        found = []
        if RUNNING in kinds:
            found += running_alerts(observed + running, rules, now)
        if FLAPPER in kinds:
            found += flapper_alerts(observed, rules)
        if NIGHT in kinds:
            found += night_alerts(observed, rules, since=max(since, first or since))
        found.sort(key=lambda a: (a.at, a.kind))
        new = []
        with self.db.begin() as conn:
            window = timedelta(hours=rules.refill_window_h)
            earlier = raised_since(conn, home_id, since - window)
            for alert in found:
                if alert.at > now or is_repeat(alert, earlier, rules):
                    continue
                new.append(insert_alert(conn, home_id, alert, now))
                earlier.append((alert.kind, alert.subject, alert.at))
        deadlines = []
        if RUNNING in kinds:
            for use in running:
                assert use.t_open is not None
                due = use.t_open + rules.max_run(use.category)
                if due > now:
                    deadlines.append(due)
        self._seen[home_id] = (fingerprint, sorted(deadlines))
        return CheckResult(new, sorted(deadlines))

    def _lookback(self, rules: AlertSettings, now: datetime, every: timedelta) -> timedelta:
        """The flapper's window (and the slack a running use's pairing slip needs); the night
        history too while a night is under way or ended less than a check ago."""
        base = timedelta(hours=rules.refill_window_h) + timedelta(minutes=rules.max_run_min)
        local = now.astimezone(ZoneInfo(rules.timezone))
        hours = local.hour + local.minute / 60
        in_night = rules.night_start_h <= hours < rules.night_end_h + every.total_seconds() / 3600
        if NIGHT in self.settings.kinds and in_night:
            return max(base, timedelta(days=rules.history_nights + 1))
        return base


def _at_night(uses: Sequence[UsageUse], rules: AlertSettings) -> list[UsageUse]:
    """The uses a night total needs litres for: those within an hour of a night (the volume
    estimate solves overlapping uses together, so the night's neighbours come along)."""
    zone = ZoneInfo(rules.timezone)
    start, end = rules.night_start_h - 1, rules.night_end_h + 1
    kept = []
    for use in uses:
        local = use.t.astimezone(zone)
        if start <= local.hour + local.minute / 60 < end:
            kept.append(use)
    return kept


def _observed(use: UsageUse, names_fixtures: bool, litres: float | None) -> ObservedUse:
    category = _confident(use, "category")
    fixture = _confident(use, "fixture") if names_fixtures else None
    t_close = use.t_close if use.status != "open_ended" else None
    return ObservedUse(use.use_id, use.t_open, t_close, use.lines, category, fixture, litres)


def _confident(use: UsageUse, level: str) -> str | None:
    found = use.classified.get(level)
    return found.label if found is not None and found.probability >= MIN_PROBABILITY else None


def _running_opens(unpaired: list[Event], now: datetime) -> list[ObservedUse]:
    """Opens still waiting for their close as of ``now``, one use per valve action (its hot and
    cold opens within the pairing's simultaneity), named as their use will be (``u-<first>``)."""
    pending = pair_events(unpaired, now=now).pending if unpaired else []
    groups: list[list[Event]] = []
    for event in pending:
        if groups and (event.t - groups[-1][0].t).total_seconds() <= DEFAULT_SIMULTANEOUS_S:
            groups[-1].append(event)
        else:
            groups.append([event])
    return [
        ObservedUse(
            f"u-{group[0].event_id}",
            group[0].t,
            None,
            tuple(sorted({e.line for e in group})),
        )
        for group in groups
    ]
