"""Re-pair a home's unpaired events after a commit and store the completed uses.

The one place the service calls :func:`atlas.pairing.pair_events`, so the live intake and
``atlas ingest`` pair exactly like the offline benchmark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select

from atlas.pairing import compute_features, pair_events
from atlas.transient import TransientFeatures
from service.runtime.homelock import PAIRING, HomeLocks
from service.storage.events import load_unpaired_events, utc
from service.storage.schema import events
from service.storage.uses import insert_uses

#: A use whose last event is this close to the home's newest event is not stored yet: the other
#: line of a mixing valve, or a slightly late message, may still arrive and change the pairing.
SETTLE = timedelta(seconds=5)

#: With several workers, events that arrived less than this long ago (wall clock, ``received_at``)
#: are not paired yet: an older event of the same home may still be committing on another worker.
ARRIVAL_SETTLE_S = 1.0


class Pairer:
    """Pairs homes from the database, caching each waiting event's transient features.

    An open can wait many batches for its close; computing its features once instead of at
    every re-pairing is what keeps pairing cheaper than storing (features are the costly part).
    """

    def __init__(
        self, engine: Engine, max_cached: int = 200_000, arrival_settle_s: float | None = None
    ) -> None:
        self.engine = engine
        self.max_cached = max_cached
        # Several workers (PostgreSQL) commit one home's events out of order; one process does
        # not. None: ARRIVAL_SETTLE_S on PostgreSQL, 0 on SQLite.
        if arrival_settle_s is None:
            arrival_settle_s = ARRIVAL_SETTLE_S if engine.dialect.name == "postgresql" else 0.0
        self.arrival_settle_s = arrival_settle_s
        self._features: dict[str, TransientFeatures] = {}
        self._lock = threading.Lock()
        self._homes = HomeLocks(PAIRING)

    def pair_home(self, home_id: str, *, final: bool = False) -> int:
        """Pair the unpaired events of ``home_id``; returns the number of uses stored.

        The clock is the home's newest event time, not the wall clock, so a replayed capture or
        an accelerated simulation times out opens exactly as live data would. ``final`` treats
        the data as complete (end of a file): still-running opens become open-ended uses.
        """
        # serialised per home across workers (issue 7): reads below see the last pairing's uses
        with self._homes.transaction(self.engine, home_id) as conn:
            unpaired = load_unpaired_events(conn, home_id)
            if not unpaired:
                return 0
            now = None if final else self._horizon(conn, home_id)
            if now is not None:  # what arrived too recently waits: an older event may be late
                unpaired = [e for e in unpaired if e.t <= now]
            if not unpaired or (now is None and not final):
                return 0
            features = self._known_features(unpaired)
            result = pair_events(unpaired, now=now, features=features)
            by_id = {e.event_id: e for e in unpaired}
            done = [
                use
                for use in result.uses
                if final or max(by_id[i].t for i in use.event_ids) <= now - SETTLE
            ]
            created = insert_uses(conn, done)
        self._forget(i for use in done for i in use.event_ids)
        return len(created)

    def _horizon(self, conn: Connection, home_id: str) -> datetime | None:
        """The event time up to which the home's events are all stored (None: none yet).

        One process: the newest event (a gateway publishes in time order). Several workers
        behind a shared subscription: round-robin delivery and independent commits store an
        older event after a newer one, so only events that arrived ``arrival_settle_s`` ago
        count (:meth:`pair_homes` waits that long first, so what triggered it is included).
        """
        query = select(events.c.t).where(events.c.home_id == home_id)
        if self.arrival_settle_s > 0:
            cutoff = datetime.now(UTC) - timedelta(seconds=self.arrival_settle_s)
            query = query.where(events.c.received_at <= cutoff)
        found = conn.execute(query.order_by(events.c.t.desc()).limit(1)).scalar()
        return None if found is None else utc(found)

    def pair_homes(self, homes: Iterable[str], *, final: bool = False) -> int:
        if not final and self.arrival_settle_s > 0:
            time.sleep(self.arrival_settle_s)  # the events that made these homes dirty settle
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
