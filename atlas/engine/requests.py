"""Every label request of a home, by id and by the round (local day) that drew it.

WHY a book apart from the planning: a round is drawn once per day and is then a record
(idempotent replays and restarts read it back); a request only moves forward, from open to
answered, not sure or expired. Keeping those rules here leaves the engine's planning to the
model and the strategies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from atlas.engine.records import LabelRequest, request_from_dict, request_to_dict


class RequestBook:
    """Label requests by id, and the ids each round day drew (empty: drawn, nothing asked)."""

    def __init__(self) -> None:
        self._requests: dict[str, LabelRequest] = {}
        self._rounds: dict[int, tuple[str, ...]] = {}

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._requests

    def __getitem__(self, request_id: str) -> LabelRequest:
        return self._requests[request_id]

    def all(self) -> tuple[LabelRequest, ...]:
        return tuple(self._requests.values())

    def use_ids(self) -> set[str]:
        """The uses already asked about (never asked twice)."""
        return {r.use_id for r in self._requests.values()}

    def drawn(self, day: int) -> tuple[LabelRequest, ...] | None:
        """The requests of ``day``'s round (None: not drawn yet)."""
        ids = self._rounds.get(day)
        return None if ids is None else tuple(self._requests[r] for r in ids)

    def record_round(self, day: int, requests: Iterable[LabelRequest]) -> tuple[LabelRequest, ...]:
        """Record ``day``'s round (possibly empty); a day is drawn once."""
        if day in self._rounds:
            raise ValueError(f"day {day}'s round is already drawn.")
        reqs = tuple(requests)
        for req in reqs:
            self._requests[req.request_id] = req
        self._rounds[day] = tuple(r.request_id for r in reqs)
        return reqs

    def close(
        self,
        request_id: str,
        state: str,
        *,
        answer: str | None = None,
        answered_at: datetime | None = None,
    ) -> LabelRequest:
        """Move an open request to its final ``state``."""
        req = self._requests[request_id]
        if req.state != "open":
            raise ValueError(f"request {request_id!r} is already {req.state}.")
        closed = replace(req, state=state, answer=answer, answered_at=answered_at)
        self._requests[request_id] = closed
        return closed

    def expire_due(self, now: datetime) -> list[str]:
        """Expire the open requests past their expiry; returns their ids."""
        gone = [
            r.request_id
            for r in self._requests.values()
            if r.state == "open" and now > r.expires_at
        ]
        for rid in gone:
            self.close(rid, "expired")
        return gone

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": [request_to_dict(r) for r in self._requests.values()],
            "rounds": {str(d): list(ids) for d, ids in self._rounds.items()},
        }

    def load(self, state: Mapping[str, Any]) -> None:
        for d in state["requests"]:
            req = request_from_dict(d)
            self._requests[req.request_id] = req
        self._rounds = {int(d): tuple(ids) for d, ids in state["rounds"].items()}
