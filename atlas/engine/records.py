"""What the calibration engine hands out and remembers, as frozen records with dict codecs.

WHY dict codecs beside each record: the live service persists the engine between scheduler jobs
(``CalibrationEngine.snapshot``) in its database as JSON, and the benchmark compares snapshots in
tests. Every record therefore converts to plain JSON types (ISO datetimes, lists) and back,
exactly, without pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from atlas.estimate import ScoredLabel
from atlas.transient import TransientFeatures
from atlas.uses import UseStatus, WaterUse

#: Where a label came from. Only "active" labels (drawn by :func:`atlas.sampling.draw_batch`,
#: audit items included) are a probability sample and enter the accuracy estimates.
SOURCES: tuple[str, ...] = ("guided", "active")

#: Final states of a label request.
REQUEST_STATES: tuple[str, ...] = ("open", "answered", "not_sure", "expired")


@dataclass(frozen=True)
class UseClassification:
    """One use classified at every level, and what the homeowner is shown.

    Attributes
    ----------
    use_id : str
    model_version : int
        Version of the classifier that predicted (0: no classifier yet, rules only).
    predicted : dict level -> label
        Argmax of the summed probabilities at each level (empty without a classifier).
    confidence : dict level -> float
        Probability of that argmax.
    rule_category : str or None
        The rule classifier's category decision (None: it abstained).
    display_level : str
        The display level in force (:data:`atlas.levels.DISPLAY_LEVELS`).
    display_label : str or None
        The label shown at that level; None means "water use" (nothing certified to show).
    """

    use_id: str
    model_version: int
    predicted: dict[str, str]
    confidence: dict[str, float]
    rule_category: str | None
    display_level: str
    display_label: str | None


@dataclass(frozen=True)
class LabelRequest:
    """A question to the homeowner about one use.

    ``predicted`` is the model's prediction when the request was drawn (for the record; the
    label is scored against the prediction current when the answer arrives, which is also
    pre-answer). ``inclusion_prob`` and ``is_audit`` come from :func:`atlas.sampling.draw_batch`.
    """

    request_id: str
    use_id: str
    day: int
    created_at: datetime
    expires_at: datetime
    choices: tuple[str, ...]
    inclusion_prob: float
    is_audit: bool
    strategy: str
    model_version: int
    predicted: dict[str, str]
    state: str = "open"
    answer: str | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class LabelRecord:
    """A label the model learns from, with the scored label when it is a probability sample.

    ``train_valve`` is the valve the classifier is trained with: the answer itself for a valve
    answer; for a fixture answer the most probable valve of that fixture (a fixture with one
    valve is exact); None for a category answer (it scores but does not train).
    """

    use_id: str
    label: str
    level: str
    source: str
    at: datetime
    train_valve: str | None
    request_id: str | None = None
    scored: ScoredLabel | None = field(default=None)


@dataclass(frozen=True)
class RoundPlan:
    """The requests of one label-request round (empty when none is due), and why."""

    day: int
    requests: tuple[LabelRequest, ...]
    n_candidates: int
    reason: str


# ---------------------------------------------------------------------------------- codecs


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def use_to_dict(use: WaterUse) -> dict[str, Any]:
    return {
        "use_id": use.use_id,
        "home_id": use.home_id,
        "lines": list(use.lines),
        "t_open": _iso(use.t_open),
        "t_close": _iso(use.t_close),
        "status": str(use.status),
        "open_event_ids": list(use.open_event_ids),
        "close_event_ids": list(use.close_event_ids),
        "drop_kpa": dict(use.drop_kpa),
    }


def use_from_dict(d: Mapping[str, Any]) -> WaterUse:
    return WaterUse(
        use_id=d["use_id"],
        home_id=d["home_id"],
        lines=tuple(d["lines"]),
        t_open=_dt(d["t_open"]),
        t_close=_dt(d["t_close"]),
        status=UseStatus(d["status"]),
        open_event_ids=tuple(d["open_event_ids"]),
        close_event_ids=tuple(d["close_event_ids"]),
        drop_kpa={k: float(v) for k, v in d["drop_kpa"].items()},
    )


def features_to_dict(tf: TransientFeatures) -> dict[str, Any]:
    return asdict(tf)


def features_from_dict(d: Mapping[str, Any]) -> TransientFeatures:
    return TransientFeatures(**d)


def scored_to_dict(s: ScoredLabel) -> dict[str, Any]:
    return {
        "use_id": s.use_id,
        "level": s.level,
        "predicted": dict(s.predicted),
        "true": dict(s.true),
        "model_version": s.model_version,
        "inclusion_prob": s.inclusion_prob,
        "is_audit": s.is_audit,
    }


def scored_from_dict(d: Mapping[str, Any]) -> ScoredLabel:
    return ScoredLabel(
        d["use_id"],
        d["level"],
        dict(d["predicted"]),
        dict(d["true"]),
        int(d["model_version"]),
        float(d["inclusion_prob"]),
        bool(d["is_audit"]),
    )


def request_to_dict(r: LabelRequest) -> dict[str, Any]:
    out = asdict(r)
    out.update(
        created_at=_iso(r.created_at),
        expires_at=_iso(r.expires_at),
        answered_at=_iso(r.answered_at),
        choices=list(r.choices),
    )
    return out


def request_from_dict(d: Mapping[str, Any]) -> LabelRequest:
    return LabelRequest(
        **{
            **d,
            "created_at": _dt(d["created_at"]),
            "expires_at": _dt(d["expires_at"]),
            "answered_at": _dt(d["answered_at"]),
            "choices": tuple(d["choices"]),
            "predicted": dict(d["predicted"]),
        }
    )


def label_to_dict(r: LabelRecord) -> dict[str, Any]:
    return {
        "use_id": r.use_id,
        "label": r.label,
        "level": r.level,
        "source": r.source,
        "at": _iso(r.at),
        "train_valve": r.train_valve,
        "request_id": r.request_id,
        "scored": None if r.scored is None else scored_to_dict(r.scored),
    }


def label_from_dict(d: Mapping[str, Any]) -> LabelRecord:
    return LabelRecord(
        d["use_id"],
        d["label"],
        d["level"],
        d["source"],
        _dt(d["at"]),
        d["train_valve"],
        d["request_id"],
        None if d["scored"] is None else scored_from_dict(d["scored"]),
    )
