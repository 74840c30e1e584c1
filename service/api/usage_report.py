"""Water use per group and home-local day or week (counts, minutes, litres), never finer than
the home's certified display level: what ``GET /v1/homes/{id}/usage``, the pages' chart and the
Home Assistant water sensors all show, computed in one place."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from atlas.homespec import HomeSpec, parse_home_spec
from atlas.levels import RULE_CONFIDENT, lump_id, lump_members
from atlas.volume import UseDrop, VolumeEstimate, estimate_volumes
from atlas.volume import total_litres as sum_litres
from service.api.schemas.usage import UsageBucketPublic, UsageGroupPublic, UsagePublic
from service.api.wording import label_texts, lump_texts, text_of
from service.storage import dashboard
from service.storage.flowcalibrations import home_flow_model
from service.storage.usage import UsageUse, uses_between

#: Display levels (stored names) from coarse to fine, and the group each one serves.
_DISPLAY_ORDER = dashboard.DISPLAY_ORDER
_SERVED = {
    "rules": "rule_categories",
    "category": "category",
    "fixture": "fixture",
    "valve": "valve",
}
#: The stored classification level each served group reads.
_LEVEL_OF = {
    "rule_categories": "category",
    "category": "category",
    "fixture": "fixture",
    "valve": "valve",
}
UNCLASSIFIED, LOW_CONFIDENCE = "unclassified", "low_confidence"
_KIND_ORDER = {"named": 0, "lump": 0, LOW_CONFIDENCE: 1, UNCLASSIFIED: 2}
#: Longest range served (a year of day buckets and some).
MAX_DAYS = 400
#: Uses this long before or after the range are read for the overlap solve only (a use's flow
#: is solved jointly with the uses running at the same time, :func:`atlas.volume.estimate_volumes`).
OVERLAP_MARGIN = timedelta(hours=1)


#: The default ``min_probability``: below it a use counts as ``low_confidence``.
MIN_PROBABILITY = 0.5


class UsageRangeError(ValueError):
    """A range the report refuses; ``field`` is the query parameter (``from`` or ``to``)."""

    def __init__(self, field: str, message: str, value: str | None) -> None:
        super().__init__(message)
        self.field, self.message, self.value = field, message, value


def usage_report(
    conn: Connection,
    home_id: str,
    now: datetime,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    bucket: Literal["day", "week"] = "day",
    group: Literal["category", "fixture", "valve"] = "category",
    min_probability: float = MIN_PROBABILITY,
) -> UsagePublic:
    """Counts, minutes and litres per group and bucket over ``[start, end)``.

    ``start``/``end`` without an offset are home-local; ``end`` defaults to ``now`` and
    ``start`` to the start of the 7th home-local day before it (``bucket="week"``: of the 4th
    week). The grouping is never finer than the home's display level (a coarser one comes back
    with a ``reason``); lumps stay lumped; in week 1 only the rule-confident categories are
    named. Raises :class:`UsageRangeError` for an empty or over-long range.
    """
    spec = parse_home_spec(dashboard.home_spec_dict(conn, home_id))
    tz = ZoneInfo(spec.model.timezone)
    t_end = _aware(end, tz) if end is not None else now.astimezone(tz)
    t_start = _aware(start, tz) if start is not None else _default_start(t_end, bucket, tz)
    if t_start >= t_end:
        raise UsageRangeError(
            "from",
            f"from={t_start.isoformat()} should be before to={t_end.isoformat()}",
            start.isoformat() if start else None,
        )
    if t_end - t_start > timedelta(days=MAX_DAYS):
        raise UsageRangeError(
            "to",
            f"the range from {t_start.isoformat()} to {t_end.isoformat()} is longer than "
            f"{MAX_DAYS} days",
            end.isoformat() if end else None,
        )

    status = dashboard.home_status_row(conn, home_id) or {}
    display = dashboard.shown_level(status)
    asked = _DISPLAY_ORDER.index(group)
    shown = min(asked, _DISPLAY_ORDER.index(display))
    served = _SERVED[_DISPLAY_ORDER[shown]]
    reason = None
    if shown < asked:
        reason = f"{group} level is not certified yet (display: {display})"
        if served == "rule_categories":
            reason += "; only washing machine, dishwasher and shower are named in week 1"
    lumps = dashboard.shown_lumps(status)
    lump_of = _lump_of(lumps)

    loaded = uses_between(conn, home_id, t_start - OVERLAP_MARGIN, t_end + OVERLAP_MARGIN)
    model = home_flow_model(conn, home_id, spec)
    estimates = estimate_volumes(_drops(loaded, spec, display, lump_of, min_probability), model)
    kept = [(u, e) for u, e in zip(loaded, estimates, strict=True) if t_start <= u.t < t_end]

    inventory = dashboard.fixture_inventory(conn, home_id)
    texts = label_texts(inventory) | lump_texts(inventory, lumps)
    texts |= {UNCLASSIFIED: "Unclassified", LOW_CONFIDENCE: "Low confidence"}
    labelled = [(u, e, _group_of(u, served, lump_of, min_probability)) for u, e in kept]

    edges = _bucket_edges(t_start, t_end, bucket, tz)
    per_bucket: list[list[tuple[UsageUse, VolumeEstimate, tuple[str, str]]]] = [[] for _ in edges]
    for item in labelled:
        per_bucket[bisect_right(edges, item[0].t) - 1].append(item)
    buckets = []
    for i, items in enumerate(per_bucket):
        groups = _groups(items, texts)
        buckets.append(
            UsageBucketPublic(
                start=edges[i].astimezone(tz),
                end=(edges[i + 1] if i + 1 < len(edges) else t_end).astimezone(tz),
                count=sum(g.count for g in groups),
                minutes=round(sum(g.minutes for g in groups), 3),
                litres=round(sum(g.litres for g in groups), 3),
                groups=groups,
            )
        )
    totals = _groups(labelled, texts)
    everything = sum_litres((e for _, e in kept), {e.use_id: "all" for _, e in kept})
    return UsagePublic(
        home_id=home_id,
        start=t_start,
        end=t_end,
        timezone=spec.model.timezone,
        bucket=bucket,
        requested_group=group,
        group=served,
        display_level=display,
        reason=reason,
        min_probability=min_probability,
        volume_model=model.source,
        count=len(kept),
        minutes=round(sum(g.minutes for g in totals), 3),
        litres=round(sum(g.litres for g in totals), 3),
        litres_sigma=round(everything.get("all", (0.0, 0.0))[1], 3),
        totals=totals,
        buckets=buckets,
    )


def _aware(t: datetime, tz: ZoneInfo) -> datetime:
    """``t`` in the home's zone; a time without an offset is home-local."""
    return t.replace(tzinfo=tz) if t.tzinfo is None else t.astimezone(tz)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _period_start(day: date, bucket: str) -> date:
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def _default_start(end: datetime, bucket: str, tz: ZoneInfo) -> datetime:
    """The start of the 7th home-local day (4th week, ``bucket=week``) up to ``end``."""
    last = end - timedelta(microseconds=1)  # ``end`` is exclusive
    first = _period_start(last.date(), bucket) - timedelta(days=6 if bucket == "day" else 21)
    return _local_midnight(first, tz)


def _bucket_edges(start: datetime, end: datetime, bucket: str, tz: ZoneInfo) -> list[datetime]:
    """Starts of the buckets covering ``[start, end)`` (the first clipped to ``start``), UTC.

    Days and weeks are home-local, so a day across a DST change lasts 23 or 25 hours.
    """
    step = timedelta(days=7 if bucket == "week" else 1)
    day = _period_start(start.date(), bucket) + step
    edges = [start]
    while (edge := _local_midnight(day, tz)) < end:
        edges.append(edge)
        day += step
    return [e.astimezone(ZoneInfo("UTC")) for e in edges]


def _confident(use: UsageUse, level: str, min_probability: float) -> str | None:
    found = use.classified.get(level)
    return found.label if found is not None and found.probability >= min_probability else None


def _group_of(
    use: UsageUse, served: str, lump_of: dict[str, str], min_probability: float
) -> tuple[str, str]:
    """(group, kind) of ``use`` at the served grouping."""
    found = use.classified.get(_LEVEL_OF[served])
    if found is None:
        return UNCLASSIFIED, UNCLASSIFIED
    if served == "rule_categories" and found.label not in RULE_CONFIDENT:
        return UNCLASSIFIED, UNCLASSIFIED
    if found.probability < min_probability:
        return LOW_CONFIDENCE, LOW_CONFIDENCE
    if served == "fixture" and found.label in lump_of:
        return lump_of[found.label], "lump"
    return found.label, "named"


def use_drops(
    conn: Connection,
    home_id: str,
    spec: HomeSpec,
    loaded: Sequence[UsageUse],
    min_probability: float = MIN_PROBABILITY,
) -> list[UseDrop]:
    """The estimator's view of each of ``loaded`` as this report sizes it (:func:`_drops`).

    A flow calibration (:mod:`service.flowcalibrate`) sizes the uses around a bucket fill and
    a meter's period with it, so that what it records matches what the report shows.
    """
    status = dashboard.home_status_row(conn, home_id) or {}
    lump_of = _lump_of(dashboard.shown_lumps(status))
    return _drops(loaded, spec, dashboard.shown_level(status), lump_of, min_probability)


def _lump_of(lumps: Sequence[Sequence[str]]) -> dict[str, str]:
    """Each lumped fixture's lump id."""
    return {f: lump_id(lump) for lump in lumps for f in lump}


def _drops(
    loaded: Sequence[UsageUse],
    spec: HomeSpec,
    display: str,
    lump_of: dict[str, str],
    min_probability: float,
) -> list[UseDrop]:
    """The estimator's input for each use.

    A use's branch resistance comes from what is certified about it: its valve at the valve
    level; the valves of its fixture (or lump) at the fixture level; of its category at the
    category level (week 1: rule-confident categories only); else the home's median branch.
    The stored use has only the pairing's mean drop, not the open transient's own step, so
    slow-closing valves (toilet floats) are sized by the mean drop.
    """
    fixture_valves = {f.id: tuple(v.id for v in f.valves) for f in spec.fixtures}
    known_valves = {v.id for v in spec.valves}
    category_valves: dict[str, tuple[str, ...]] = {}
    for f in spec.fixtures:
        category_valves[str(f.category)] = category_valves.get(str(f.category), ()) + tuple(
            v.id for v in f.valves
        )
    rank = _DISPLAY_ORDER.index(display)
    drops = []
    for use in loaded:
        valve = _confident(use, "valve", min_probability) if rank >= 3 else None
        valve = valve if valve in known_valves else None
        fixture = _confident(use, "fixture", min_probability) if rank >= 2 else None
        category = _confident(use, "category", min_probability)
        if rank == 0 and category not in RULE_CONFIDENT:
            category = None
        if fixture is not None and fixture in fixture_valves:
            fixtures = lump_members(lump_of.get(fixture, "")) or (fixture,)
            candidates = tuple(v for f in fixtures for v in fixture_valves.get(f, ()))
        else:
            candidates = category_valves.get(category, ()) if category is not None else ()
        drops.append(
            UseDrop(
                use.use_id,
                use.lines,
                use.t_open,
                use.t_close,
                dict(use.drop_kpa),
                valve,
                () if valve is not None else candidates,
            )
        )
    return drops


def _groups(
    items: Sequence[tuple[UsageUse, VolumeEstimate, tuple[str, str]]], texts: dict[str, str]
) -> list[UsageGroupPublic]:
    """One row per group of ``items``: named and lumps by label, then low confidence, then
    unclassified."""
    rows: dict[str, dict] = {}
    for use, est, (label, kind) in items:
        row = rows.setdefault(label, {"kind": kind, "count": 0, "seconds": 0.0, "unsized": 0})
        row["count"] += 1
        row["seconds"] += use.duration_s or 0.0
        row["unsized"] += 0 if math.isfinite(est.litres) else 1
    litres = sum_litres((e for _, e, _ in items), {e.use_id: g for _, e, (g, _) in items})
    return [
        UsageGroupPublic(
            group=label,
            text=text_of(texts, label),
            kind=row["kind"],
            count=row["count"],
            minutes=round(row["seconds"] / 60.0, 3),
            litres=round(litres.get(label, (0.0, 0.0))[0], 3),
            litres_sigma=round(litres.get(label, (0.0, 0.0))[1], 3),
            unsized=row["unsized"],
        )
        for label, row in sorted(rows.items(), key=lambda kv: (_KIND_ORDER[kv[1]["kind"]], kv[0]))
    ]


def use_litres(conn: Connection, home_id: str, loaded: Sequence[UsageUse]) -> dict[str, float]:
    """Litres of each of ``loaded`` (NaN when unsized) as the usage endpoint counts them, at
    the home's display level: what the night alert adds up (:mod:`service.alerting`)."""
    if not loaded:
        return {}
    spec = parse_home_spec(dashboard.home_spec_dict(conn, home_id))
    drops = use_drops(conn, home_id, spec, loaded)
    estimates = estimate_volumes(drops, home_flow_model(conn, home_id, spec))
    return {e.use_id: e.litres for e in estimates}
