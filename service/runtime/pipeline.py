"""The per-home pipeline: a thin shell around ``atlas.engine.CalibrationEngine``.

Every operation is: lock the home, load the engine (cached; reloaded when another worker saved
a newer snapshot), apply answers committed since (from the database, so a lost hook loses
nothing), call ONE engine method, then save snapshot + rows in one transaction, and only after
the commit publish (SSE hub, MQTT state, pushes). The engine is pure; this module does the I/O.

One exception, for latency: ingesting new uses that changed nothing but the uses saves the
snapshot at most every ``snapshot_every_s`` (:meth:`HomePipeline.flush` saves the rest). A full
snapshot per ingest was a sixth of the classifier's time, and the uses are in the database: a
worker that restarts from an older snapshot ingests the uses since again (classification rows
are keyed by use, level and model version, so that repeats nothing).

Saves are deltas (the uses and events since the previous save, the rest whole) over a full
snapshot taken every :data:`DELTAS_PER_BASE` saves or after a codebook refit: a full snapshot's
size grows with the home's history, a delta's does not.

An engine is created, and restored, with the fleet version its home runs on
(:mod:`service.storage.homefleet`), so every worker and every restart hand it the same fleet;
a running home takes a newer version at its codebook refit only (docs/fleet.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from atlas.checklist import Announcement
from atlas.engine import CalibrationEngine, EngineConfig, SnapshotMark, UseClassification
from atlas.engine.preview import PreviewModel
from atlas.engine.records import RoundPlan
from atlas.events import Event
from atlas.homespec import HomeSpec, parse_home_spec
from atlas.timetable import TimetablePolicy, next_awake
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse
from service import metrics
from service.push.text import describe_use
from service.runtime.fleetcache import FleetCache
from service.sse_rows import sse_rows
from service.storage.announcements import (
    record_guided_label,
    unmatched_announcements,
    unmatched_announcements_by_home,
)
from service.storage.classifications import insert_classifications, model_version_name
from service.storage.enginestate import (
    latest_engine_version,
    load_engine_state,
    save_engine_state,
)
from service.storage.events import load_events, utc
from service.storage.fleets import latest_fleet_version
from service.storage.homefleet import load_home_fleet, set_fleet_version
from service.storage.homelock import ENGINE, lock_home_in_transaction
from service.storage.homestatus import LEVEL_NAMES, append_accuracy, upsert_home_status
from service.storage.inlists import batches
from service.storage.requestplans import (
    closed_answers,
    closed_answers_by_home,
    insert_planned,
)
from service.storage.schema import events, homes, uses
from service.storage.uses import load_uses

_LOGGER = logging.getLogger(__name__)

#: Uses re-classified after a retrain (the dashboard shows recent uses at the current model).
RECLASSIFY_RECENT = 400

#: New uses are read from those stored this long before the previous read on: covers a commit
#: that was still in flight during that read and clock differences between workers.
USE_READ_OVERLAP = timedelta(minutes=10)

#: Deltas saved after a full snapshot before the next full one: a load reads at most this many.
DELTAS_PER_BASE = 48

#: ``(home id, event ids) -> {event id: (decoded event, transient features)}`` for events the
#: pairer of this worker has at hand (:meth:`service.intake.pairing_step.Pairer.take_paired`).
PairedEvents = Callable[[str, list[str]], Mapping[str, tuple[Event, TransientFeatures]]]


@dataclass
class _Home:
    engine: CalibrationEngine
    version: int  # snapshot version loaded or saved (0: never saved)
    known: set[str] = field(default_factory=set)  # use ids ingested
    applied: set[str] = field(default_factory=set)  # request ids whose answer was applied
    announced: set[int] = field(default_factory=set)  # announcement ids given to the engine
    guided: set[str] = field(default_factory=set)  # use ids whose guided label is stored
    uses_read_at: datetime | None = None  # wall clock of the last read of new uses
    saved_at: float = 0.0  # monotonic time of the last snapshot save
    unsaved: bool = False  # ingested uses not in the saved snapshot yet
    base: int = 0  # version of the full snapshot the saved chain starts from
    deltas: int = 0  # deltas saved after it
    mark: SnapshotMark | None = None  # the engine's log as of the last save or load
    fleet_version: int | None = None  # the fleet version the engine uses (home_fleet.version)


@dataclass(frozen=True)
class PassReads:
    """What a classifier pass reads of all its homes at once, before taking any home's lock.

    WHY: three of the four queries a home cost per pass (its answers, announcements and newly
    stored use ids) are the same for every home; read together they are three queries a pass.
    Read outside the homes' locks they may be a moment stale, which loses nothing: an answer or
    announcement committed after the read is applied by the next pass or job (the engine
    applies each once), and a use stored after it dirties its home again and is read then
    (the next read starts :data:`USE_READ_OVERLAP` before this one). The snapshot version is
    still read under each home's lock: another worker's save must never be missed.
    """

    read_at: datetime  # wall clock of the read
    answers: Mapping[str, list[tuple[str, str, datetime]]]
    announcements: Mapping[str, list[tuple[int, str, datetime]]]
    stored_since: datetime | None  # stored_use_ids holds the uses stored since then
    stored_use_ids: Mapping[str, set[str]]


@dataclass(frozen=True)
class RoundOutcome:
    plan: RoundPlan
    new_request_ids: list[str]


class Listener:
    """What the pipeline tells the rest of the runtime after each commit (no-ops by default)."""

    def classified(self, home_id: str, rows: list[dict]) -> None: ...

    def status_changed(self, home_id: str, status: dict, level_changed: bool) -> None: ...

    def requests_planned(self, home_id: str) -> None: ...

    def preview_changed(self, home_id: str) -> None:
        """The home's :meth:`HomePipeline.cached_preview` changed (or was dropped)."""


class HomePipeline:
    """Loads, drives and saves each home's engine (see the module docstring)."""

    def __init__(
        self,
        db: Engine,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        config_for: Callable[[HomeSpec], EngineConfig] | None = None,
        listener: Listener | None = None,
        paired_events: PairedEvents | None = None,
        snapshot_every_s: float = 30.0,
        fleets: FleetCache | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.config_for = config_for or (lambda spec: EngineConfig())
        self.fleets = fleets or FleetCache()
        self.listener = listener or Listener()
        self.paired_events = paired_events
        self.snapshot_every_s = snapshot_every_s
        self._homes: dict[str, _Home] = {}
        self._previews: dict[str, PreviewModel] = {}  # per home, as of its engine's last change
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ loading and saving

    def lock(self, home_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(home_id, threading.Lock())

    def _spec(self, conn: Connection, home_id: str) -> tuple[HomeSpec, datetime]:
        row = conn.execute(
            select(homes.c.spec, homes.c.created_at).where(homes.c.home_id == home_id)
        ).first()
        if row is None:
            raise KeyError(f"home_id={home_id!r} is not registered")
        return parse_home_spec(row.spec), utc(row.created_at)

    def _load(self, conn: Connection, home_id: str) -> _Home:
        cached = self._homes.get(home_id)
        latest = latest_engine_version(conn, home_id)
        if cached is not None and cached.version == latest:
            return cached
        spec, installed_at = self._spec(conn, home_id)
        # the fleet version the home started from or took at a refit, on every worker
        fleet_version = load_home_fleet(conn, home_id).version
        fleet = None if fleet_version is None else self.fleets.prior(conn, fleet_version, spec)
        found = load_engine_state(conn, home_id)
        if found is None:
            engine = CalibrationEngine(spec, installed_at, self.config_for(spec), fleet=fleet)
            home = _Home(engine, 0)
        else:
            engine = CalibrationEngine.restore(
                spec, found.state, self.config_for(spec), deltas=found.deltas, fleet=fleet
            )
            home = _Home(engine, found.version, {u.use_id for u in engine.log.sorted})
            home.applied = {r.request_id for r in engine.requests if r.state != "open"}
            home.announced = set(found.meta.get("announced", []))
            home.base, home.deltas = found.base, len(found.deltas)
            home.mark = engine.snapshot_mark()
        home.fleet_version = fleet_version
        self._homes[home_id] = home
        return home

    def _save(self, conn: Connection, home_id: str, home: _Home, now: datetime) -> None:
        eng = home.engine
        meta = {
            "model_version": eng.model_version,
            "level": eng.level,
            "n_uses": len(home.known),
            "announced": sorted(home.announced),
        }
        state, base = self._snapshot(home)
        home.version = save_engine_state(conn, home_id, state, meta, now.astimezone(UTC), base=base)
        home.base, home.deltas = (home.version, 0) if base is None else (base, home.deltas + 1)
        home.mark = eng.snapshot_mark()
        home.saved_at, home.unsaved = time.monotonic(), False
        self._set_preview(home_id, eng.preview_model())

    @staticmethod
    def _snapshot(home: _Home) -> tuple[dict, int | None]:
        """A delta over the saved chain when one may follow, else a full snapshot (base None)."""
        if home.mark is not None and home.deltas < DELTAS_PER_BASE:
            try:
                return home.engine.snapshot(since=home.mark), home.base
            except ValueError:  # the codebook was refitted since
                pass
        return home.engine.snapshot(), None

    def _set_preview(self, home_id: str, model: PreviewModel | None) -> None:
        if model is None:
            self._previews.pop(home_id, None)
        else:
            self._previews[home_id] = model
        self.listener.preview_changed(home_id)

    def flush(self, max_age_s: float | None = None) -> int:
        """Save the snapshots of homes with uses ingested since their last save at least
        ``max_age_s`` ago (default ``snapshot_every_s``; 0: all, e.g. at shutdown)."""
        age = self.snapshot_every_s if max_age_s is None else max_age_s
        due = [
            h
            for h, home in list(self._homes.items())
            if home.unsaved and time.monotonic() - home.saved_at >= age
        ]
        for home_id in due:
            with self.lock(home_id), self.db.begin() as conn:
                lock_home_in_transaction(conn, home_id, ENGINE)
                home = self._homes.get(home_id)
                if home is None or not home.unsaved:
                    continue
                if latest_engine_version(conn, home_id) != home.version:
                    self.forget(home_id)  # another worker saved since: its state wins
                    continue
                self._save(conn, home_id, home, self.clock())
        return len(due)

    def forget(self, home_id: str) -> None:
        """Drop the cached engine (the home spec changed: reload from the database)."""
        self._homes.pop(home_id, None)
        self._set_preview(home_id, None)

    def _apply_answers(
        self, conn: Connection, home_id: str, home: _Home, reads: PassReads | None = None
    ) -> int:
        """Apply answers committed in the database that the engine has not seen; returns count."""
        n = 0
        engine_ids = {r.request_id for r in home.engine.requests}
        found = closed_answers(conn, home_id) if reads is None else reads.answers.get(home_id, [])
        for request_id, choice, answered_at in found:
            if request_id in home.applied or request_id not in engine_ids:
                continue
            home.engine.record_answer(request_id, choice, answered_at)
            home.applied.add(request_id)
            n += 1
        return n

    def _apply_announcements(
        self, conn: Connection, home_id: str, home: _Home, reads: PassReads | None = None
    ) -> None:
        """Give the engine the week-1 announcements stored since (ids kept in the snapshot meta,
        so a restart neither loses nor repeats one); the engine matches them at ingest."""
        found = (
            unmatched_announcements(conn, home_id)
            if reads is None
            else reads.announcements.get(home_id, [])
        )
        for ann_id, valve_id, t in found:
            if ann_id in home.announced:
                continue
            fixture_id, _, valve_name = valve_id.partition("/")
            try:
                home.engine.announce(Announcement(fixture_id, valve_name or None, t), t)
            except (KeyError, ValueError) as exc:  # the API validated it; the spec changed since
                _LOGGER.warning("announcement %s of %s ignored: %s", ann_id, home_id, exc)
            home.announced.add(ann_id)

    def _store_guided(self, conn: Connection, home_id: str, home: _Home) -> None:
        """Store the labels matched announcements gave (the checklist's progress reads them)."""
        for rec in home.engine.labels:
            if rec.source == "guided" and rec.use_id not in home.guided:
                record_guided_label(conn, home_id, rec.use_id, rec.label, rec.at)
                home.guided.add(rec.use_id)

    # ------------------------------------------------------------------ new uses

    def read_pass(self, home_ids: list[str]) -> PassReads:
        """The answers, announcements and newly stored use ids of ``home_ids`` (see
        :class:`PassReads`), in three queries (per batch of ids, :mod:`service.storage.inlists`)."""
        read_at = datetime.now(UTC)
        marks = [h.uses_read_at for h in map(self._homes.get, home_ids) if h and h.uses_read_at]
        since = min(marks) - USE_READ_OVERLAP if marks else None
        stored: dict[str, set[str]] = {}
        with self.db.connect() as conn:
            answers = closed_answers_by_home(conn, home_ids)
            announced = unmatched_announcements_by_home(conn, home_ids)
            for chunk in batches(home_ids) if since is not None else ():
                query = select(uses.c.home_id, uses.c.use_id).where(
                    uses.c.home_id.in_(chunk), uses.c.created_at >= since
                )
                for row in conn.execute(query):
                    stored.setdefault(row.home_id, set()).add(row.use_id)
        return PassReads(read_at, answers, announced, since, stored)

    def process_home(self, home_id: str, reads: PassReads | None = None) -> int:
        """Ingest the stored uses the engine has not seen and store their classifications.

        ``reads``: what :meth:`read_pass` read for the pass this home is part of.
        """
        started = time.perf_counter()
        with self.lock(home_id), self.db.begin() as conn:
            lock_home_in_transaction(conn, home_id, ENGINE)  # one worker at a time
            home = self._load(conn, home_id)
            answers = self._apply_answers(conn, home_id, home, reads)
            announced = len(home.announced)
            self._apply_announcements(conn, home_id, home, reads)
            read_at = datetime.now(UTC) if reads is None else reads.read_at
            since = None if home.uses_read_at is None else home.uses_read_at - USE_READ_OVERLAP
            new = []
            if since is None or self._has_new_uses(conn, home_id, home, since, reads):
                new = load_uses(conn, home_id, exclude=home.known, created_since=since)
            if not new:
                home.uses_read_at = read_at
                return 0
            evs, features = self._events_of(conn, home_id, new)
            now = self.clock()
            labels = len(home.engine.labels)
            # as of the newest use, not the clock: the engine drops announcements older than its
            # window as of this instant, and processing lag (minutes of simulated time at the
            # demo's speed) must not drop one before the use it announced is ingested
            result = home.engine.ingest(new, evs, max(u.t for u in new), features=features)
            home.known.update(u.use_id for u in new)
            home.uses_read_at = read_at  # only once they are in: a failure reads them again
            rows = _classification_rows(result)
            insert_classifications(conn, home_id, rows, now)
            self._store_guided(conn, home_id, home)
            only_uses = (
                answers == 0
                and len(home.announced) == announced
                and len(home.engine.labels) == labels
                and home.version > 0
            )
            if only_uses and time.monotonic() - home.saved_at < self.snapshot_every_s:
                home.unsaved = True
                self._set_preview(home_id, home.engine.preview_model())
            else:
                self._save(conn, home_id, home, now)
        metrics.CLASSIFICATION_SECONDS.observe(time.perf_counter() - started)
        metrics.USES_CLASSIFIED.inc(len(new))
        self.listener.classified(home_id, sse_rows(result, new, provisional=False))
        return len(new)

    @staticmethod
    def _has_new_uses(
        conn: Connection, home_id: str, home: _Home, since: datetime, reads: PassReads | None
    ) -> bool:
        """Whether a use stored since ``since`` is not ingested yet: ids only, as most passes
        find none (every pairing dirties its home), and reading whole uses cost as much as
        ingesting one once the overlap spans the home's history (a replay in minutes)."""
        if reads is not None and reads.stored_since is not None and reads.stored_since <= since:
            ids: Iterable[str] = reads.stored_use_ids.get(home_id, ())
        else:
            query = select(uses.c.use_id).where(
                uses.c.home_id == home_id, uses.c.created_at >= since
            )
            ids = conn.execute(query).scalars()
        return any(use_id not in home.known for use_id in ids)

    def _events_of(
        self, conn: Connection, home_id: str, new: list[WaterUse]
    ) -> tuple[list[Event], dict[str, TransientFeatures]]:
        """The events of ``new`` and the transient features the pairer already computed."""
        ids = [e for u in new for e in u.event_ids]
        handed = dict(self.paired_events(home_id, ids)) if self.paired_events is not None else {}
        evs = [event for event, _ in handed.values()]
        evs += load_events(conn, [i for i in ids if i not in handed], home_id)
        evs.sort(key=lambda e: (e.t, e.event_id))
        return evs, {i: tf for i, (_, tf) in handed.items()}

    def preview(
        self,
        home_id: str,
        new: list[WaterUse],
        evs: list[Event],
        features: Mapping[str, TransientFeatures],
    ) -> None:
        """Publish a provisional classification of uses paired but not stored yet.

        Runs on the pairing thread without the home's lock, on the :class:`PreviewModel` frozen
        at the engine's last save, so a long ingest of the same home does not hold it up; the
        stored classification follows once the uses settle (:mod:`atlas.engine.preview`).
        """
        model = self.preview_model(home_id)
        result = model.classify(new, evs, features)
        self.listener.classified(home_id, sse_rows(result, new, provisional=True))

    def preview_model(self, home_id: str) -> PreviewModel:
        """The home's preview model, loading its engine the first time (under its lock)."""
        model = self._previews.get(home_id)
        if model is None:  # first use since this process started
            with self.lock(home_id), self.db.connect() as conn:
                model = self._load(conn, home_id).engine.preview_model()
            self._set_preview(home_id, model)
        return model

    def cached_preview(self, home_id: str) -> PreviewModel | None:
        """The home's preview model as of its engine's last change, if loaded."""
        return self._previews.get(home_id)

    # ------------------------------------------------------------------ scheduled work

    def run_round(self, home_id: str, due: datetime) -> RoundOutcome:
        """Draw the round due at ``due`` and store its requests as ``planned`` (idempotent).

        A round run late (catch-up after downtime) draws only uses still answerable when its
        requests can go out: now, or the end of quiet hours if it is late in the evening.
        """
        with self.lock(home_id), self.db.begin() as conn:
            lock_home_in_transaction(conn, home_id, ENGINE)  # one worker at a time
            home = self._load(conn, home_id)
            self._apply_answers(conn, home_id, home)
            engine = home.engine
            send_at = next_awake(max(due, self.clock()), engine.tz, engine.config.timetable)
            plan = engine.plan_round(due, send_at=send_at)
            rows = [self._request_row(conn, home, r, send_at) for r in plan.requests]
            new_ids = insert_planned(conn, home_id, rows, self.clock())
            if plan.requests:
                self._save(conn, home_id, home, due)
        _LOGGER.info("round for %s at %s: %s (%d new)", home_id, due, plan.reason, len(new_ids))
        if new_ids:
            self.listener.requests_planned(home_id)
        return RoundOutcome(plan, new_ids)

    def _request_row(self, conn: Connection, home: _Home, req, send_at: datetime) -> dict:
        use = next(u for u in load_uses(conn, None, only=[req.use_id]))
        tz = ZoneInfo(home.engine.spec.model.timezone)
        return {
            "request_id": req.request_id,
            "round": req.day,
            "slot": int(req.request_id.rsplit("-", 1)[1]),
            "use_id": req.use_id,
            "choices": list(req.choices),
            "prompt": describe_use(use.t_open, use.t_close, use.lines, send_at, tz),
            "expires_at": req.expires_at,
            "inclusion_prob": req.inclusion_prob,
            "is_audit": req.is_audit,
            "predicted": {
                "model_version": model_version_name(req.model_version),
                "labels": dict(req.predicted),
                "strategy": req.strategy,
            },
        }

    def retrain(self, home_id: str) -> int:
        """Apply new answers, refit, re-classify recent uses; returns the model version."""
        with self.lock(home_id), self.db.begin() as conn:
            lock_home_in_transaction(conn, home_id, ENGINE)  # one worker at a time
            home = self._load(conn, home_id)
            applied = self._apply_answers(conn, home_id, home)
            now = self.clock()
            if not applied and home.version:
                return home.engine.model_version
            version = home.engine.retrain(now)
            result = self._reclassify_recent(home)
            insert_classifications(conn, home_id, _classification_rows(result), now)
            self._save(conn, home_id, home, now)
        _LOGGER.info("retrained %s: model m%d after %d new answers", home_id, version, applied)
        return version

    def _reclassify_recent(self, home: _Home) -> list[UseClassification]:
        eng = home.engine
        if not home.known:
            return []
        return eng.classify(eng.rows.use_ids[-RECLASSIFY_RECENT:])

    def refit_codebook(self, home_id: str, due: datetime) -> str | None:
        """Fit the codebook on every event of the home when due; returns its version."""
        with self.lock(home_id), self.db.begin() as conn:
            lock_home_in_transaction(conn, home_id, ENGINE)  # one worker at a time
            home = self._load(conn, home_id)
            if not home.engine.codebook_due(due):
                return None
            self._apply_answers(conn, home_id, home)
            ids = conn.execute(
                select(events.c.event_id).where(events.c.home_id == home_id)
            ).scalars()
            evs = load_events(conn, list(ids), home_id)
            if not evs:
                return None
            self._take_newest_fleet(conn, home_id, home, due)
            version = home.engine.fit_codebook(evs, due)
            result = self._reclassify_recent(home)
            # as of ``due``, like the snapshot: the fit takes seconds, which are hours of
            # service time in the demo, and the end-of-week model must be read as of midnight
            insert_classifications(conn, home_id, _classification_rows(result), due)
            self._save(conn, home_id, home, due)
        _LOGGER.info("codebook for %s refitted at %s: %s", home_id, due, version)
        return version

    def _take_newest_fleet(
        self, conn: Connection, home_id: str, home: _Home, now: datetime
    ) -> None:
        """The rule for a running home (docs/fleet.md): it moves to the newest fleet version at
        its codebook refit, never in between. The refit re-encodes every event and refits the
        model anyway, so the new fleet's evidence and stand-ins come in with them; between
        refits a newer fleet changes nothing the homeowner sees. Stored with the snapshot (one
        transaction), so every worker restores the engine with this version."""
        latest = latest_fleet_version(conn)
        if latest is None or latest <= (home.fleet_version or 0):
            return
        home.engine.use_fleet(self.fleets.prior(conn, latest, home.engine.spec))
        set_fleet_version(conn, home_id, latest, now.astimezone(UTC))
        home.fleet_version = latest

    def daily_update(self, home_id: str, due: datetime) -> dict:
        """Estimates -> display level; writes home_status and accuracy_history."""
        with self.lock(home_id), self.db.begin() as conn:
            lock_home_in_transaction(conn, home_id, ENGINE)  # one worker at a time
            home = self._load(conn, home_id)
            self._apply_answers(conn, home_id, home)
            before = home.engine.model_version
            report = home.engine.daily_update(due)
            if report.model_version != before:
                # the nightly refit on the day's labels (in week 1, the guided ones): without
                # these rows every use kept the model of the night before it, and the uses of
                # day 1 (before any model) had no valve or fixture classification at all
                rows = _classification_rows(self._reclassify_recent(home))
                insert_classifications(conn, home_id, rows, due.astimezone(UTC))
            level = LEVEL_NAMES[report.decision.level]
            phase = _phase(report.day, level)
            version = model_version_name(report.model_version)
            reason = {
                "text": report.decision.reason,
                "labels": report.n_labels,
                "lumps": [list(lump) for lump in report.lumps],
            }
            changed = upsert_home_status(
                conn,
                home_id,
                phase=phase,
                calibration_day=report.day,
                level=level,
                reason=reason,
                model_version=version,
                now=due.astimezone(UTC),
            )
            estimates = {lv: (e.point, e.lower, e.n_labels) for lv, e in report.estimates.items()}
            append_accuracy(
                conn,
                home_id,
                t=due.astimezone(UTC),
                estimates=estimates,
                displayed=level,
                model_version=version,
            )
            self._save(conn, home_id, home, due)
        status = {
            "phase": phase,
            "calibration_day": report.day,
            "level": level,
            "reason": reason,
            "model_version": version,
            "accuracy": {
                lv: {"estimate": p, "lower_bound": lo, "n_labels": n}
                for lv, (p, lo, n) in estimates.items()
            },
        }
        self.listener.status_changed(home_id, status, changed)
        return status

    # ------------------------------------------------------------------ read-only helpers

    def engine_view(self, home_id: str) -> CalibrationEngine:
        """The current engine of ``home_id`` (for scheduling decisions; do not mutate)."""
        with self.lock(home_id), self.db.connect() as conn:
            return self._load(conn, home_id).engine

    def timetable(self, home_id: str) -> TimetablePolicy:
        return self.engine_view(home_id).config.timetable


def _phase(day: int, level: str) -> str:
    if day <= 7:
        return "week1"
    return "calibrated" if level == "valve" else "calibrating"


def _classification_rows(result: Iterable[UseClassification]) -> list[dict]:
    rows = []
    for c in result:
        if c.predicted:
            version = model_version_name(c.model_version)
            for level, label in c.predicted.items():
                rows.append(
                    {
                        "use_id": c.use_id,
                        "level": level,
                        "label": label,
                        "probability": float(c.confidence.get(level, 0.0)),
                        "model_version": version,
                    }
                )
        elif c.rule_category is not None:
            # a rule decides or abstains; it has no probability, so its decisions store 1.0
            rows.append(
                {
                    "use_id": c.use_id,
                    "level": "category",
                    "label": str(c.rule_category),
                    "probability": 1.0,
                    "model_version": model_version_name(0),
                }
            )
    return rows
