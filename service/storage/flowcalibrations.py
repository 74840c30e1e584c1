"""A home's flow calibrations in ``flow_calibrations``, and the flow model they make.

Why the measurement is stored rather than the model it gave: the model is the spec's defaults
(:func:`atlas.volume.default_flow_model`) with every calibration applied in the order recorded,
so it is rebuilt the same on every worker and after every restart, and an installer who
corrects a pipe run in the spec gets the same measurements applied to the corrected defaults.
A bucket fill keeps its use as the estimator saw it (and the uses running beside it); a meter
reading keeps the factor it scaled the model by, since the uses of its period are reclassified
later and would not sum to the same estimate again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from atlas.homespec import HomeSpec
from atlas.volume import (
    FlowModel,
    UseDrop,
    calibrate_known_volume,
    default_flow_model,
    meter_scaled,
)
from service.storage.answers import utc
from service.storage.schema import flow_calibrations


@dataclass(frozen=True)
class FlowCalibration:
    """One stored calibration, as recorded (``inputs``: what it is replayed from)."""

    id: int
    kind: str
    created_at: datetime
    t_from: datetime
    t_to: datetime
    valve_id: str | None
    litres: float
    estimated_litres: float
    inputs: dict[str, Any]


def record_fixture_calibration(
    conn: Connection,
    home_id: str,
    *,
    valve_id: str,
    litres: float,
    estimated_litres: float,
    uses: Sequence[UseDrop],
    context: Sequence[UseDrop],
    now: datetime,
) -> int:
    """Store a known volume drawn at ``valve_id`` over ``uses`` (with ``context``, the uses
    running beside them); returns the row's id. ``estimated_litres``: what the model said of
    ``uses`` before it."""
    t_open = [u.t_open for u in uses if u.t_open is not None]
    t_close = [u.t_close for u in uses if u.t_close is not None]
    if not t_open or not t_close:
        raise ValueError("a fixture calibration needs its use(s) with an open and a close.")
    inputs = {"uses": [u.to_dict() for u in uses], "context": [u.to_dict() for u in context]}
    return _insert(
        conn,
        home_id,
        kind="fixture",
        t_from=min(t_open),
        t_to=max(t_close),
        valve_id=valve_id,
        litres=litres,
        estimated_litres=estimated_litres,
        inputs=inputs,
        now=now,
    )


def record_meter_calibration(
    conn: Connection,
    home_id: str,
    *,
    t_from: datetime,
    t_to: datetime,
    litres: float,
    estimated_litres: float,
    now: datetime,
) -> int:
    """Store a water-meter reading: ``litres`` passed the meter over ``[t_from, t_to)`` while
    the model said ``estimated_litres``; returns the row's id."""
    inputs = {"factor": meter_factor(estimated_litres, litres)}
    return _insert(
        conn,
        home_id,
        kind="meter",
        t_from=t_from,
        t_to=t_to,
        valve_id=None,
        litres=litres,
        estimated_litres=estimated_litres,
        inputs=inputs,
        now=now,
    )


def _insert(conn: Connection, home_id: str, *, now: datetime, **row: Any) -> int:
    result = conn.execute(insert(flow_calibrations).values(home_id=home_id, created_at=now, **row))
    return int(result.inserted_primary_key[0])


def flow_calibrations_of(conn: Connection, home_id: str) -> list[FlowCalibration]:
    """The home's calibrations in the order they apply (oldest first)."""
    rows = conn.execute(
        select(flow_calibrations)
        .where(flow_calibrations.c.home_id == home_id)
        .order_by(flow_calibrations.c.id)
    )
    return [
        FlowCalibration(
            id=r.id,
            kind=r.kind,
            created_at=utc(r.created_at),
            t_from=utc(r.t_from),
            t_to=utc(r.t_to),
            valve_id=r.valve_id,
            litres=float(r.litres),
            estimated_litres=float(r.estimated_litres),
            inputs=dict(r.inputs),
        )
        for r in rows
    ]


def home_flow_model(conn: Connection, home_id: str, spec: HomeSpec) -> FlowModel:
    """The model the home's litres are estimated with: the spec's defaults with every stored
    calibration applied in order (``source`` names the last one, ``spec`` without any)."""
    model = default_flow_model(spec)
    for calibration in flow_calibrations_of(conn, home_id):
        model = apply_calibration(model, calibration)
    return model


def apply_calibration(model: FlowModel, calibration: FlowCalibration) -> FlowModel:
    """``model`` after ``calibration`` (deterministic: the same inputs give the same model)."""
    if calibration.kind == "meter":
        return meter_scaled(model, float(calibration.inputs["factor"]))
    return calibrate_known_volume(
        model,
        [UseDrop.from_dict(u) for u in calibration.inputs["uses"]],
        calibration.litres,
        context=[UseDrop.from_dict(u) for u in calibration.inputs["context"]],
    )


def meter_factor(estimated_litres: float, metered_litres: float) -> float:
    """The factor a meter reading scales every resistance by: flow goes as ``k ** -0.5``, so
    the estimates then sum to the meter's total."""
    if not metered_litres > 0 or not estimated_litres > 0:
        raise ValueError(
            f"a meter reading needs litres on both sides (metered {metered_litres}, "
            f"estimated {estimated_litres})."
        )
    return (estimated_litres / metered_litres) ** 2


def latest_calibration_id(conn: Connection, home_id: str) -> int | None:
    """The newest calibration's id (None: none): a running total sized with an older model
    must be counted again once it changes (:mod:`service.ha_discovery`)."""
    return conn.execute(
        select(func.max(flow_calibrations.c.id)).where(flow_calibrations.c.home_id == home_id)
    ).scalar()
