"""Water use per group and time bucket (counts, minutes, litres) at the certified granularity."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

GroupKind = Literal["named", "lump", "low_confidence", "unclassified"]


class UsageGroupPublic(BaseModel):
    group: str = Field(
        description="A category, fixture or valve id, a lump (``lump:a+b``), "
        "``low_confidence`` or ``unclassified``.",
        examples=["shower"],
    )
    text: str = Field(description="The group in words.", examples=["Shower"])
    kind: GroupKind = Field(
        description="``named``: one category, fixture or valve; ``lump``: fixtures the model "
        "cannot yet tell apart; ``low_confidence``: classified below ``min_probability``; "
        "``unclassified``: no classification at this level (or, at the rule level, a "
        "category the rules are not confident about)."
    )
    count: int = Field(description="Uses that started in the period.")
    minutes: float = Field(description="Their summed duration (uses with an open and a close).")
    litres: float = Field(description="Their estimated litres (uses with a duration).")
    litres_sigma: float = Field(description="One standard deviation of ``litres``.")
    unsized: int = Field(description="Uses without litres (unpaired: no duration).")


class UsageBucketPublic(BaseModel):
    start: datetime = Field(description="Home-local start (clipped to the requested range).")
    end: datetime = Field(description="Home-local end, exclusive (clipped likewise).")
    count: int
    minutes: float
    litres: float
    groups: list[UsageGroupPublic]


class UsagePublic(BaseModel):
    """Use per group over ``[start, end)``, in home-local day or week buckets.

    ``group`` is the grouping served: the one asked for, or the home's display level when the
    one asked for is finer than what is certified (``reason`` then says why).
    """

    home_id: str
    start: datetime
    end: datetime
    timezone: str = Field(description="The home's time zone (buckets are its days / weeks).")
    bucket: Literal["day", "week"]
    requested_group: Literal["category", "fixture", "valve"]
    group: Literal["rule_categories", "category", "fixture", "valve"]
    display_level: str = Field(description="The home's display level (``rules`` in week 1).")
    reason: str | None = Field(
        description="Why ``group`` differs from ``requested_group`` (null when it does not).",
        examples=["fixture level is not certified yet (display: category)"],
    )
    min_probability: float
    volume_model: str = Field(
        description="The flow model behind the litres, named for the home's last flow "
        "calibration (``atlas calibrate-flow``): ``spec`` (none: the home spec's default "
        "resistances), ``fixture:<valve ids>`` (a known volume drawn at that valve, e.g. a "
        "bucket filled at the kitchen tap) or ``meter`` (a water-meter reading). Every "
        "calibration stored for the home applies, in the order recorded.",
        examples=["spec", "fixture:kitchen-sink/cold", "meter"],
    )
    count: int
    minutes: float
    litres: float
    litres_sigma: float
    totals: list[UsageGroupPublic]
    buckets: list[UsageBucketPublic]
