"""APScheduler 3.11 wired for Atlas: one job store in the service database, one leader.

Facts this relies on (FACTS.md, measured here): ``add_job(..., replace_existing=True)`` before
``start()`` drops the catch-up of missed runs, so a job is added only when ``get_job(id)`` is
None; ``coalesce=True`` with a misfire grace of hours gives one catch-up run after downtime; two
schedulers on one store double-run jobs, so only the leader (:mod:`service.scheduler.leader`)
runs one. Job ids carry the service-time instant (``round:<home>:<iso>``): a date job is removed
by APScheduler right after it is submitted, so a successor with its own id can never collide
with it, and a restart finds exactly the jobs still due.

Shutdown is ours, not APScheduler's: ``BackgroundScheduler.shutdown(wait=True)`` waits for running
jobs while it holds the job-store lock, and a running job that schedules its successor
(``get_job``/``add_job`` take that same lock) then waits forever (seen as a hung round job in the
PostgreSQL catch-up test, where the round is slower). :class:`_DrainingScheduler` first stops job
submission, then waits for the running jobs with no lock held, then shuts down.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from service.push.dispatcher import Dispatcher
from service.runtime.clock import Clock
from service.runtime.pipeline import HomePipeline
from service.scheduler import jobs
from service.scheduler.timing import next_daily, next_round
from service.storage.homes import list_home_ids
from service.storage.requestplans import closed_answers

_LOGGER = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"


class _SharedEngineJobStore(SQLAlchemyJobStore):
    """The job store on the service's engine, which it must not dispose when it stops."""

    def shutdown(self) -> None:
        """APScheduler's version disposes the engine; the pipeline still uses it."""


class _DrainingScheduler(BackgroundScheduler):
    """A ``BackgroundScheduler`` whose shutdown cannot deadlock with a job adding a job."""

    def __init__(self, executor: ThreadPoolExecutor, **options) -> None:
        super().__init__(executors={"default": executor}, **options)
        self._executor = executor
        self._gate = threading.Lock()
        self._draining = False

    def _process_jobs(self):
        # the gate makes "no submission after drain starts" exact: a pass that already checked
        # the state finishes before shutdown continues, and no later pass submits anything
        # (a date job submitted to a stopped executor would be removed from the store unrun)
        with self._gate:
            if self._draining:
                return None
            return super()._process_jobs()

    def shutdown(self, wait: bool = True) -> None:
        with self._gate:
            self._draining = True
        # running jobs may still read and add jobs (their successors are stored): no lock held
        self._executor.shutdown(wait)
        super().shutdown(wait=False)


class AtlasScheduler:
    """Per-home jobs (rounds, sends, daily updates, codebook refits, retraining, expiry).

    ``misfire_grace_s`` is in wall seconds (APScheduler's clock); ``catch_up`` is in service
    time: a round found missed at start-up within it is still drawn (as of its due time).
    """

    def __init__(
        self,
        db: Engine,
        pipeline: HomePipeline,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        misfire_grace_s: float = 6 * 3600.0,
        sweep_s: float = 30.0,
        retrain_debounce_s: float = 60.0,
        catch_up: timedelta = timedelta(hours=12),
    ) -> None:
        self.db = db
        self.pipeline = pipeline
        self.dispatcher = dispatcher
        self.clock = clock
        self.misfire_grace_s = misfire_grace_s
        self.sweep_s = sweep_s
        self.retrain_debounce_s = retrain_debounce_s
        self.catch_up = catch_up
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        """Start scheduling (call only on the leader); reconciles every home's jobs."""
        with self._lock:
            if self.running:
                return
            self._scheduler = _DrainingScheduler(
                ThreadPoolExecutor(2),
                jobstores={"default": _SharedEngineJobStore(engine=self.db, tablename=JOB_TABLE)},
                job_defaults={
                    "coalesce": True,
                    "misfire_grace_time": int(self.misfire_grace_s),
                    "max_instances": 1,
                },
                timezone=UTC,
            )
            jobs.bind(self)
            self._scheduler.start()
        self.add_once("sweep", jobs.sweep_job, trigger="interval", seconds=self.sweep_s)
        for home_id in self._home_ids():
            self.reconcile(home_id)

    def shutdown(self) -> None:
        """Stop scheduling; running jobs finish first (their work is committed or not at all)."""
        with self._lock:
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=True)
            self._scheduler = None
            jobs.bind(None)

    # ------------------------------------------------------------------ adding jobs

    def add_once(self, job_id: str, func, **trigger_args) -> bool:
        """Add ``job_id`` unless it exists (never replace: that would drop a pending catch-up)."""
        sched = self._scheduler
        if sched is None:
            return False
        if sched.get_job(job_id) is not None:
            return False
        trigger = trigger_args.pop("trigger", "date")
        try:
            sched.add_job(func, trigger, id=job_id, replace_existing=False, **trigger_args)
        except ConflictingIdError:  # added concurrently: the other one does the work
            return False
        return True

    def _at(self, job_id: str, func, due: datetime, args: list) -> bool:
        return self.add_once(job_id, func, run_date=self.clock.to_wall(due), args=args)

    def _has_prefix(self, prefix: str) -> bool:
        sched = self._scheduler
        return sched is not None and any(j.id.startswith(prefix) for j in sched.get_jobs())

    def jobs(self) -> list[tuple[str, datetime | None]]:
        """``(id, next wall run time)`` of every stored job (for tests and ``/readyz``)."""
        sched = self._scheduler
        return [] if sched is None else [(j.id, j.next_run_time) for j in sched.get_jobs()]

    def schedule_round(self, home_id: str, after: datetime) -> datetime | None:
        due = next_round(self.pipeline.engine_view(home_id), after)
        if due is not None:
            self._at(f"round:{home_id}:{due.isoformat()}", jobs.round_job, due,
                     [home_id, due.isoformat()])  # fmt: skip
        return due

    def schedule_daily(self, home_id: str, after: datetime) -> datetime:
        due = next_daily(after, self._tz(home_id))
        self._at(f"daily:{home_id}:{due.isoformat()}", jobs.daily_job, due,
                 [home_id, due.isoformat()])  # fmt: skip
        return due

    def schedule_retrain(self, home_id: str) -> None:
        """Debounced: answers arriving together retrain once."""
        run = datetime.now(UTC) + timedelta(seconds=self.retrain_debounce_s)
        self.add_once(f"retrain:{home_id}", jobs.retrain_job, run_date=run, args=[home_id])

    def reconcile(self, home_id: str) -> None:
        """Make sure the home has its next round and daily update scheduled (after a restart,
        a crash between a job's work and scheduling its successor, or a new home)."""
        now = self.clock.now()
        if not self._has_prefix(f"round:{home_id}:"):
            self.schedule_round(home_id, now - self.catch_up)
        if not self._has_prefix(f"daily:{home_id}:"):
            history = self.pipeline.engine_view(home_id).history
            # a daily update missed by more than the catch-up window is skipped, not replayed:
            # the next one estimates from every label anyway
            after = now - self.catch_up
            if history:
                after = max(after, datetime.fromisoformat(history[-1]["at"]))
            self.schedule_daily(home_id, after)
        self._schedule_expiry(home_id)

    def _schedule_expiry(self, home_id: str) -> None:
        due = self.dispatcher.next_expiry(home_id)
        if due is not None:
            self._at(f"expire:{home_id}:{due.isoformat()}", jobs.expire_job, due, [home_id])

    def _tz(self, home_id: str) -> ZoneInfo:
        return self.pipeline.engine_view(home_id).tz

    def _home_ids(self) -> list[str]:
        with self.db.connect() as conn:
            return list_home_ids(conn)

    # ------------------------------------------------------------------ job bodies

    def do_round(self, home_id: str, due: datetime) -> None:
        # every stored use first: a notification may still be queued (or lost in a crash), and
        # a round drawn without the day's uses would ask nothing
        self.pipeline.process_home(home_id)
        self.pipeline.run_round(home_id, due)
        self.do_send(home_id)
        self.schedule_round(home_id, due)

    def do_send(self, home_id: str) -> None:
        retry_at = self.dispatcher.send_planned(home_id)
        if retry_at is not None:  # quiet hours: send when they end
            self.add_once(f"send:{home_id}:{retry_at.isoformat()}", jobs.send_job,
                          run_date=self.clock.to_wall(retry_at), args=[home_id])  # fmt: skip
        else:
            self._schedule_expiry(home_id)

    def do_daily(self, home_id: str, due: datetime) -> None:
        self.pipeline.daily_update(home_id, due)
        self.dispatcher.expire(home_id)
        if self.pipeline.engine_view(home_id).codebook_due(due):
            self._at(f"codebook:{home_id}:{due.isoformat()}", jobs.codebook_job, due,
                     [home_id, due.isoformat()])  # fmt: skip
        self.schedule_daily(home_id, due)

    def do_codebook(self, home_id: str, due: datetime) -> None:
        self.pipeline.refit_codebook(home_id, due)

    def do_retrain(self, home_id: str) -> None:
        self.pipeline.retrain(home_id)

    def do_expire(self, home_id: str) -> None:
        self.dispatcher.expire(home_id)
        self._schedule_expiry(home_id)

    def do_sweep(self) -> None:
        """Safety net: new uses missed by a notification, answers from other workers, jobs."""
        for home_id in self._home_ids():
            try:
                self.pipeline.process_home(home_id)
                if self._unapplied_answers(home_id):
                    self.schedule_retrain(home_id)
                self.reconcile(home_id)
            except Exception:
                _LOGGER.exception("sweep of home %s failed", home_id)

    def _unapplied_answers(self, home_id: str) -> bool:
        engine = self.pipeline.engine_view(home_id)
        open_ids = {r.request_id for r in engine.requests if r.state == "open"}
        with self.db.connect() as conn:
            return any(rid in open_ids for rid, _, _ in closed_answers(conn, home_id))
