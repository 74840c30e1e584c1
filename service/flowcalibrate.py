"""``atlas calibrate-flow``: an installer's measurement of litres, stored for the service.

Why: until someone measures, the litres the service shows come from the home spec's pipe data,
which can be off by a factor (docs/usage.md, "The installer's calibration"). The installer
fills a bucket at one tap or reads the water meter over a week; this finds the use (or the uses)
that were measured, applies the measurement to the home's current flow model, stores it
(:mod:`service.storage.flowcalibrations`) and says what changed in litres. The usage endpoint,
the pages and the Home Assistant sensors then read the calibrated model.

The uses around a fill and over a meter's period are sized as the usage endpoint sizes them
(:func:`service.api.usage_report.use_drops`), so the fill reads the bucket's litres and the
period sums to the meter's total there too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from atlas.domain import Fixture, Line, Valve
from atlas.homespec import HomeSpec, parse_home_spec
from atlas.volume import (
    FlowModel,
    UseDrop,
    calibrate_known_volume,
    estimate_volumes,
    meter_scaled,
)
from service.api.usage_report import OVERLAP_MARGIN, use_drops
from service.storage import dashboard
from service.storage.flowcalibrations import (
    FlowCalibration,
    flow_calibrations_of,
    home_flow_model,
    meter_factor,
    record_fixture_calibration,
    record_meter_calibration,
)
from service.storage.homelock import lock_home_in_transaction
from service.storage.usage import UsageUse, uses_between
from service.storage.uses import load_uses

#: Advisory-lock purpose: two calibrations of one home recorded at once would each start from
#: the model without the other, and the stored order would not replay what either reported.
FLOW_CALIBRATION = "flow_calibration"
#: How long before ``--at`` (default: now) the fill may have ended.
DEFAULT_WITHIN = timedelta(minutes=30)


class CalibrationError(ValueError):
    """A calibration refused, with what the installer can do about it."""


@dataclass(frozen=True)
class Calibrated:
    """A stored calibration and what it changed.

    ``before_litres``/``after_litres``: the measured fill, or the sum of the meter's period,
    with the model before and after it. ``others``: the lowest and highest relative change of
    the litres of every other valve (a use running alone), None if the home has no other.
    ``left_out``: uses of a meter's period without litres (unpaired: no duration).
    """

    calibration_id: int
    kind: str
    subject: str
    measured_litres: float
    before_litres: float
    after_litres: float
    others: tuple[float, float] | None
    model: FlowModel
    use_id: str | None = None
    left_out: int = 0


def calibrate_fixture(
    conn: Connection,
    home_id: str,
    fixture: str,
    litres: float,
    *,
    now: datetime,
    valve: str | None = None,
    use_id: str | None = None,
    at: datetime | None = None,
    within: timedelta = DEFAULT_WITHIN,
) -> Calibrated:
    """Record ``litres`` drawn at ``fixture`` (its id or its name) through ``valve``.

    The fill is ``use_id`` or else the newest paired use on the valve's lines that closed
    within ``within`` before ``at`` (default ``now``; a time without an offset is home-local),
    which must not have overlapped another use. The fixture's valve may be left out when it
    has one, or one that draws cold water only (a bucket is filled cold).
    """
    lock_home_in_transaction(conn, home_id, FLOW_CALIBRATION)
    spec = _home(conn, home_id)
    tz = ZoneInfo(spec.model.timezone)
    chosen = _valve(_fixture(spec, fixture), valve)
    if not (math.isfinite(litres) and litres > 0):
        raise CalibrationError(f"--litres {litres:g}: the measured volume should be above 0")
    if use_id is not None:
        fill, beside = _given_use(conn, home_id, use_id, chosen, tz)
    else:
        if within <= timedelta(0):
            minutes = within.total_seconds() / 60
            raise CalibrationError(f"--within {minutes:g}: should be a positive number of minutes")
        fill, beside = _newest_fill(conn, home_id, chosen, _local(at or now, tz), within, tz)
    measured_before = {  # a fill is one measurement: applied twice it would count as two
        u["use_id"]: c.id
        for c in flow_calibrations_of(conn, home_id)
        if c.kind == "fixture"
        for u in c.inputs["uses"]
    }
    if fill.use_id in measured_before:
        raise CalibrationError(
            f"use {fill.use_id} is calibration #{measured_before[fill.use_id]} already; fill "
            "the bucket again for another measurement"
        )
    measured = UseDrop(
        fill.use_id, fill.lines, fill.t_open, fill.t_close, dict(fill.drop_kpa), chosen.id
    )
    context = use_drops(conn, home_id, spec, beside)
    before = home_flow_model(conn, home_id, spec)
    try:
        after = calibrate_known_volume(before, [measured], litres, context=context)
    except ValueError as exc:
        raise CalibrationError(f"use {fill.use_id} cannot be measured: {exc}") from None

    def read(model: FlowModel) -> float:
        return estimate_volumes([measured, *context], model)[0].litres

    estimated = read(before)
    calibration_id = record_fixture_calibration(
        conn,
        home_id,
        valve_id=chosen.id,
        litres=litres,
        estimated_litres=estimated,
        uses=[measured],
        context=context,
        now=now,
    )
    return Calibrated(
        calibration_id=calibration_id,
        kind="fixture",
        subject=_valve_text(spec, chosen.id),
        measured_litres=litres,
        before_litres=estimated,
        after_litres=read(after),
        others=_others(spec, before, after, skip=chosen.id),
        model=after,
        use_id=fill.use_id,
    )


def calibrate_meter_reading(
    conn: Connection,
    home_id: str,
    litres: float,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
) -> Calibrated:
    """Record ``litres`` counted by the water meter over ``[start, end)`` (home-local when
    without an offset): every resistance is scaled so that the period's uses sum to it."""
    lock_home_in_transaction(conn, home_id, FLOW_CALIBRATION)
    spec = _home(conn, home_id)
    tz = ZoneInfo(spec.model.timezone)
    t_from, t_to = _local(start, tz), _local(end, tz)
    if not t_from < t_to:
        raise CalibrationError(f"--from {t_from:%Y-%m-%d %H:%M} should be before --to")
    if not (math.isfinite(litres) and litres > 0):
        raise CalibrationError(f"--meter-litres {litres:g}: the meter's litres should be above 0")
    loaded = uses_between(conn, home_id, t_from - OVERLAP_MARGIN, t_to + OVERLAP_MARGIN)
    drops = use_drops(conn, home_id, spec, loaded)
    inside = [i for i, u in enumerate(loaded) if t_from <= u.t < t_to]
    subject = f"{t_from:%Y-%m-%d %H:%M} to {t_to:%Y-%m-%d %H:%M}"

    def total(model: FlowModel) -> float:
        estimates = estimate_volumes(drops, model)
        return sum(x for x in (estimates[i].litres for i in inside) if math.isfinite(x))

    before = home_flow_model(conn, home_id, spec)
    estimated = total(before)
    left_out = sum(1 for i in inside if loaded[i].duration_s is None)
    if not estimated > 0:
        raise CalibrationError(
            f"no use with litres from {subject} (home time): {len(inside)} stored, "
            f"{left_out} without a duration; read the meter over a period the service saw"
        )
    after = meter_scaled(before, meter_factor(estimated, litres))
    calibration_id = record_meter_calibration(
        conn,
        home_id,
        t_from=t_from,
        t_to=t_to,
        litres=litres,
        estimated_litres=estimated,
        now=now,
    )
    change = litres / estimated - 1.0
    return Calibrated(
        calibration_id=calibration_id,
        kind="meter",
        subject=subject,
        measured_litres=litres,
        before_litres=estimated,
        after_litres=total(after),
        others=(change, change),
        model=after,
        left_out=left_out,
    )


def summary(result: Calibrated) -> str:
    """What changed, in the installer's words."""
    moved = "" if result.others is None else _percent(*result.others)
    if result.kind == "fixture":
        text = (
            f"{result.subject}: this fill read {result.before_litres:.1f} L before, "
            f"{result.after_litres:.1f} L now"
        )
        text += f"; other fixtures moved by {moved}" if moved else ""
    else:
        text = (
            f"{result.subject} (home time): the uses read {result.before_litres:.1f} L before, "
            f"{result.after_litres:.1f} L now (the meter: {result.measured_litres:g} L); "
            f"every fixture moved by {moved}"
        )
        if result.left_out:
            n = result.left_out
            text += f"; {n} {'use' if n == 1 else 'uses'} without a duration left out"
    return (
        f"{text}.\nStored as calibration #{result.calibration_id}; the home's litres now use "
        f"the flow model {result.model.source!r}."
    )


def calibration_history(conn: Connection, home_id: str) -> list[str]:
    """The home's stored calibrations, oldest first (the order they apply in), in words."""
    spec = _home(conn, home_id)
    tz = ZoneInfo(spec.model.timezone)
    stored = flow_calibrations_of(conn, home_id)
    if not stored:
        return [
            f"home {home_id}: no flow calibration stored; its litres use the home spec's "
            "defaults (flow model 'spec')"
        ]
    model = home_flow_model(conn, home_id, spec)
    return [_stored_text(spec, c, tz) for c in stored] + [
        f"the home's litres use the flow model {model.source!r}: the spec's defaults with "
        f"these {len(stored)} applied in this order (times are home time)"
    ]


def _home(conn: Connection, home_id: str) -> HomeSpec:
    found = dashboard.home_spec_dict(conn, home_id)
    if found is None:
        raise CalibrationError(f"no home {home_id!r}: register it first (atlas homes add)")
    return parse_home_spec(found)


def _fixture(spec: HomeSpec, name: str) -> Fixture:
    """The fixture whose id or name is ``name`` (case-insensitive)."""
    wanted = name.strip().casefold()
    found = [f for f in spec.fixtures if wanted in (f.id.casefold(), f.name.casefold())]
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(f.id for f in found)
        raise CalibrationError(f"{name!r} names several fixtures ({ids}): give its id")
    known = ", ".join(f"{f.id} ({f.name})" for f in spec.fixtures)
    raise CalibrationError(f"home {spec.home_id} has no fixture {name!r}; its fixtures: {known}")


def _valve(fixture: Fixture, name: str | None) -> Valve:
    """The fixture's valve ``name`` (its name or id); without one, its only valve or its only
    cold-water valve."""
    known = ", ".join(f"{v.name} ({'+'.join(v.lines)})" for v in fixture.valves)
    if name is None:
        if len(fixture.valves) == 1:
            return fixture.valves[0]
        cold = [v for v in fixture.valves if v.lines == (Line.COLD,)]
        if len(cold) == 1:
            return cold[0]
        raise CalibrationError(f"{fixture.name} has several valves: {known}; say which (--valve)")
    wanted = name.strip().casefold()
    for v in fixture.valves:
        if wanted in (v.name.casefold(), v.id.casefold()):
            return v
    raise CalibrationError(f"{fixture.name} has no valve {name!r}; its valves: {known}")


def _local(t: datetime, tz: ZoneInfo) -> datetime:
    """``t`` in the home's zone; a time without an offset is home-local."""
    return t.replace(tzinfo=tz) if t.tzinfo is None else t.astimezone(tz)


def _span(use: UsageUse) -> tuple[datetime, datetime]:
    """When a use ran; an unpaired one is the instant of its one event."""
    start = use.t_open or use.t_close or use.t
    return start, use.t_close or start


def _overlap(a: UsageUse, b: UsageUse) -> bool:
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 <= b1 and b0 <= a1


def _beside(fill: UsageUse, nearby: Sequence[UsageUse]) -> list[UsageUse]:
    return [u for u in nearby if u.use_id != fill.use_id and _overlap(u, fill)]


def _use_text(use: UsageUse, tz: ZoneInfo) -> str:
    """A use as the installer can recognise it: when, on which lines, how long."""
    ran = "no duration" if use.duration_s is None else f"{use.duration_s:.0f} s"
    when = use.t.astimezone(tz)
    return f"{use.use_id} at {when:%Y-%m-%d %H:%M:%S} ({'+'.join(use.lines)}, {ran})"


def _newest_fill(
    conn: Connection,
    home_id: str,
    valve: Valve,
    at: datetime,
    within: timedelta,
    tz: ZoneInfo,
) -> tuple[UsageUse, list[UsageUse]]:
    """The newest paired use on ``valve``'s lines that closed in ``[at - within, at]``, and
    the uses beside it (none: it must have run alone to be told apart)."""
    start = at - within
    nearby = uses_between(conn, home_id, start - OVERLAP_MARGIN, at + OVERLAP_MARGIN)
    closed = [u for u in nearby if u.t_close is not None and start <= u.t_close <= at]
    lines = {str(line) for line in valve.lines}
    fits = [u for u in closed if u.duration_s is not None and set(u.lines) == lines]
    window = f"{start:%Y-%m-%d %H:%M} and {at:%H:%M} (home time)"
    if not fits:
        seen = "; ".join(_use_text(u, tz) for u in closed) or "none"
        raise CalibrationError(
            f"no use on the {'+'.join(valve.lines)} line closed between {window} to take as "
            f"the fill at {valve.id}; uses that closed then: {seen}; pass --use ID, or --at "
            "(and --within) to look elsewhere"
        )
    fill = max(fits, key=lambda u: (u.t_close, u.use_id))
    beside = _beside(fill, nearby)
    if beside:
        others = "; ".join(_use_text(u, tz) for u in beside)
        candidates = "; ".join(_use_text(u, tz) for u in fits)
        raise CalibrationError(
            f"the newest use on the {'+'.join(valve.lines)} line before {at:%H:%M}, "
            f"{_use_text(fill, tz)}, ran beside {others}, so which water was the fill is "
            f"ambiguous; candidates closed between {window}: {candidates}; pass --use ID"
        )
    return fill, []


def _given_use(
    conn: Connection, home_id: str, use_id: str, valve: Valve, tz: ZoneInfo
) -> tuple[UsageUse, list[UsageUse]]:
    """The installer's ``use_id`` (paired, on ``valve``'s lines) and the uses beside it."""
    found = load_uses(conn, home_id, only=[use_id])
    if not found:
        raise CalibrationError(f"home {home_id} has no use {use_id!r}")
    t = found[0].t
    nearby = uses_between(
        conn, home_id, t - OVERLAP_MARGIN, (found[0].t_close or t) + OVERLAP_MARGIN
    )
    fill = next(u for u in nearby if u.use_id == use_id)
    if fill.duration_s is None:
        raise CalibrationError(
            f"use {_use_text(fill, tz)} was not paired (an open without its close, or the "
            "reverse): its litres are unknown; pass another --use"
        )
    if set(fill.lines) != {str(line) for line in valve.lines}:
        raise CalibrationError(
            f"use {_use_text(fill, tz)} did not run on the line(s) of {valve.id} "
            f"({'+'.join(valve.lines)})"
        )
    return fill, _beside(fill, nearby)


def _k_eff(model: FlowModel, valve_id: str, line: str) -> float:
    """The resistance a use of ``valve_id`` running alone sees on ``line``."""
    shared = model.main_k + (model.heater_k if line == str(Line.HOT) else 0.0)
    return shared + model.branch(valve_id, line)


def _others(
    spec: HomeSpec, before: FlowModel, after: FlowModel, skip: str
) -> tuple[float, float] | None:
    """Lowest and highest relative change of the litres of the home's other valves: a use
    running alone draws ``sqrt(drop / k_eff)``, so its litres change by
    ``sqrt(k_before / k_after)`` whatever its drop."""
    changes = [
        math.sqrt(_k_eff(before, v.id, str(line)) / _k_eff(after, v.id, str(line))) - 1.0
        for v in spec.valves
        if v.id != skip
        for line in v.lines
    ]
    return (min(changes), max(changes)) if changes else None


def _percent(low: float, high: float) -> str:
    if round(low * 100) == round(high * 100):
        return f"{low:+.0%}"
    return f"{low:+.0%} to {high:+.0%}"


def _valve_text(spec: HomeSpec, valve_id: str | None) -> str:
    """``kitchen sink/cold``: the fixture as the home spec names it, and the valve."""
    try:
        valve = spec.valve(str(valve_id))
    except KeyError:  # a valve of an earlier spec
        return str(valve_id)
    return f"{spec.fixture(valve.fixture_id).name}/{valve.name}"


def _stored_text(spec: HomeSpec, c: FlowCalibration, tz: ZoneInfo) -> str:
    when = f"#{c.id} {c.created_at.astimezone(tz):%Y-%m-%d %H:%M}"
    if c.kind == "fixture":
        uses = ", ".join(u["use_id"] for u in c.inputs["uses"])
        return (
            f"{when} fill at {_valve_text(spec, c.valve_id)}: {c.litres:g} L measured, "
            f"read {c.estimated_litres:.1f} L before (use {uses}, "
            f"{c.t_from.astimezone(tz):%Y-%m-%d %H:%M:%S})"
        )
    return (
        f"{when} water meter: {c.litres:g} L from {c.t_from.astimezone(tz):%Y-%m-%d %H:%M} to "
        f"{c.t_to.astimezone(tz):%Y-%m-%d %H:%M}, read {c.estimated_litres:.1f} L before"
    )
