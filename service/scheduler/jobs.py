"""Scheduler jobs: module-level functions (the SQLAlchemy job store pickles them by reference).

Each job is a thin shell: it finds the running :class:`service.scheduler.service.AtlasScheduler`
bound here, calls one pipeline or dispatcher method with the *service-time* instant it was due
(an argument, so a late run computes what was due, not what is due now) and schedules its
successor. All of them are idempotent: a re-run finds the work done (rounds are keyed
(home, round, slot), transitions are guarded), so a catch-up after downtime repeats nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from service import metrics

if TYPE_CHECKING:
    from service.scheduler.service import AtlasScheduler

_LOGGER = logging.getLogger(__name__)
_BOUND: AtlasScheduler | None = None


def bind(scheduler: AtlasScheduler | None) -> None:
    """Make ``scheduler`` the one the job functions act on (None: unbind)."""
    global _BOUND
    _BOUND = scheduler


def _sched() -> AtlasScheduler:
    if _BOUND is None:
        raise RuntimeError("no AtlasScheduler is bound; jobs run only inside `atlas serve`")
    return _BOUND


def _run(kind: str, fn, *args) -> None:
    try:
        fn(*args)
        metrics.JOBS_RUN.labels(kind, "ok").inc()
    except Exception:
        metrics.JOBS_RUN.labels(kind, "error").inc()
        _LOGGER.exception("%s job %s failed", kind, args)
        raise


def round_job(home_id: str, due_iso: str) -> None:
    _run("round", _sched().do_round, home_id, datetime.fromisoformat(due_iso))


def send_job(home_id: str) -> None:
    _run("send", _sched().do_send, home_id)


def daily_job(home_id: str, due_iso: str) -> None:
    _run("daily", _sched().do_daily, home_id, datetime.fromisoformat(due_iso))


def codebook_job(home_id: str, due_iso: str) -> None:
    _run("codebook", _sched().do_codebook, home_id, datetime.fromisoformat(due_iso))


def retrain_job(home_id: str) -> None:
    _run("retrain", _sched().do_retrain, home_id)


def expire_job(home_id: str) -> None:
    _run("expire", _sched().do_expire, home_id)


def alerts_job(due_iso: str) -> None:
    _run("alerts", _sched().do_alerts, datetime.fromisoformat(due_iso))


def running_job(home_id: str, due_iso: str) -> None:
    _run("running", _sched().do_running, home_id, datetime.fromisoformat(due_iso))


def sweep_job() -> None:
    _run("sweep", _sched().do_sweep)


def fleet_job(due_iso: str) -> None:
    _run("fleet", _sched().do_fleet, datetime.fromisoformat(due_iso))
