"""Who runs the scheduler: the holder of a PostgreSQL advisory lock (SQLite: this process).

Two APScheduler instances on one job store double-run jobs (FACTS.md), so exactly one process
schedules. On PostgreSQL the leader holds ``pg_try_advisory_lock(KEY)`` on a dedicated
connection: if the process dies the connection closes and the lock is free; a standby retries
every ``retry_s`` seconds and takes over. A leader that loses its connection steps down at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine, text

_LOGGER = logging.getLogger(__name__)

#: Advisory-lock key of the scheduler leader ("atlas-sc" as a 63-bit number).
LEADER_LOCK_KEY = 0x61746C61732D7363


class LeaderElection:
    """Calls ``on_elected`` when this process becomes leader and ``on_deposed`` when it stops."""

    def __init__(
        self,
        db: Engine,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        *,
        retry_s: float = 3.0,
        key: int = LEADER_LOCK_KEY,
    ) -> None:
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
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            conn.commit()
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
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    conn.commit()
                except Exception:  # the connection is gone; so is the lock
                    pass

    def _become_leader(self) -> None:
        if not self.is_leader:
            self.is_leader = True
            _LOGGER.info("elected scheduler leader")
            self.on_elected()

    def _step_down(self) -> None:
        if self.is_leader:
            self.is_leader = False
            _LOGGER.info("no longer the scheduler leader")
            self.on_deposed()
