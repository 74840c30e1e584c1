"""Who runs the scheduler: the holder of a PostgreSQL advisory lock (SQLite: this process).

Two APScheduler instances on one job store double-run jobs (3 of 4 jobs ran twice;
docs/service.md, 'Scheduler'), so exactly one process schedules. On PostgreSQL the leader holds
``pg_try_advisory_lock(KEY)`` on a dedicated connection: if the process dies the connection
closes and the lock is free; a standby retries every ``retry_s`` seconds and takes over. A
leader that loses its connection steps down at once.

The lock key is derived from the database and the schema the connection works in (its
``search_path``): the job store table lives in that schema, so one deployment = one schema = one
leader, and two deployments (or two test runs, each in its own schema) sharing a PostgreSQL
server never wait for each other's leader.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

from service import metrics
from service.storage.homelock import advisory_key

_LOGGER = logging.getLogger(__name__)


def leader_lock_key(database: str, schema: str) -> int:
    """The advisory-lock key (a signed 64-bit number) of the scheduler of ``database.schema``."""
    return advisory_key(f"atlas-scheduler:{database}.{schema}")


def connection_lock_key(conn: Connection) -> int:
    """:func:`leader_lock_key` of the database and schema ``conn`` works in."""
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    return leader_lock_key(database, schema)


class LeaderElection:
    """Calls ``on_elected`` when this process becomes leader and ``on_deposed`` when it stops."""

    def __init__(
        self,
        db: Engine,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        *,
        retry_s: float = 3.0,
        key: int | None = None,
    ) -> None:
        """``key`` None: derived from the connection's database and schema (module docstring)."""
        self.db = db
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.retry_s = retry_s
        self.key = key
        self.is_leader = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="atlas-leader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        if self.db.dialect.name != "postgresql":
            self._become_leader()
            self._stop.wait()
            self._step_down()
            return
        while not self._stop.is_set():
            try:
                self._hold_lock()
            except Exception as exc:  # connection lost: step down, retry
                _LOGGER.warning("leader lock connection failed: %s", exc)
            self._step_down()
            self._stop.wait(self.retry_s)

    def _hold_lock(self) -> None:
        with self.db.connect() as conn:
            key = self.key if self.key is not None else connection_lock_key(conn)
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()  # the lock is session-level: no transaction stays open holding it
            if not got:
                return
            self._become_leader()
            try:
                while not self._stop.wait(self.retry_s):
                    conn.execute(text("SELECT 1"))  # raises when the database went away
                    conn.commit()
            finally:
                self._step_down()
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except Exception:  # the connection is gone; so is the lock
                    pass

    def _become_leader(self) -> None:
        if not self.is_leader:
            self.is_leader = True
            _LOGGER.info("elected scheduler leader")
            metrics.SCHEDULER_LEADER.set(1)
            self.on_elected()

    def _step_down(self) -> None:
        if self.is_leader:
            self.is_leader = False
            _LOGGER.info("no longer the scheduler leader")
            metrics.SCHEDULER_LEADER.set(0)
            self.on_deposed()
