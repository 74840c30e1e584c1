"""APScheduler 3.11 wired for Atlas: one job store in the service database, one leader.

Facts this relies on (measured with APScheduler 3.11 and its SQLAlchemy job store;
docs/service.md, 'Scheduler'): ``add_job(..., replace_existing=True)`` before ``start()`` drops
the catch-up of missed runs, so a job is added only when ``get_job(id)`` is None;
``coalesce=True`` with a misfire grace of hours gives one catch-up run after downtime; two
schedulers on one store double-run jobs, so only the leader (:mod:`service.scheduler.leader`)
runs one. Job ids carry the service-time instant (``round:<home>:<iso>``): a date job is removed
by APScheduler right after it is submitted, so a successor with its own id can never collide
with it, and a restart finds exactly the jobs still due.

Time is the service's: a job is due once the service clock has reached it (the job store
asks the clock). Under a stepped clock (:class:`service.clock.VirtualClock`, the demo)
that clock moves only when its driver advances it, and the driver advances only once the
scheduler is :meth:`AtlasScheduler.idle`, so: jobs run one at a time, in due order (two runs
of the same seeds do the same), none is ever "missed" (APScheduler's misfire check compares
wall times), the loop sleeps until woken (:meth:`AtlasScheduler.wakeup`, after each advance),
and there is no sweep (the driver waits for every notification, so it would find nothing).

Shutdown is ours, not APScheduler's: ``BackgroundScheduler.shutdown(wait=True)`` waits for running
jobs while it holds the job-store lock, and a running job that schedules its successor
(``get_job``/``add_job`` take that same lock) then waits forever (seen as a hung round job in the
PostgreSQL catch-up test, where the round is slower). :class:`_DrainingScheduler` first stops job
submission, then waits for the running jobs with no lock held, then shuts down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from service import metrics
from service.alerting import AlertCheck
from service.clock import Clock
from service.fleetbuild import rebuild_fleet
from service.push.dispatcher import Dispatcher
from service.scheduler import jobs
from service.scheduler.timing import next_daily, next_round
from service.storage.fleets import list_fleet_versions
from service.storage.homes import list_home_ids
from service.storage.requestplans import closed_answers

if TYPE_CHECKING:  # the runtime builds the pipeline and hands it in (the runtime imports us)
    from service.runtime.pipeline import HomePipeline

_LOGGER = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
#: The first instant after a request's expiry that a datetime can hold.
EXPIRY_STEP = timedelta(microseconds=1)
#: A catch-up job is added only if APScheduler will still run it this long after it is added.
MISFIRE_MARGIN = timedelta(minutes=1)


class _SharedEngineJobStore(SQLAlchemyJobStore):
    """The job store on the service's engine (which it must not dispose when it stops), whose
    jobs are due once the service clock has reached them."""

    def __init__(self, clock: Clock, **options) -> None:
        super().__init__(**options)
        self.clock = clock

    def service_now(self) -> datetime:
        """The service clock's now on the wall timeline of the stored run times."""
        return self.clock.to_wall(self.clock.now())

    def get_due_jobs(self, now: datetime) -> list:
        # the real clocks' now is APScheduler's own (a moment earlier); a virtual clock's lies
        # in the past of it, and only its advances make jobs due
        return super().get_due_jobs(min(now, self.service_now()))

    def shutdown(self) -> None:
        """APScheduler's version disposes the engine; the pipeline still uses it."""


class _TrackingExecutor(ThreadPoolExecutor):
    """APScheduler's thread pool, also saying which jobs it holds (submitted, not finished)."""

    def running_job_ids(self) -> set[str]:
        if self._lock is None:  # not started
            return set()
        with self._lock:  # the base class counts instances per job id under this lock
            return set(self._instances)


class _DrainingScheduler(BackgroundScheduler):
    """A ``BackgroundScheduler`` whose shutdown cannot deadlock with a job adding a job."""

    def __init__(
        self, executor: _TrackingExecutor, store: _SharedEngineJobStore, **options
    ) -> None:
        super().__init__(executors={"default": executor}, jobstores={"default": store}, **options)
        self._executor = executor
        self._store = store
        self._gate = threading.Lock()
        self._draining = False

    def _process_jobs(self):
        # the gate makes "no submission after drain starts" exact: a pass that already checked
        # the state finishes before shutdown continues, and no later pass submits anything
        # (a date job submitted to a stopped executor would be removed from the store unrun)
        with self._gate:
            if self._draining:
                return None
            wait = super()._process_jobs()
        # a stepped clock's jobs all lie in the wall past: only an advance (a wakeup) or a new
        # job can make one due, so wait for those instead of polling
        return None if self._store.clock.stepped else wait

    def running_job_ids(self) -> set[str]:
        return self._executor.running_job_ids()

    def next_run_time(self) -> datetime | None:
        """The earliest stored run time (wall timeline), without loading any job."""
        return self._store.get_next_run_time()

    def settled(self) -> bool:
        """No job runs and none is due by the service clock.

        Under the job stores' lock, which a pass holds from reading the due jobs until it has
        submitted them, and a job holds while it adds its successor: a job is always seen
        either stored or running, never in between.
        """
        with self._jobstores_lock:
            if self.running_job_ids():
                return False
            return not self._store.get_due_jobs(self._store.service_now())

    def shutdown(self, wait: bool = True) -> None:
        with self._gate:
            self._draining = True
        # running jobs may still read and add jobs (their successors are stored): no lock held
        self._executor.shutdown(wait)
        super().shutdown(wait=False)


class AtlasScheduler:
    """Per-home jobs (rounds, sends, daily updates, codebook refits, retraining, expiry), and
    the fleet's rebuild every ``fleet.rebuild_days`` (the pipeline's fleet settings).

    ``misfire_grace_s`` is in wall seconds (APScheduler's clock); ``catch_up`` is in service
    time: a round found missed at start-up within it is still drawn (as of its due time).
    ``route`` (several workers): the sweep hands every home to its owning worker to pair and
    classify instead of classifying them all here (None: classify here, one process).
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
        route: Callable[[set[str]], None] | None = None,
        threads: int = 2,
        alerts: AlertCheck | None = None,
    ) -> None:
        self.db = db
        self.pipeline = pipeline
        self.dispatcher = dispatcher
        self.clock = clock
        self.misfire_grace_s = misfire_grace_s
        self.sweep_s = sweep_s
        self.retrain_debounce_s = retrain_debounce_s
        self.catch_up = catch_up
        self.route = route
        self.threads = threads
        self.alerts = alerts
        #: where a job's engine work runs: here by default; the runtime sets the home's owner
        #: (service/scheduler/delegate.py)
        self.work: Callable[[str, str, datetime | None], dict] = self.home_work
        # answers already seen applied by the engine, per home: the sweep loads an engine
        # only when an answer it has not seen yet exists
        self._applied_seen: dict[str, set[str]] = {}
        self._scheduler: _DrainingScheduler | None = None
        self._lock = threading.Lock()
        self._started = False  # set once start() has reconciled every home

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        """Start scheduling (call only on the leader); reconciles every home's jobs."""
        stepped = self.clock.stepped  # see the module docstring
        with self._lock:
            if self.running:
                return
            self._scheduler = _DrainingScheduler(
                _TrackingExecutor(1 if stepped else self.threads),
                _SharedEngineJobStore(self.clock, engine=self.db, tablename=JOB_TABLE),
                job_defaults={
                    "coalesce": True,
                    "misfire_grace_time": None if stepped else int(self.misfire_grace_s),
                    "max_instances": 1,
                },
                timezone=UTC,
            )
            jobs.bind(self)
            self._scheduler.start()
        if not stepped:
            self.add_once("sweep", jobs.sweep_job, trigger="interval", seconds=self.sweep_s)
        job_ids = {j.id for j in self._scheduler.get_jobs()}
        self.reconcile_fleet(job_ids)
        self.reconcile_alerts(job_ids)
        for home_id in self._home_ids():
            self.reconcile(home_id, job_ids)
        self._started = True

    def shutdown(self) -> None:
        """Stop scheduling; running jobs finish first (their work is committed or not at all)."""
        with self._lock:
            self._started = False
            if self._scheduler is not None and self._scheduler.running:
                self._scheduler.shutdown(wait=True)
            self._scheduler = None
            jobs.bind(None)

    def idle(self) -> bool:
        """Started (every home reconciled), no job running and none due by the service clock:
        what the driver of a stepped clock waits for before it advances the clock."""
        sched = self._scheduler
        return self._started and sched is not None and sched.settled()

    def wakeup(self) -> None:
        """Look for due jobs now: a stepped clock has moved (a running clock needs no call)."""
        sched = self._scheduler
        if sched is not None and sched.running:
            sched.wakeup()

    def next_due(self) -> datetime | None:
        """The service instant of the earliest stored job (None: none, or not started)."""
        sched = self._scheduler
        run = None if sched is None else sched.next_run_time()
        return None if run is None else self.clock.from_wall(run)

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

    def _has_prefix(self, prefix: str, job_ids: set[str] | None = None) -> bool:
        """Whether a job ``prefix...`` is stored, or submitted and not finished.

        APScheduler removes a date job from the store when it submits it. Without the
        executor's view a sweep re-created a running round (which was then sent twice) or a
        queued one (then skipped as "maximum number of running instances")."""
        sched = self._scheduler
        if sched is not None and any(j.startswith(prefix) for j in sched.running_job_ids()):
            return True
        if job_ids is None:
            sched = self._scheduler
            if sched is None:
                return False
            job_ids = {j.id for j in sched.get_jobs()}
        return any(j.startswith(prefix) for j in job_ids)

    def remove_job(self, job_id: str) -> bool:
        """Remove the stored job ``job_id`` (False: no such job, or not started); a job being
        run finishes. For operators and tests that replace a job with another."""
        sched = self._scheduler
        if sched is None or sched.get_job(job_id) is None:
            return False
        try:
            sched.remove_job(job_id)
        except JobLookupError:  # removed or submitted meanwhile
            return False
        return True

    def jobs(self) -> list[tuple[str, datetime | None]]:
        """``(id, next wall run time)`` of every stored job (for tests and ``/readyz``)."""
        sched = self._scheduler
        return [] if sched is None else [(j.id, j.next_run_time) for j in sched.get_jobs()]

    def schedule_round(self, home_id: str, after: datetime) -> datetime | None:
        due = next_round(self.pipeline.engine_view(home_id), after)
        if due is not None:
            self.schedule_round_at(home_id, due)
        return due

    def schedule_round_at(self, home_id: str, due: datetime) -> None:
        """A round of ``home_id`` at exactly ``due`` (unless that job exists): the successor a
        round's work reported, or one placed by hand (an operator, a test), where
        :meth:`schedule_round` computes the due time from the engine."""
        self._at(
            f"round:{home_id}:{due.isoformat()}", jobs.round_job, due, [home_id, due.isoformat()]
        )

    def schedule_daily(self, home_id: str, after: datetime) -> datetime:
        due = next_daily(after, self._tz(home_id))
        self._daily_at(home_id, due)
        return due

    def _daily_at(self, home_id: str, due: datetime) -> None:
        self._at(
            f"daily:{home_id}:{due.isoformat()}", jobs.daily_job, due, [home_id, due.isoformat()]
        )

    def schedule_retrain(self, home_id: str) -> None:
        """Debounced: answers arriving together retrain once (``retrain_debounce_s`` wall
        seconds later; under a virtual clock, service seconds: its wall timeline runs at 1x)."""
        run = self.clock.to_wall(self.clock.now()) + timedelta(seconds=self.retrain_debounce_s)
        self.add_once(f"retrain:{home_id}", jobs.retrain_job, run_date=run, args=[home_id])

    def reconcile(self, home_id: str, job_ids: set[str] | None = None) -> None:
        """Make sure the home has its next round and daily update scheduled (after a restart,
        a crash between a job's work and scheduling its successor, or a new home).

        ``job_ids``: the stored job ids, read once by a caller reconciling every home (each
        read of the job store unpickles every job)."""
        now = self.clock.now()
        if job_ids is None and self._scheduler is not None:
            job_ids = {j.id for j in self._scheduler.get_jobs()}
        earliest = self.earliest_catch_up(now)
        if not self._has_prefix(f"round:{home_id}:", job_ids):
            self.schedule_round(home_id, earliest)
        if not self._has_prefix(f"daily:{home_id}:", job_ids):
            history = self.pipeline.engine_view(home_id).history
            # a daily update missed by more than the catch-up window is skipped, not replayed:
            # the next one estimates from every label anyway
            after = earliest
            if history:
                after = max(after, datetime.fromisoformat(history[-1]["at"]))
            self.schedule_daily(home_id, after)
        self._schedule_expiry(home_id)

    def reconcile_alerts(self, job_ids: set[str] | None = None) -> None:
        """Make sure the next leak check of every home is scheduled (now, when none is)."""
        if self.alerts is not None and not self._has_prefix("alerts:", job_ids):
            self._alerts_at(self.clock.now())

    def _alerts_at(self, due: datetime) -> None:
        self._at(f"alerts:{due.isoformat()}", jobs.alerts_job, due, [due.isoformat()])

    def _running_at(self, home_id: str, due: datetime) -> None:
        job_id = f"running:{home_id}:{due.isoformat()}"
        self._at(job_id, jobs.running_job, due, [home_id, due.isoformat()])

    def reconcile_fleet(self, job_ids: set[str] | None = None) -> None:
        """Make sure the next fleet rebuild is scheduled (unless ``fleet.rebuild_days`` is 0):
        ``rebuild_days`` after the newest version was built, now when there is none, and no
        earlier than a catch-up may be (so a rebuild missed in downtime runs once)."""
        every = self.pipeline.fleets.settings.rebuild_days
        if every <= 0 or self._has_prefix("fleet:", job_ids):
            return
        with self.db.connect() as conn:
            versions = list_fleet_versions(conn)
        now = self.clock.now()
        due = now if not versions else versions[0].built_at + timedelta(days=every)
        self._fleet_at(max(due, self.earliest_catch_up(now)))

    def _fleet_at(self, due: datetime) -> None:
        self._at(f"fleet:{due.isoformat()}", jobs.fleet_job, due, [due.isoformat()])

    def earliest_catch_up(self, now: datetime) -> datetime:
        """The earliest service instant a job added now may be due at: ``catch_up`` back, but
        not so far that APScheduler finds it past the misfire grace (wall time).

        Such a job is never run: APScheduler logs "Run time of job ... was missed" and drops
        it, the next sweep found the home without its job and added it again, and the warning
        came back every sweep (53 times in 18 minutes). A stored job missed during downtime is
        still reported once, by APScheduler; its replacement lies within the grace.
        """
        earliest = now - self.catch_up
        if self.clock.stepped:  # nothing is missed under a stepped clock (module docstring)
            return earliest
        grace = max(timedelta(0), timedelta(seconds=self.misfire_grace_s) - MISFIRE_MARGIN)
        return max(earliest, self.clock.from_wall(datetime.now(UTC) - grace))

    def _schedule_expiry(self, home_id: str) -> None:
        expires_at = self.dispatcher.next_expiry(home_id)
        if expires_at is not None:
            # a request expires once it is past its expiry (an answer at that very instant still
            # counts): at expires_at itself the job would expire nothing and add itself again,
            # forever under a virtual clock, which does not move while the job runs
            due = expires_at + EXPIRY_STEP
            self._at(f"expire:{home_id}:{due.isoformat()}", jobs.expire_job, due, [home_id])

    def _tz(self, home_id: str) -> ZoneInfo:
        return self.pipeline.engine_view(home_id).tz

    def _home_ids(self) -> list[str]:
        with self.db.connect() as conn:
            return list_home_ids(conn)

    # ------------------------------------------------------------------ job bodies

    def home_work(self, kind: str, home_id: str, due: datetime | None) -> dict:
        """The engine work of a job, done in this process; returns what the leader needs to
        schedule the successors (so it need not load the engine). Runs on the home's owner.

        Logs its wall and CPU time (this thread's): the capacity model's cost per job kind.
        """
        wall, cpu = time.perf_counter(), time.thread_time()
        out = self._home_work(kind, home_id, due)
        _LOGGER.info(
            "%s of %s: %.3f s, %.3f s CPU",
            kind,
            home_id,
            time.perf_counter() - wall,
            time.thread_time() - cpu,
        )
        return out

    def _home_work(self, kind: str, home_id: str, due: datetime | None) -> dict:
        pipe = self.pipeline
        if kind == "round":
            assert due is not None
            # every stored use first: a notification may still be queued (or lost in a crash),
            # and a round drawn without the day's uses would ask nothing
            pipe.process_home(home_id)
            pipe.run_round(home_id, due)
            nxt = next_round(pipe.engine_view(home_id), due)
            when = None if nxt is None else nxt.isoformat()
            # the pushes too: one HTTP POST per request, which made the leader's job threads
            # the bottleneck of a round burst when it did all of them
            return self._send_here(home_id) | {"next_round": when}
        if kind == "send":
            return self._send_here(home_id)
        if kind == "daily":
            assert due is not None
            pipe.daily_update(home_id, due)
            engine = pipe.engine_view(home_id)
            return {
                "codebook_due": engine.codebook_due(due),
                "next_daily": next_daily(due, engine.tz).isoformat(),
            }
        if kind == "codebook":
            assert due is not None
            pipe.refit_codebook(home_id, due)
            return {}
        if kind == "retrain":
            pipe.retrain(home_id)
            return {}
        raise ValueError(f"kind={kind!r} should be round, send, daily, codebook or retrain.")

    def _send_here(self, home_id: str) -> dict:
        retry_at = self.dispatcher.send_planned(home_id)
        return {"retry_at": None if retry_at is None else retry_at.isoformat()}

    def do_round(self, home_id: str, due: datetime) -> None:
        out = self.work("round", home_id, due)
        self._after_send(home_id, out["retry_at"])
        if out.get("next_round"):
            self.schedule_round_at(home_id, datetime.fromisoformat(out["next_round"]))

    def do_send(self, home_id: str) -> None:
        self._after_send(home_id, self.work("send", home_id, None)["retry_at"])

    def _after_send(self, home_id: str, retry_at: str | None) -> None:
        if retry_at is not None:  # quiet hours: send when they end
            self.add_once(
                f"send:{home_id}:{retry_at}",
                jobs.send_job,
                run_date=self.clock.to_wall(datetime.fromisoformat(retry_at)),
                args=[home_id],
            )
        else:
            self._schedule_expiry(home_id)

    def do_daily(self, home_id: str, due: datetime) -> None:
        out = self.work("daily", home_id, due)
        self.dispatcher.expire(home_id)
        if out["codebook_due"]:
            self._at(
                f"codebook:{home_id}:{due.isoformat()}",
                jobs.codebook_job,
                due,
                [home_id, due.isoformat()],
            )
        self._daily_at(home_id, datetime.fromisoformat(out["next_daily"]))

    def do_codebook(self, home_id: str, due: datetime) -> None:
        self.work("codebook", home_id, due)

    def do_retrain(self, home_id: str) -> None:
        self.work("retrain", home_id, None)

    def do_expire(self, home_id: str) -> None:
        self.dispatcher.expire(home_id)
        self._schedule_expiry(home_id)

    def do_alerts(self, due: datetime) -> None:
        """Check every home for leaks as of ``due`` and push what is new (and what failed
        before), then schedule the next check, and a check of each home with water running at
        the moment it reaches the limit. Here on the leader: it reads stored data and loads no
        engine. One job for all homes: a home with nothing new costs three indexed reads."""
        assert self.alerts is not None
        try:
            for home_id in self._home_ids():
                try:
                    self._check_alerts(home_id, due)
                except Exception:  # the next check tries again; the other homes go on
                    _LOGGER.exception("leak check of %s failed", home_id)
        finally:
            self._alerts_at(due + self.alerts.period())

    def do_running(self, home_id: str, due: datetime) -> None:
        """Check one home at the moment an open still running reaches the limit."""
        self._check_alerts(home_id, due)

    def _check_alerts(self, home_id: str, due: datetime) -> None:
        assert self.alerts is not None
        result = self.alerts.check(home_id, due)
        for alert in result.new:
            metrics.ALERTS_RAISED.labels(alert.kind).inc()
            _LOGGER.warning("alert %s for %s: %s", alert.kind, home_id, alert.message)
        if result.new or self.dispatcher.has_unpushed_alerts(home_id):
            self.dispatcher.push_alerts(home_id)
        if result.deadlines and result.deadlines[0] < due + self.alerts.period():
            self._running_at(home_id, result.deadlines[0])

    def do_fleet(self, due: datetime) -> None:
        """Rebuild the fleet here, on the leader (it reads the homes' stored data and takes no
        home's lock), then schedule the next rebuild."""
        settings = self.pipeline.fleets.settings
        try:
            rebuild_fleet(self.db, settings, due)
        finally:  # a failed rebuild waits for the next one, not for every sweep to retry it
            if settings.rebuild_days > 0:
                self._fleet_at(due + timedelta(days=settings.rebuild_days))

    def do_sweep(self) -> None:
        """Safety net: new uses missed by a notification, answers from other workers, jobs."""
        home_ids = self._home_ids()
        if self.route is not None:  # each owner pairs and classifies its homes
            self.route(set(home_ids))
        sched = self._scheduler
        job_ids = None if sched is None else {j.id for j in sched.get_jobs()}
        self.reconcile_fleet(job_ids)
        self.reconcile_alerts(job_ids)
        for home_id in home_ids:
            try:
                if self.route is None:
                    self.pipeline.process_home(home_id)
                if self.unapplied_answers(home_id):
                    self.schedule_retrain(home_id)
                self.reconcile(home_id, job_ids)
            except Exception:
                _LOGGER.exception("sweep of home %s failed", home_id)

    def unapplied_answers(self, home_id: str) -> bool:
        """Whether an answer in the database is still open in the home's engine (the sweep
        then schedules a retrain).

        The engine (a snapshot load when its owner saved a newer one) is read only when an
        answer this scheduler has not seen applied exists; applied ones are remembered. Public
        because that economy (no engine load per home per sweep) is tested directly.
        """
        with self.db.connect() as conn:
            answered = {rid for rid, _, _ in closed_answers(conn, home_id)}
        seen = self._applied_seen.setdefault(home_id, set())
        if answered <= seen:
            return False
        engine = self.pipeline.engine_view(home_id)
        open_ids = {r.request_id for r in engine.requests if r.state == "open"}
        seen |= answered - open_ids
        return bool(answered & open_ids)
