"""Provisional pairing in memory, the moment events are committed (one worker).

WHY a second pairing: the stored pairing (:mod:`service.intake.pairing_step`) reads each
home's unpaired events from the database and writes its uses, a few milliseconds of queries
per home; with many busy homes one pass over them took hundreds of milliseconds, and a use
paired just after its home's turn waited for the whole next pass (``atlas bench latency``:
p99 0.4-0.8 s). Here the intake hands over the events it has just committed, already decoded;
a thread pairs each home's recent events in memory and reports every use once, as soon as it
is complete, for a provisional classification. The stored pairing stays the one that counts:
it pairs the stored events again, and the stored classification follows.

Only when this process receives all of a home's events (one worker; SQLite): behind a shared
subscription each worker sees a share of every home's events, and the owner's stored pairing
reports uses instead (``Pairer(on_unsettled=...)``). The service runs it in a child process
(:mod:`service.intake.provisional_process`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from atlas.events import Event
from atlas.pairing import SizeMemo, compute_features, pair_events
from atlas.transient import TransientFeatures
from service.intake.pairing_step import ReportedOnce, UnsettledHook, reach

_LOGGER = logging.getLogger(__name__)


class ProvisionalPairer:
    """Pairs each home's newest events in memory and reports each completed use once.

    Per home it keeps the events that can still change a use: opens waiting for their close,
    and the events of completed uses until a later event of the home is past their reach (the
    event-time half of :func:`~service.intake.pairing_step.settled`).
    ``on_use(home_id, uses, events, features)`` runs on this object's thread.
    """

    def __init__(
        self,
        on_use: UnsettledHook,
        max_reported: int = 10_000,
        share_features: Callable[[str, Mapping[str, TransientFeatures]], None] | None = None,
    ) -> None:
        self.on_use = on_use
        self.share_features = share_features
        self._exact: set[str] = set()  # queued events whose samples equal the stored ones
        self._queue: queue.SimpleQueue[tuple[str, list[Event]] | None] = queue.SimpleQueue()
        self._recent: dict[str, dict[str, Event]] = {}  # per home: events that can still matter
        self._features: dict[str, TransientFeatures] = {}  # of the events in _recent
        self._sizes: dict[str, SizeMemo] = {}  # per home: step sizes of the events in _recent
        self._reported = ReportedOnce(max_reported)
        self._exact_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="atlas-provisional", daemon=True)

    def kept_events(self, home_id: str) -> int:
        """How many of ``home_id``'s events this object keeps: the memory it holds per home,
        which must stay bounded by what can still change a use, not grow with the days (read
        for tests and diagnostics; exact between :meth:`pair` calls)."""
        return len(self._recent.get(home_id, {}))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Pair what was added, then end the thread."""
        self._queue.put(None)
        self._thread.join(10)

    def add(self, events: Sequence[Event], exact: Iterable[str] = ()) -> None:
        """Events just committed (any homes; called by the intake after its commit).

        The transient features of the ``exact`` ones (samples equal to the stored ones) go to
        ``share_features`` (with their home) once computed: the stored pairing would compute the
        same again.
        """
        by_home: dict[str, list[Event]] = {}
        for event in events:
            by_home.setdefault(event.home_id, []).append(event)
        with self._exact_lock:
            self._exact.update(exact)
        for home_id, evs in by_home.items():
            self._queue.put((home_id, evs))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # whatever else is queued: one pairing per home per pass
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            new: dict[str, list[Event]] = {}
            for entry in batch:
                if entry is not None:
                    new.setdefault(entry[0], []).extend(entry[1])
            # one call for every home's new events: the batched features cost half as much per
            # event as a home's one or two alone
            try:
                features = compute_features(
                    [
                        e
                        for home_id, evs in new.items()
                        for e in evs
                        if e.event_id not in self._recent.get(home_id, {})
                    ]
                )
            except Exception:  # pair() computes each home's own and reports what fails
                features = {}
            for home_id, evs in new.items():
                try:
                    self.pair(home_id, evs, features)
                except Exception:  # a preview is a courtesy: the stored classification follows
                    _LOGGER.exception("provisional pairing of %s failed", home_id)
            if None in batch:
                return

    def pair(
        self,
        home_id: str,
        events: Sequence[Event],
        features: Mapping[str, TransientFeatures] | None = None,
    ) -> None:
        """Add ``events`` to the home's recent events, pair them, report new complete uses
        (``features``: of some of them, computed already)."""
        recent = self._recent.setdefault(home_id, {})
        fresh = [e for e in events if e.event_id not in recent]
        for event in fresh:
            recent[event.event_id] = event
        known = features or {}
        computed = {e.event_id: known[e.event_id] for e in fresh if e.event_id in known}
        computed |= compute_features([e for e in fresh if e.event_id not in computed])
        self._features.update(computed)
        with self._exact_lock:
            exact = {i: tf for i, tf in computed.items() if i in self._exact}
            self._exact.difference_update(e.event_id for e in events)
        if exact and self.share_features is not None:
            self.share_features(home_id, exact)
        found = sorted(recent.values(), key=lambda e: (e.t, e.event_id))
        newest = found[-1].t
        sizes = self._sizes.setdefault(home_id, {})
        result = pair_events(found, now=newest, features=self._features, size_memo=sizes)
        done = self._reported.fresh(result.uses)
        if done:
            evs = [recent[i] for u in done for i in u.event_ids]
            self.on_use(home_id, done, evs, result.features)
        for use in result.uses:  # settled by event time: no later event can change it now
            if all(newest >= recent[i].t + reach(recent[i]) for i in use.event_ids):
                for event_id in use.event_ids:
                    recent.pop(event_id, None)
                    self._features.pop(event_id, None)
                    sizes.pop(event_id, None)
