"""Per-home mutual exclusion across threads and, on PostgreSQL, across worker processes.

Why: a shared subscription (``$share/...``) spreads one home's events round-robin over every
worker, per message and not per topic (docs/scaling.md, 'Shape'). Each home's pairing and engine
work normally runs on its one owner (:mod:`service.runtime.ownership`), but two processes can
still work on the same home at the same time: while two workers' views of who is live differ (up
to a refresh), when the leader does a job itself because the owner left, or when a worker pairs
a home it has just given away. Each would read the home's unpaired events and write uses built
from a different view; the later insert silently loses its links (an event belongs to one use).
Serialising the per-home read-modify-write makes every pairing and every engine step start from
the previous one's committed result, whoever runs it.

How: ``pg_advisory_xact_lock`` on a stable 64-bit key of (purpose, home id), taken as the FIRST
statement of the transaction that does the work. It is released by the commit or rollback (or
by the server when the worker's connection dies: a SIGKILLed worker never leaves a home locked),
and because PostgreSQL's default isolation (READ COMMITTED) gives each statement a fresh
snapshot, every read after the lock sees what the previous holder committed. SQLite has one
writer at a time anyway and runs in one process; there the in-process lock is the whole story.
Pairing and engine work use different purposes, so the intake can pair a home while the
pipeline classifies its earlier uses.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

#: Lock purposes: one lock per (purpose, home).
PAIRING = "pairing"
ENGINE = "engine"


def advisory_key(name: str) -> int:
    """The signed 64-bit PostgreSQL advisory-lock key named ``name``, the same in every process.

    Python's ``hash()`` is salted per process, so it cannot name a lock shared by processes;
    BLAKE2b is stable. 64 bits make a collision between two names (which would only serialise
    two unrelated holders, never break correctness) negligible. Every advisory lock of Atlas
    (homes, the scheduler leader, the migrations) is named through it.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def home_key(home_id: str, purpose: str) -> int:
    """The advisory-lock key of ``(purpose, home_id)`` (:func:`advisory_key`)."""
    if not home_id:
        raise ValueError(f"home_id={home_id!r} should be a non-empty string.")
    return advisory_key(f"atlas:{purpose}:{home_id}")


def lock_home_in_transaction(conn: Connection, home_id: str, purpose: str) -> None:
    """Block until this transaction holds the ``(purpose, home_id)`` lock (PostgreSQL only).

    Call it before any read of the home's rows in the transaction. A no-op on SQLite.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": home_key(home_id, purpose)})


class HomeLocks:
    """In-process locks per home plus the database lock, for one purpose.

    The thread lock also guards what a process caches per home (the loaded engine, cached
    transient features); the advisory lock guards the database rows against other processes.
    """

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def local(self, home_id: str) -> threading.Lock:
        """The in-process lock of ``home_id`` (created on first use)."""
        with self._guard:
            return self._locks.setdefault(home_id, threading.Lock())

    @contextmanager
    def transaction(self, db: Engine, home_id: str) -> Iterator[Connection]:
        """``db.begin()`` holding both locks of ``home_id``; committed when the block ends."""
        with self.local(home_id), db.begin() as conn:
            lock_home_in_transaction(conn, home_id, self.purpose)
            yield conn
