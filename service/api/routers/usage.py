"""``GET /v1/homes/{id}/usage``: water use per group and home-local day or week (the
computation is :mod:`service.api.usage_report`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from service.api.deps import ConnDep, NowDep, ReadableHome
from service.api.errors import HOME_READ, unprocessable
from service.api.schemas.usage import UsagePublic
from service.api.usage_report import MIN_PROBABILITY, UsageRangeError, usage_report

router = APIRouter(prefix="/v1/homes/{home_id}/usage", tags=["usage"])


def _iso_text(value: object) -> object:
    """Only ISO 8601 text: pydantic would also read a number as seconds since 1970."""
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        return value
    raise ValueError("should be an ISO 8601 date or date-time, e.g. 2026-04-06T00:00:00-05:00")


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]


@router.get("", response_model=UsagePublic, responses=HOME_READ)
def usage(
    home_id: ReadableHome,
    conn: ConnDep,
    now: NowDep,
    start: Annotated[
        IsoDateTime | None,
        Query(
            alias="from",
            description="Start (inclusive). Without an offset it is home-local. Default: the "
            "start of the home-local day 6 days before ``to`` (``bucket=week``: of the week 3 "
            "weeks before).",
        ),
    ] = None,
    end: Annotated[
        IsoDateTime | None,
        Query(
            alias="to",
            description="End (exclusive). Without an offset it is home-local. Default: now.",
        ),
    ] = None,
    bucket: Literal["day", "week"] = Query(
        default="day", description="Home-local days, or weeks starting on Monday."
    ),
    group: Literal["category", "fixture", "valve"] = Query(
        default="category",
        description="Grouping asked for; served at most as fine as the home's display level.",
    ),
    min_probability: float = Query(
        default=MIN_PROBABILITY,
        ge=0.0,
        le=1.0,
        description="A use classified below this probability counts as ``low_confidence``.",
    ),
) -> UsagePublic:
    """Counts, minutes and litres per group and bucket over ``[from, to)``.

    The grouping is never finer than the home's display level: asking for it returns the
    certified grouping and a ``reason``. At the fixture level, fixtures the model cannot yet
    tell apart are one lump (``lump:a+b``). In week 1 (display ``rules``) only the categories
    the rules are confident about (washing machine, dishwasher, shower) are named; the rest is
    ``unclassified``. Uses classified below ``min_probability`` are ``low_confidence``. Litres
    come from the home spec's default resistances (no calibration is stored yet). A use
    counts in the bucket in which it started. The buckets sum to the totals.
    """
    try:
        return usage_report(
            conn,
            home_id,
            now,
            start=start,
            end=end,
            bucket=bucket,
            group=group,
            min_probability=min_probability,
        )
    except UsageRangeError as exc:
        raise unprocessable(("query", exc.field), exc.message, exc.value) from None
