"""Per-home calibration engine (pure): the protocol the benchmark and the live service share.

:class:`CalibrationEngine` is a facade over parts with one job each: the use log
(:mod:`.uselog`), the feature rows kept up to date per use (:mod:`.rows`), the predictions
(:mod:`.predictions`), the pending announcements (:mod:`.announcements`), the label requests
(:mod:`.requests`) and the display (:mod:`.display`). See ``docs/benchmarks.md``.
"""

from atlas.engine.config import EngineConfig
from atlas.engine.core import NOT_SURE, CalibrationEngine, DailyReport, SnapshotMark
from atlas.engine.records import LabelRecord, LabelRequest, RoundPlan, UseClassification

__all__ = [
    "NOT_SURE",
    "CalibrationEngine",
    "DailyReport",
    "EngineConfig",
    "LabelRecord",
    "LabelRequest",
    "RoundPlan",
    "SnapshotMark",
    "UseClassification",
]
