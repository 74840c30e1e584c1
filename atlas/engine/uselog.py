"""A home's uses in time order and what is known of their events: the engine's record of data.

WHY kept sorted as uses arrive: the matrix, the rounds and the announcements all read the
uses in time order and often only a recent stretch of them; sorting the whole history for
each new use was a cost that grew with the home's age.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np

from atlas.events import Event
from atlas.transient import TransientFeatures, transient_features
from atlas.uses import WaterUse


class UseLog:
    """Uses sorted by ``(t, use_id)``, and per event: transient features, line, code.

    The features, lines and codes are public dicts (``event_id ->``): they are the inputs of
    the feature matrix (:func:`atlas.engine.featurize.build_matrix`). Additions are journaled,
    so a snapshot can hold only what came after a :attr:`mark` (a delta).
    """

    def __init__(self) -> None:
        self.features: dict[str, TransientFeatures] = {}
        self.lines: dict[str, str] = {}
        self.codes: dict[str, np.ndarray] = {}
        self._uses: dict[str, WaterUse] = {}
        self._keys: list[tuple[datetime, str]] = []  # (t, use_id), sorted
        self._sorted: list[WaterUse] = []  # aligned with _keys
        self._use_journal: list[str] = []  # use ids as added (again when replaced)
        self._event_journal: list[str] = []  # event ids as added

    def __len__(self) -> int:
        return len(self._sorted)

    def __contains__(self, use_id: str) -> bool:
        return use_id in self._uses

    def get(self, use_id: str) -> WaterUse:
        return self._uses[use_id]

    @property
    def sorted(self) -> Sequence[WaterUse]:
        """Every use in time order (do not modify)."""
        return self._sorted

    @property
    def newest_start(self) -> datetime | None:
        """The latest start of any use ingested (None before the first)."""
        return self._keys[-1][0] if self._keys else None

    def position(self, use_id: str) -> int:
        use = self._uses[use_id]
        return bisect.bisect_left(self._keys, (use.t, use.use_id))

    def positions_between(self, start: datetime, stop: datetime) -> range:
        """Positions of the uses starting in ``[start, stop]``."""
        lo = bisect.bisect_left(self._keys, (start,))
        hi = bisect.bisect_left(self._keys, (stop, "\U0010ffff"))
        return range(lo, max(lo, hi))

    def since(self, start: datetime) -> Sequence[WaterUse]:
        """The uses starting at or after ``start``, in time order."""
        return self._sorted[bisect.bisect_left(self._keys, (start,)) :]

    @property
    def mark(self) -> tuple[int, int]:
        """How many use and event additions the log has had (see :meth:`uses_since`)."""
        return len(self._use_journal), len(self._event_journal)

    def uses_since(self, n_uses: int) -> list[WaterUse]:
        """The uses added or replaced after the first ``n_uses`` additions, as they are now."""
        return [self._uses[u] for u in dict.fromkeys(self._use_journal[n_uses:])]

    def events_since(self, n_events: int) -> list[str]:
        """The event ids added after the first ``n_events`` additions."""
        return self._event_journal[n_events:]

    def add_event(self, event_id: str, features: TransientFeatures, line: str) -> None:
        if event_id not in self.features:
            self._event_journal.append(event_id)
        self.features[event_id] = features
        self.lines[event_id] = line

    def add_events(
        self, events: Iterable[Event], known: Mapping[str, TransientFeatures] | None = None
    ) -> list[Event]:
        """Record events not seen before (features from ``known`` or computed); returns them."""
        known = known or {}
        new = [e for e in events if e.event_id not in self.features]
        for e in new:
            tf = known.get(e.event_id) or transient_features(e.samples, e.sample_rate_hz)
            self.add_event(e.event_id, tf, e.line)
        return new

    def add_use(self, use: WaterUse) -> WaterUse | None:
        """Insert ``use``; returns the use it replaced (same id), if any."""
        old = self._uses.get(use.use_id)
        if old is not None:
            pos = bisect.bisect_left(self._keys, (old.t, old.use_id))
            del self._keys[pos], self._sorted[pos]
        key = (use.t, use.use_id)
        pos = bisect.bisect_left(self._keys, key)
        self._keys.insert(pos, key)
        self._sorted.insert(pos, use)
        self._uses[use.use_id] = use
        self._use_journal.append(use.use_id)
        return old
