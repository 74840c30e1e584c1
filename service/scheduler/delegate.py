"""The leader decides when; the home's owner does the engine work of a scheduled job.

Why: one leader runs every home's jobs, and most of them are engine work (draw a round, daily
estimates, a codebook refit: k-medoids on every event of the home, 0.4-0.8 s each here). All
homes of a time zone have their round at the same minute. One process (one GIL) then draws them
one after another, while the time before quiet hours is short (21:00 minus the last slot, 19:22
with four requests: 1 h 38 min). Those minutes buy 1/W of the homes per worker here instead
of all of them. Each such job also made the leader reload the snapshot the owner had just saved,
and the owner reload the leader's after it.

How: the leader's job calls :meth:`Delegation.run`. When another live worker owns the home, the
call is sent on the work channel (service/runtime/ownership.py) as ``{"run": {...}}`` addressed to
that owner, and the leader's job thread waits for ``{"done": {...}}``. The owner runs the work on
a small pool of its own (the notification thread must not block) and answers with a small
result (the successor's due time, whether a codebook refit is due), so the leader schedules the
successors without loading the engine. The leader does the work itself when it owns the home,
when no other live owner exists, or when the owner dies or leaves meanwhile. In that last case the
owner may also still finish the work. That is harmless: the per-home advisory lock serialises
the two, and every job is idempotent (rounds are keyed by home, round and slot).

The owner also sends what a round drew: each request is an HTTP POST (about 21 ms of CPU each
with ``httpx.post``, which builds a TLS context per call), and on the leader alone those POSTs
held every job thread while the next homes' rounds waited (measured in the 50-home run). The
owner returns when to retry a send that fell in quiet hours; the retry is a leader's job.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the runtime builds the ownership channel and hands it in
    from service.runtime.ownership import Ownership


_LOGGER = logging.getLogger(__name__)

#: ``(kind, home_id, due or None) -> small JSON-able result`` (``AtlasScheduler.home_work``).
LocalWork = Callable[[str, str, datetime | None], dict[str, Any]]


class DelegatedWorkFailed(RuntimeError):
    """The owner ran the work and it raised (the job fails as if it had run here)."""


class Delegation:
    """Leader side: :meth:`run`. Owner side: the ``run`` handler on the ownership channel."""

    def __init__(
        self,
        ownership: Ownership,
        local: LocalWork,
        *,
        threads: int = 4,
        poll_s: float = 1.0,
        max_wait_s: float = 900.0,
    ) -> None:
        self.ownership = ownership
        self.local = local
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="atlas-owner-jobs")
        self._pending: dict[str, tuple[threading.Event, dict]] = {}
        self._guard = threading.Lock()
        ownership.handlers["run"] = self._on_run
        ownership.handlers["done"] = self._on_done

    def shutdown(self) -> None:
        """Finish the work being done for a leader (its result is still sent)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ leader side

    def run(self, kind: str, home_id: str, due: datetime | None) -> dict[str, Any]:
        """Do ``kind`` for ``home_id`` on its owner (or here, see the module docstring)."""
        me = self.ownership.worker_id
        owner = self.ownership.owner(home_id)
        if owner is None or owner == me or owner not in self.ownership.live:
            return self.local(kind, home_id, due)
        call_id = uuid.uuid4().hex
        done = threading.Event()
        reply: dict = {}
        with self._guard:
            self._pending[call_id] = (done, reply)
        try:
            when = None if due is None else due.isoformat()
            request = {"id": call_id, "to": owner, "kind": kind, "home": home_id, "due": when}
            self.ownership.publish({"run": request})
            deadline = time.monotonic() + self.max_wait_s
            while not done.wait(self.poll_s):
                if owner not in self.ownership.live or time.monotonic() > deadline:
                    _LOGGER.warning(
                        "worker %d did not finish %s of %s; doing it here", owner, kind, home_id
                    )
                    return self.local(kind, home_id, due)
        except Exception as exc:  # the channel failed: the work must still be done
            if done.is_set():
                raise
            _LOGGER.warning("could not delegate %s of %s (%s); doing it here", kind, home_id, exc)
            return self.local(kind, home_id, due)
        finally:
            with self._guard:
                self._pending.pop(call_id, None)
        if not reply.get("ok"):
            raise DelegatedWorkFailed(
                f"{kind} of {home_id} failed on worker {owner}: {reply.get('error')}"
            )
        return reply.get("result") or {}

    def _on_done(self, body: dict) -> None:
        with self._guard:
            found = self._pending.get(body.get("id", ""))
        if found is not None:
            done, reply = found
            reply.update(body)
            done.set()

    # ------------------------------------------------------------------ owner side

    def _on_run(self, body: dict) -> None:
        if body.get("to") != self.ownership.worker_id:
            return
        self._pool.submit(self._serve, body)

    def _serve(self, body: dict) -> None:
        due = None if body.get("due") is None else datetime.fromisoformat(body["due"])
        try:
            result = self.local(body["kind"], body["home"], due)
            answer = {"id": body["id"], "ok": True, "result": result}
        except Exception as exc:
            _LOGGER.exception("%s of %s for the leader failed", body.get("kind"), body.get("home"))
            answer = {"id": body["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        try:
            self.ownership.publish({"done": answer})
        except Exception:  # the leader gives up waiting when this worker leaves, or times out
            _LOGGER.exception(
                "could not report %s of %s to the leader", body.get("kind"), body.get("home")
            )
