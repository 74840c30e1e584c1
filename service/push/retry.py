"""When to push a label request again after a webhook or ntfy push failed.

A request whose push failed stays ``planned`` (it is marked sent only once every configured
channel accepted it) and is pushed again after an exponential backoff, until it expires. The
backoff spares an endpoint that is down (one attempt a minute at first, then one an hour), and
the channels that already accepted the request are not pushed again (ntfy has no idempotency
key: a repeat would notify the phone twice). The state lives in memory: after a restart a
pending request is simply tried at the next send, which is what a restart wants anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Backoff:
    """``first_s`` after the first failure, times ``factor`` after each further one, at most
    ``max_s``.

    Examples
    --------
    >>> [Backoff(60, 2, 300).delay(n).total_seconds() for n in (1, 2, 3, 4)]
    [60.0, 120.0, 240.0, 300.0]
    """

    first_s: float = 60.0
    factor: float = 2.0
    max_s: float = 3600.0

    def delay(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.max_s, self.first_s * self.factor ** (failures - 1)))


@dataclass
class _Pending:
    failures: int = 0
    next_at: datetime | None = None
    accepted: set[str] = field(default_factory=set)


class PushRetries:
    """The failed pushes of open requests: which channels accepted each, when to try again."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._pending: dict[str, _Pending] = {}

    def due(self, request_id: str, now: datetime) -> bool:
        """Whether ``request_id`` may be pushed now (never failed, or its backoff is over)."""
        pending = self._pending.get(request_id)
        return pending is None or pending.next_at is None or pending.next_at <= now

    def next_at(self, request_id: str) -> datetime | None:
        """When ``request_id`` is to be pushed again; None if no push of it failed."""
        pending = self._pending.get(request_id)
        return None if pending is None else pending.next_at

    def accepted(self, request_id: str) -> frozenset[str]:
        """The channels that have accepted ``request_id`` so far."""
        pending = self._pending.get(request_id)
        return frozenset() if pending is None else frozenset(pending.accepted)

    def accept(self, request_id: str, channel: str) -> None:
        self._pending.setdefault(request_id, _Pending()).accepted.add(channel)

    def fail(self, request_id: str, now: datetime) -> datetime:
        """Count a failed push of ``request_id``; returns when to try again."""
        pending = self._pending.setdefault(request_id, _Pending())
        pending.failures += 1
        pending.next_at = now + self.backoff.delay(pending.failures)
        return pending.next_at

    def forget(self, request_id: str) -> None:
        """``request_id`` was delivered (or is gone): nothing more to retry."""
        self._pending.pop(request_id, None)
