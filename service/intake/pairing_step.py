"""Re-pair a home's unpaired events after a commit and store the completed uses.

The one place the service calls :func:`atlas.pairing.pair_events`, so the live intake and
``atlas ingest`` pair exactly like the offline benchmark.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Engine, func, select

from atlas.pairing import compute_features, pair_events
from atlas.transient import TransientFeatures
from service.storage.events import load_unpaired_events, utc
from service.storage.schema import events
from service.storage.uses import insert_uses

#: A use whose last event is this close to the home's newest event is not stored yet: the other
#: line of a mixing valve, or a slightly late message, may still arrive and change the pairing.
SETTLE = timedelta(seconds=5)


class Pairer:
    """Pairs homes from the database, caching each waiting event's transient features.

    An open can wait many batches for its close; computing its features once instead of at
    every re-pairing is what keeps pairing cheaper than storing (features are the costly part).
    """

    def __init__(self, engine: Engine, max_cached: int = 200_000) -> None:
        self.engine = engine
        self.max_cached = max_cached
        self._features: dict[str, TransientFeatures] = {}
        self._lock = threading.Lock()

    def pair_home(self, home_id: str, *, final: bool = False) -> int:
        """Pair the unpaired events of ``home_id``; returns the number of uses stored.

        The clock is the home's newest event time, not the wall clock, so a replayed capture or
        an accelerated simulation times out opens exactly as live data would. ``final`` treats
        the data as complete (end of a file): still-running opens become open-ended uses.
        """
        with self.engine.begin() as conn:
            unpaired = load_unpaired_events(conn, home_id)
            if not unpaired:
                return 0
            newest = conn.execute(select(func.max(events.c.t)).where(events.c.home_id == home_id))
            now = max(unpaired[-1].t, utc(newest.scalar_one()))
            features = self._known_features(unpaired)
            result = pair_events(unpaired, now=None if final else now, features=features)
            by_id = {e.event_id: e for e in unpaired}
            done = [
                use
                for use in result.uses
                if final or max(by_id[i].t for i in use.event_ids) <= now - SETTLE
            ]
            created = insert_uses(conn, done)
        self._forget(i for use in done for i in use.event_ids)
        return len(created)

    def pair_homes(self, homes: Iterable[str], *, final: bool = False) -> int:
        return sum(self.pair_home(home, final=final) for home in sorted(homes))

    def _known_features(self, unpaired: list) -> dict[str, TransientFeatures]:
        with self._lock:
            missing = [e for e in unpaired if e.event_id not in self._features]
        computed = compute_features(missing)
        with self._lock:
            if len(self._features) + len(computed) > self.max_cached:
                self._features.clear()  # rare: only when many opens never close
            self._features.update(computed)
            return {
                e.event_id: self._features[e.event_id]
                for e in unpaired
                if e.event_id in self._features
            } | computed

    def _forget(self, event_ids: Iterable[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._features.pop(event_id, None)
