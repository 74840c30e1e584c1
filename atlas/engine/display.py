"""What the home is shown: the display level, the lumped fixtures, and the daily record of both.

WHY apart from the estimates: the level is a decision with memory (hysteresis in
:class:`atlas.levels.LevelState`) taken once a day, and its history is what dashboards and the
benchmarks read back; the estimates that feed it are recomputed from the labels each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from atlas.estimate import AccuracyEstimate
from atlas.levels import LevelDecision, LevelState

Lumps = tuple[tuple[str, ...], ...]


class DisplayState:
    """The level in force, the fixtures shown as one, and one history entry per update."""

    def __init__(self) -> None:
        self.level_state = LevelState()
        self.lumps: Lumps = ()
        self.history: list[dict[str, Any]] = []

    @property
    def level(self) -> str:
        return self.level_state.level

    def record(
        self,
        now: datetime,
        day: int,
        decision: LevelDecision,
        lumps: Lumps,
        estimates: Mapping[str, AccuracyEstimate],
        *,
        model_version: int,
        n_labels: Mapping[str, int],
    ) -> None:
        """Put a daily decision in force and in the history."""
        self.level_state = decision.state
        self.lumps = lumps
        self.history.append(
            {
                "day": day,
                "at": now.isoformat(),
                "level": decision.level,
                "reason": decision.reason,
                "lumps": [list(lump) for lump in lumps],
                "model_version": model_version,
                "labels": dict(n_labels),
                "estimates": {
                    lv: {"point": e.point, "lower": e.lower, "n_labels": e.n_labels}
                    for lv, e in estimates.items()
                },
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "level_state": {
                "level": self.level_state.level,
                "failures": self.level_state.failures,
            },
            "lumps": [list(lump) for lump in self.lumps],
            "history": [dict(h) for h in self.history],
        }

    def load(self, state: Mapping[str, Any]) -> None:
        level = state["level_state"]
        self.level_state = LevelState(level["level"], int(level["failures"]))
        self.lumps = tuple(tuple(lump) for lump in state.get("lumps", []))  # older: none
        self.history = [dict(h) for h in state["history"]]
