"""The seam between the HTTP API and the running service (runtime engineer's ``atlas serve``).

Why a small dataclass of callables instead of importing the runtime: ``create_app`` must also run
alone (``hooks=None``: stateless HTTP over the database, any worker answers any request), and the
runtime must not depend on FastAPI internals. The runtime passes an :class:`ApiHooks`; the API
calls each hook only AFTER its own transaction has committed, so a hook never sees state that a
rollback could take back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_LOGGER = logging.getLogger(__name__)

#: Events a subscriber may hold before the oldest is dropped: a stalled browser tab must not grow
#: memory without bound, and SSE clients re-read the state over REST after a gap anyway.
SUBSCRIBER_QUEUE_SIZE = 256


@dataclass(frozen=True)
class HubEvent:
    """One message fanned out to the Server-Sent Events subscribers of a home."""

    home_id: str
    kind: str  # "classification", "level", "label_request", "answer", ...
    data: dict[str, Any]


class Subscription:
    """An async iterator of :class:`HubEvent` for one home; registered as soon as it is created.

    Registering at creation (not at the first ``__anext__``) means an event published between
    ``subscribe`` and the first read is not lost. Call :meth:`close` (or ``async with``) to
    unregister; the SSE endpoint does so when the client disconnects.
    """

    def __init__(self, hub: EventHub, home_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.home_id = home_id
        self.dropped = 0
        self._hub = hub
        self._loop = loop
        self._queue: asyncio.Queue[HubEvent] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_SIZE)
        self._closed = False

    def _deliver(self, event: HubEvent) -> None:
        # runs on the subscriber's event loop (scheduled with call_soon_threadsafe)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def offer(self, event: HubEvent) -> bool:
        """Hand ``event`` to this subscriber from any thread; False when its loop is gone."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, event)
        except RuntimeError:  # the loop was closed: this subscriber is dead
            return False
        return True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> HubEvent:
        if self._closed:
            raise StopAsyncIteration
        return await self._queue.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Unregister; further iteration stops."""
        self._closed = True
        self._hub._remove(self)


class EventHub:
    """Thread-safe fan-out of per-home events to Server-Sent Events subscribers.

    ``publish`` is called from any thread (the runtime's pipeline and scheduler threads, or a
    request handler); ``subscribe`` is called on the event loop that will read the events.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}

    def publish(self, home_id: str, kind: str, data: dict[str, Any]) -> int:
        """Send ``kind``/``data`` to every subscriber of ``home_id``; returns how many got it."""
        event = HubEvent(home_id=home_id, kind=kind, data=data)
        with self._lock:
            targets = list(self._subscribers.get(home_id, ()))
        delivered = 0
        for sub in targets:
            if sub.offer(event):
                delivered += 1
            else:
                self._remove(sub)
        return delivered

    def subscribe(self, home_id: str) -> Subscription:
        """A new subscription to ``home_id``; must be called from a running event loop."""
        sub = Subscription(self, home_id, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.setdefault(home_id, set()).add(sub)
        return sub

    def subscriber_count(self, home_id: str | None = None) -> int:
        """Live subscriptions of ``home_id`` (all homes when None); for metrics and tests."""
        with self._lock:
            if home_id is not None:
                return len(self._subscribers.get(home_id, ()))
            return sum(len(s) for s in self._subscribers.values())

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.home_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.home_id]


def _no_readiness() -> dict[str, bool]:
    return {}


def _ignore_answer(home_id: str, request_id: str) -> None:
    _LOGGER.debug("answer %s/%s recorded; no runtime hook installed", home_id, request_id)


def _ignore_announcement(home_id: str, valve_id: str, t: datetime) -> None:
    _LOGGER.debug("announcement %s %s at %s recorded; no runtime hook", home_id, valve_id, t)


def _ignore_home_changed(home_id: str) -> None:
    _LOGGER.debug("home %s changed; no runtime hook installed", home_id)


def _ignore_alert_acknowledged(home_id: str) -> None:
    _LOGGER.debug("an alert of %s was acknowledged; no runtime hook installed", home_id)


@dataclass(frozen=True)
class ApiHooks:
    """Callbacks the runtime gives the API; each is called after the API's commit.

    readiness
        ``{"database": .., "broker": .., "scheduler": ..}`` for ``/readyz``.
    on_answer
        ``(home_id, request_id)`` after an answer is committed: schedule retraining.
    on_announcement
        ``(home_id, valve_id, t)`` after an announcement ("I'm about to run it") is committed.
    on_home_changed
        ``(home_id)`` after a home spec was created or updated over HTTP.
    on_alert_acknowledged
        ``(home_id)`` after an alert was acknowledged: publish the home's open alerts again.
    hub
        The runtime's :class:`EventHub`, so its threads publish to the API's SSE subscribers;
        ``create_app`` makes its own when None.
    """

    readiness: Callable[[], dict[str, bool]] = _no_readiness
    on_answer: Callable[[str, str], None] = _ignore_answer
    on_announcement: Callable[[str, str, datetime], None] = _ignore_announcement
    on_home_changed: Callable[[str], None] = _ignore_home_changed
    on_alert_acknowledged: Callable[[str], None] = _ignore_alert_acknowledged
    hub: EventHub | None = field(default=None)
