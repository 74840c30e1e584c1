"""Per-home calibration engine (pure): the protocol the benchmark and the live service share.

See :class:`CalibrationEngine` and ``docs/benchmarks.md``.
"""

from atlas.engine.core import NOT_SURE, CalibrationEngine, DailyReport, EngineConfig
from atlas.engine.records import LabelRecord, LabelRequest, RoundPlan, UseClassification

__all__ = [
    "NOT_SURE",
    "CalibrationEngine",
    "DailyReport",
    "EngineConfig",
    "LabelRecord",
    "LabelRequest",
    "RoundPlan",
    "UseClassification",
]
