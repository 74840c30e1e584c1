"""Which worker does a home's pairing and engine work: one owner per home among live workers.

Why: the shared subscription spreads every home's events over every worker, per message
(docs/scaling.md, 'Shape'). When each worker also paired and classified the homes it had
received events for, every worker worked on every home: both walked the homes in the same
order and queued on the same per-home advisory lock (a convoy: the second worker mostly
waited), and each call first reloaded the engine snapshot the other worker had just saved. Two
workers drained a backlog no faster than one (``atlas bench fleet``, before ownership).
Intake stays shared (any worker commits any event); the per-home work goes to the home's owner.

Membership: a worker is live while it holds the session advisory lock ``(class, worker_id)``
on a connection of its own, with ``class`` derived from the database and schema (one
deployment, one member list). A SIGKILLed worker's connection closes and its lock goes with
it, so the others see it gone at their next refresh (``refresh_s``); the restarted worker takes
the same lock again. The live set is read from ``pg_locks``. Nothing to clean up, no clock.

Assignment: rendezvous hashing (highest BLAKE2b score of ``home:worker``) with bounded load.
Homes, in a fixed hash order, take their best-scoring worker that still has fewer than
``floor(homes / workers)`` homes (once every worker has that many: one more). Every worker
computes the same assignment from the same home list and live set. Counts are balanced (+-1)
even for small fleets: plain rendezvous hashing split the bench's 50 homes 30/20 over two
workers, which caps two workers at 1.67x one. A membership change moves mostly the homes of
the worker that came or went (3 of 33 others moved when a third worker joined the 50). A home
registered since the last home-list refresh falls back to plain rendezvous until then.

Hand-off: the same connection LISTENs on a deployment channel. A worker that stores events of
a home it does not own NOTIFYs the home id; every worker hears it and takes the homes it owns.
Two views may disagree for up to ``refresh_s`` after a change. Then a home has two owners
(harmless: the advisory locks of :mod:`service.storage.homelock` still serialise them) or
none. A worker that gains homes therefore catches them up at once (``on_work``), and so does a
worker whose connection came back (notifications sent meanwhile are lost). The scheduler's
sweep re-announces every home as a last resort.

SQLite (one process): this worker owns every home; nothing is locked or listened to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from service.storage.schema import homes

_LOGGER = logging.getLogger(__name__)

#: NOTIFY payloads are limited to 8000 bytes; home ids are chunked below that.
_MAX_PAYLOAD = 7000

#: Live members: holders of a two-key advisory lock (objsubid 2) of this deployment's class.
_LIVE_SQL = (
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND objsubid = 2 AND classid::bigint = %s "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _digest(value: str, size: int) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=size).digest(), "big")


def membership_class(database: str, schema: str) -> int:
    """The first advisory-lock key (a non-negative int4) of the members of ``database.schema``."""
    return _digest(f"atlas-workers:{database}.{schema}", 4) & 0x7FFFFFFF


def channel_name(database: str, schema: str) -> str:
    """The LISTEN/NOTIFY channel of ``database.schema`` (an identifier under 63 bytes)."""
    return f"atlas_work_{_digest(f'{database}.{schema}', 6):012x}"


def _score(home_id: str, worker_id: int) -> int:
    return _digest(f"{home_id}:{worker_id}", 8)


def rendezvous_owner(home_id: str, live: Sequence[int]) -> int | None:
    """The live worker with the highest score for ``home_id`` (None: no live worker)."""
    return max(live, key=lambda w: (_score(home_id, w), w)) if live else None


def assign(home_ids: Iterable[str], live: Sequence[int]) -> dict[str, int]:
    """Rendezvous hashing with bounded load: home -> worker, floor(H/W) or one more each.

    Deterministic in (the set of homes, the set of live workers), whatever their order.
    """
    workers = sorted(set(live))
    ids = sorted(set(home_ids), key=lambda h: (_digest(f"order:{h}", 8), h))
    if not workers:
        return {}
    base = len(ids) // len(workers)  # every worker gets base homes, some one more
    load = dict.fromkeys(workers, 0)
    out: dict[str, int] = {}
    for home_id in ids:
        ranked = sorted(workers, key=lambda w: (_score(home_id, w), w), reverse=True)
        cap = base if any(load[w] < base for w in workers) else base + 1
        owner = next(w for w in ranked if load[w] < cap)
        load[owner] += 1
        out[home_id] = owner
    return out


class Ownership:
    """This worker's membership, the assignment of homes, and the hand-off channel.

    ``on_work(homes, stored_at)`` is called (from this object's thread) with homes this worker
    should pair and classify now: homes another worker stored events for (``stored_at``: the
    wall time it had committed them), homes it just gained, and every home it owns after
    (re)connecting (``stored_at`` None: now). ``on_forget(homes)`` asks to drop cached engines
    (a home spec changed on some worker).
    """

    def __init__(
        self,
        db: Engine,
        worker_id: int,
        *,
        refresh_s: float = 1.0,
        on_work: Callable[[set[str], float | None], None] = lambda homes_, at: None,
        on_forget: Callable[[set[str]], None] = lambda homes_: None,
    ) -> None:
        if refresh_s <= 0:
            raise ValueError(f"refresh_s={refresh_s} should be > 0.")
        self.db = db
        self.worker_id = worker_id
        self.refresh_s = refresh_s
        self.on_work = on_work
        self.on_forget = on_forget
        #: message key -> handler of its body, called on this object's thread (must not block)
        self.handlers: dict[str, Callable[[Any], None]] = {}
        self.shared = db.dialect.name == "postgresql"
        self.ready = threading.Event()
        self._guard = threading.Lock()
        self._member = not self.shared  # holds its membership lock
        self._live: tuple[int, ...] = (worker_id,)
        self._assignment: dict[str, int] = {}
        self._homes_version: tuple | None = None
        self._home_ids: list[str] = []
        self._stale_homes = False
        self._key = 0
        self.channel = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="atlas-ownership", daemon=True)
        if not self.shared:
            self.ready.set()

    # ------------------------------------------------------------------ queries

    @property
    def live(self) -> tuple[int, ...]:
        """The live workers, as last seen (sorted)."""
        return self._live

    def owner(self, home_id: str) -> int | None:
        """The worker that does ``home_id``'s work, in this worker's current view."""
        if not self.shared:
            return self.worker_id
        with self._guard:
            found = self._assignment.get(home_id)
            if found is None:
                self._stale_homes = True  # a new home: refresh the list at the next tick
                found = rendezvous_owner(home_id, self._live)
            return found

    def owns(self, home_id: str) -> bool:
        """Whether this worker does ``home_id``'s work (never while not a member)."""
        return self._member and self.owner(home_id) == self.worker_id

    def owned(self) -> set[str]:
        """Every registered home this worker owns (as of the last home-list refresh)."""
        if not self.shared:
            with self.db.connect() as conn:
                return set(conn.execute(select(homes.c.home_id)).scalars())
        with self._guard:
            if not self._member:
                return set()
            return {h for h, w in self._assignment.items() if w == self.worker_id}

    # ------------------------------------------------------------------ hand-off

    def publish(self, message: dict[str, Any]) -> None:
        """Send ``message`` (JSON, under 8000 bytes) to every worker, this one included."""
        if not self.shared or not self.channel:
            raise RuntimeError("no work channel: not on PostgreSQL or not connected yet")
        with self.db.begin() as conn:
            conn.execute(select(func.pg_notify(self.channel, json.dumps(message))))

    def notify(self, kind: str, home_ids: Iterable[str], at: float | None = None) -> None:
        """Tell every worker about ``home_ids`` (``work`` or ``forget``; ``at``: when their
        events were stored, wall time); PostgreSQL only."""
        if not self.shared or not self.channel:
            return
        chunks: list[list[str]] = [[]]
        size = 0
        for home_id in sorted(set(home_ids)):
            if size + len(home_id) + 4 > _MAX_PAYLOAD and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(home_id)
            size += len(home_id) + 4
        with self.db.begin() as conn:
            for chunk in chunks:
                if chunk:
                    payload = json.dumps({kind: chunk, "at": at})
                    conn.execute(select(func.pg_notify(self.channel, payload)))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.shared:
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            raw = None
            try:
                raw = self.db.raw_connection()
                self._serve(raw.driver_connection)
            except Exception as exc:  # database gone: not a member until reconnected
                _LOGGER.warning("ownership connection failed: %s", exc)
            finally:
                with self._guard:
                    self._member = False
                if raw is not None:
                    with contextlib.suppress(Exception):  # autocommit + LISTEN: not pooled again
                        raw.invalidate()
            self._stop.wait(self.refresh_s)

    def _serve(self, conn) -> None:
        """Lock, listen, and refresh the view every ``refresh_s`` until stopped or failed."""
        conn.autocommit = True
        database, schema = conn.execute("SELECT current_database(), current_schema()").fetchone()
        self._key = membership_class(database, schema)
        self.channel = channel_name(database, schema)
        conn.execute(f"LISTEN {self.channel}")
        with self._guard:
            self._homes_version = None  # re-read: the view is rebuilt on every connection
        rejoined = True
        while not self._stop.is_set():
            gained = self._refresh(conn)
            if rejoined and self._member:  # notifications sent while away are lost
                gained = self.owned()
                rejoined = False
            if gained:
                self.on_work(gained, None)
            self.ready.set()
            deadline = time.monotonic() + self.refresh_s
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                for note in conn.notifies(timeout=min(left, 0.5), stop_after=1):
                    self._handle(note.payload)

    def _refresh(self, conn) -> set[str]:
        """Re-read membership, the live set and (when changed) the home list; returns gains."""
        if not self._member:
            got = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (self._key, self.worker_id)
            ).fetchone()[0]
            if not got:
                _LOGGER.warning(
                    "worker id %d is held by another live process; not taking work", self.worker_id
                )
        else:
            got = True
        live = tuple(sorted(r[0] for r in conn.execute(_LIVE_SQL, (self._key,))))
        version = tuple(conn.execute("SELECT count(*), max(created_at) FROM homes").fetchone())
        with self._guard:
            stale = self._stale_homes
            self._stale_homes = False
        if version != self._homes_version or stale:
            ids = [r[0] for r in conn.execute("SELECT home_id FROM homes")]
        else:
            ids = self._home_ids
        with self._guard:
            before = {h for h, w in self._assignment.items() if w == self.worker_id}
            before = before if self._member else set()
            changed = live != self._live or ids is not self._home_ids or got != self._member
            if changed:
                self._assignment = assign(ids, live)
                self._home_ids, self._homes_version, self._live = ids, version, live
            self._member = got
            after = {h for h, w in self._assignment.items() if w == self.worker_id}
            after = after if got else set()
        if changed:
            _LOGGER.info(
                "worker %d owns %d of %d homes; live workers %s",
                self.worker_id,
                len(after),
                len(ids),
                list(live),
            )
        return after - before

    def _handle(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            _LOGGER.warning("ignored a malformed work notification %r", payload[:200])
            return
        if "forget" in message:
            self.on_forget(set(message["forget"]))
        if "work" in message:
            mine = {h for h in message["work"] if self.owns(h)}
            if mine:
                self.on_work(mine, message.get("at"))
        for key, handler in self.handlers.items():
            if key in message:
                try:
                    handler(message[key])
                except Exception:  # a handler's bug must not end the membership
                    _LOGGER.exception("handling a %r notification failed", key)
