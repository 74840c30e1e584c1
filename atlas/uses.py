"""A water use: the open transient(s) and close transient(s) of one valve actuation, paired.

Sensors see transients, people remember uses ("I ran the kitchen tap"): classification, labels
and accuracy all work on uses. Pairing (``atlas.pairing``) builds them from events; storage keeps
them; the learning core classifies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class UseStatus(StrEnum):
    PAIRED = "paired"  # an open and its close were matched
    OPEN_ENDED = "open_ended"  # an open whose close never came within the timeout
    ORPHAN_CLOSE = "orphan_close"  # a close with no open to match (kept, flagged)


@dataclass(frozen=True)
class WaterUse:
    """One use, on one or both lines.

    ``open_event_ids`` / ``close_event_ids`` hold one event per line involved (a mixed faucet
    opens on both lines at once). ``drop_kpa`` is the steady pressure drop per line while the
    water ran, a proxy for the flow rate.
    """

    use_id: str
    home_id: str
    lines: tuple[str, ...]
    t_open: datetime | None
    t_close: datetime | None
    status: UseStatus
    open_event_ids: tuple[str, ...] = ()
    close_event_ids: tuple[str, ...] = ()
    drop_kpa: dict[str, float] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.t_open is None or self.t_close is None:
            return None
        return (self.t_close - self.t_open).total_seconds()

    @property
    def event_ids(self) -> tuple[str, ...]:
        return self.open_event_ids + self.close_event_ids

    @property
    def t(self) -> datetime:
        """The time a person would remember: when the water started (or stopped, if orphan)."""
        t = self.t_open or self.t_close
        assert t is not None, "a use has an open or a close"
        return t
