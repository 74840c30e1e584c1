"""Re-pair a home's unpaired events after a commit and store the completed uses.

The one place the service calls :func:`atlas.pairing.pair_events`, so the live intake and
``atlas ingest`` pair exactly like the offline benchmark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select

from atlas.events import Event
from atlas.pairing import compute_features, pair_events
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse
from service.storage.events import load_events, received_at, unpaired_event_ids, utc
from service.storage.homelock import PAIRING, HomeLocks
from service.storage.schema import events
from service.storage.uses import insert_uses

_LOGGER = logging.getLogger(__name__)

#: How long after the end of an event's own window a later event can still change its use: the
#: other line of the same mixing-valve action (0.1 s, ``atlas.pairing.DEFAULT_SIMULTANEOUS_S``)
#: plus a margin for a message published a moment later. Events that start inside the window cut
#: the level reading (``atlas.pairing._sizes``); they are the window's own length away at most.
SETTLE_GUARD = timedelta(seconds=0.25)

#: With several workers, events that arrived less than this long ago (wall clock, ``received_at``)
#: are not paired yet: an older event of the same home may still be committing on another worker.
ARRIVAL_SETTLE_S = 1.0


#: Told about uses paired but not settled yet: ``(home_id, uses, their events, features)``.
UnsettledHook = Callable[[str, list[WaterUse], list[Event], Mapping[str, TransientFeatures]], None]


def keep_newest(items: dict, limit: int) -> None:
    """Drop the oldest entries of the insertion-ordered ``items`` beyond ``limit``."""
    while len(items) > limit:
        del items[next(iter(items))]


class ReportedOnce:
    """The ids of the last ``limit`` uses reported: each use is reported once.

    Bounded because only a recent use can be paired again before it is stored.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._ids: dict[str, None] = {}

    def fresh(self, uses: Iterable[WaterUse]) -> list[WaterUse]:
        """The uses of ``uses`` not reported before, now counted as reported."""
        new = [u for u in uses if u.use_id not in self._ids]
        self._ids.update(dict.fromkeys(u.use_id for u in new))
        keep_newest(self._ids, self.limit)
        return new


class Pairer:
    """Pairs homes from the database, caching each waiting event's transient features.

    An open can wait many batches for its close; computing its features once instead of at
    every re-pairing is what keeps pairing cheaper than storing (features are the costly part).
    ``on_unsettled`` hears of each use once, as soon as it is paired and before it settles
    (the runtime shows a provisional classification; docs/service.md). ``max_handed`` > 0
    keeps up to that many events of stored uses for :meth:`take_paired` (0: none, when no
    classifier in this process ingests them).
    """

    def __init__(
        self,
        engine: Engine,
        max_cached: int = 200_000,
        max_handed: int = 0,
        arrival_settle_s: float | None = None,
        on_unsettled: UnsettledHook | None = None,
    ) -> None:
        self.engine = engine
        self.max_cached = max_cached
        self.max_handed = max_handed
        self.on_unsettled = on_unsettled
        self._announced = ReportedOnce()  # uses given to on_unsettled
        # Several workers (PostgreSQL) commit one home's events out of order; one process does
        # not. None: ARRIVAL_SETTLE_S on PostgreSQL, 0 on SQLite.
        if arrival_settle_s is None:
            arrival_settle_s = ARRIVAL_SETTLE_S if engine.dialect.name == "postgresql" else 0.0
        self.arrival_settle_s = arrival_settle_s
        # by (home_id, event_id): event ids are unique per home only
        self._features: dict[tuple[str, str], TransientFeatures] = {}
        self._waiting_events: dict[str, dict[str, Event]] = {}  # per home, decoded once
        # events of stored uses, decoded and featurised, until the classifier takes them
        self._handed: dict[tuple[str, str], tuple[Event, TransientFeatures]] = {}
        self._lock = threading.Lock()
        self._homes = HomeLocks(PAIRING)
        # home -> monotonic time at which its earliest unsettled use settles by the wall clock
        self._waiting: dict[str, float] = {}

    def pair_home(self, home_id: str, *, final: bool = False) -> int:
        """Pair the unpaired events of ``home_id``; returns the number of uses stored.

        A use is stored once no event still to come can change it (:func:`settled`): a later
        event of the home is already stored, or the wall clock says every event that could
        matter has arrived. Event time, not the service clock, is the first test, so a replayed
        capture or an accelerated simulation pairs exactly as live data would; the wall-clock
        test is what stores the last use before a quiet hour without waiting for the next
        event. ``final`` treats the data as complete (end of a file): still-running opens
        become open-ended uses.
        """
        # serialised per home across workers (homelock): reads below see the last pairing's uses
        self._waiting.pop(home_id, None)  # set again below while a use still waits
        with self._homes.transaction(self.engine, home_id) as conn:
            unpaired = self._unpaired(conn, home_id)
            if not unpaired:
                return 0
            now = None if final else self._horizon(conn, home_id)
            if now is not None:  # what arrived too recently waits: an older event may be late
                unpaired = [e for e in unpaired if e.t <= now]
            if not unpaired or (now is None and not final):
                return 0
            features = self._known_features(home_id, unpaired)
            result = pair_events(unpaired, now=now, features=features)
            by_id = {e.event_id: e for e in unpaired}
            done = result.uses if final else self._settled(conn, home_id, result.uses, by_id, now)
            created = insert_uses(conn, done)
        paired = [i for use in done for i in use.event_ids]
        self._hand_over([(by_id[i], features[i]) for i in paired if i in features])
        self._forget(home_id, paired)
        waiting = self._waiting_events.get(home_id, {})
        for event_id in paired:
            waiting.pop(event_id, None)
        if self.on_unsettled is not None and not final:
            stored = {u.use_id for u in done}
            self._tell_unsettled(
                home_id, [u for u in result.uses if u.use_id not in stored], by_id, result.features
            )
        return len(created)

    def _tell_unsettled(
        self,
        home_id: str,
        waiting: list[WaterUse],
        by_id: dict[str, Event],
        features: Mapping[str, TransientFeatures],
    ) -> None:
        fresh = self._announced.fresh(waiting)
        if not fresh:
            return
        evs = [by_id[e] for u in fresh for e in u.event_ids]
        try:
            self.on_unsettled(home_id, fresh, evs, features)  # type: ignore[misc]
        except Exception:  # a preview is a courtesy: the stored classification follows anyway
            _LOGGER.exception("provisional classification of %s failed", home_id)

    def _settled(
        self,
        conn: Connection,
        home_id: str,
        found: list[WaterUse],
        by_id: dict[str, Event],
        newest: datetime,
    ) -> list[WaterUse]:
        """The uses of ``found`` that :func:`settled`; notes when the first other one will."""
        last = {u.use_id: max((by_id[i] for i in u.event_ids), key=lambda e: e.t) for u in found}
        arrived = received_at(conn, home_id, [e.event_id for e in last.values()])
        wall = datetime.now(UTC)
        done, wait = [], []
        for use in found:
            event = last[use.use_id]
            if settled(event, newest, arrived[event.event_id], wall):
                done.append(use)
            else:
                wait.append((arrived[event.event_id] + reach(event) - wall).total_seconds())
        if wait:
            self._waiting[home_id] = time.monotonic() + min(wait)
        return done

    def due_homes(self) -> set[str]:
        """Homes whose unsettled uses have settled by the wall clock since their last pairing."""
        now = time.monotonic()
        return {home for home, at in list(self._waiting.items()) if at <= now}

    def next_due_s(self) -> float | None:
        """Seconds until the next home is due (None: none waits)."""
        if not self._waiting:
            return None
        return max(0.0, min(self._waiting.values()) - time.monotonic())

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

    def _unpaired(self, conn: Connection, home_id: str) -> list[Event]:
        """The home's unpaired events by time, decoding only those not seen waiting before.

        The cache holds exactly the home's events still unpaired at its last pairing (what
        another worker paired meanwhile drops out here), so it is as large as what waits.
        """
        ids = unpaired_event_ids(conn, home_id)
        with self._lock:
            cached = dict(self._waiting_events.get(home_id, {}))
        missing = [i for i in ids if i not in cached]
        loaded = {e.event_id: e for e in load_events(conn, missing, home_id)}
        found = [cached.get(i) or loaded[i] for i in ids]
        with self._lock:  # an event offered meanwhile is dropped here: loaded at the next pass
            self._waiting_events[home_id] = {e.event_id: e for e in found}
        return found

    def offer_events(self, decoded: Iterable[Event]) -> None:
        """Events just committed, decoded as received, whose samples equal the stored ones bit
        for bit: their home's next pairing need not load and decode them again.

        WHY: loading and unpacking the waveforms of new events was 6% of ``atlas serve``'s CPU
        in ``atlas bench latency`` (py-spy), and the intake had decoded them a moment before.
        Only for homes this pairer pairs: an offered event stays cached until its home is.
        """
        with self._lock:
            for e in decoded:
                self._waiting_events.setdefault(e.home_id, {})[e.event_id] = e

    def _known_features(self, home_id: str, unpaired: list) -> dict[str, TransientFeatures]:
        """The features of the home's ``unpaired`` events, by event id (computed if new)."""
        with self._lock:
            missing = [e for e in unpaired if (home_id, e.event_id) not in self._features]
        computed = compute_features(missing)
        with self._lock:
            if len(self._features) + len(computed) > self.max_cached:
                self._features.clear()  # rare: only when many opens never close
            self._features.update(((home_id, i), tf) for i, tf in computed.items())
            known = ((e.event_id, self._features.get((home_id, e.event_id))) for e in unpaired)
            return {i: tf for i, tf in known if tf is not None} | computed

    def offer_features(self, home_id: str, features: Mapping[str, TransientFeatures]) -> None:
        """Transient features of the home's events computed elsewhere from the same samples as
        stored (the provisional pairing's): pairing uses them instead of computing them again."""
        with self._lock:
            if len(self._features) + len(features) > self.max_cached:
                return  # full: rare, only when many opens never close
            self._features.update(((home_id, i), tf) for i, tf in features.items())

    def _hand_over(self, paired: list[tuple[Event, TransientFeatures]]) -> None:
        if not self.max_handed:
            return
        with self._lock:
            for event, tf in paired:
                self._handed[(event.home_id, event.event_id)] = (event, tf)
            keep_newest(self._handed, self.max_handed)  # nobody took the oldest

    def take_paired(
        self, home_id: str, event_ids: Iterable[str]
    ) -> dict[str, tuple[Event, TransientFeatures]]:
        """The decoded events and transient features of stored uses' events, handed over once.

        WHY: the classifier of the same worker ingests these uses a moment later; decoding the
        waveforms and computing their features again was a quarter of its time (measured
        with ``atlas bench latency``). Ids not held (another worker paired them, or they were
        evicted) are missing from the result: the caller loads and computes those.
        """
        with self._lock:
            keys = [(home_id, i) for i in event_ids]  # ids are unique per home only
            return {key[1]: self._handed.pop(key) for key in keys if key in self._handed}

    def _forget(self, home_id: str, event_ids: Iterable[str]) -> None:
        with self._lock:
            for event_id in event_ids:
                self._features.pop((home_id, event_id), None)


def reach(event: Event) -> timedelta:
    """How long after ``event.t`` a later event can still change the use it ends."""
    return timedelta(seconds=len(event.samples) / event.sample_rate_hz) + SETTLE_GUARD


def settled(last: Event, newest: datetime, arrived: datetime, wall: datetime) -> bool:
    """Whether no event still to come can change the use whose last event is ``last``.

    A gateway publishes each line's events in time order, each once its window is captured. So
    either an event later than ``last``'s reach is stored already (``newest``: event time, which
    holds at any replay speed), or ``last``'s reach has passed in wall time since it arrived:
    any event that starts within the reach was published no later than that.
    """
    return newest >= last.t + reach(last) or wall >= arrived + reach(last)
