"""Open Server-Sent Event streams, counted per token and per home, with a cap on each.

A stream holds a connection, a task and a queue of up to 256 events for as long as the client
keeps it open; without a cap one token could open them until the server runs out of file
descriptors or memory. The caps are settings (``sse_max_streams_per_token``,
``sse_max_streams_per_home``); the stream endpoint answers 429 beyond them.
"""

from __future__ import annotations

import threading
from collections import Counter


class StreamSlots:
    """Thread-safe counts of open streams; :meth:`take` a slot, :meth:`give_back` it after."""

    def __init__(self, per_token: int, per_home: int) -> None:
        self.per_token = per_token
        self.per_home = per_home
        self._lock = threading.Lock()
        self._tokens: Counter[str] = Counter()
        self._homes: Counter[str] = Counter()

    def take(self, token_id: str, home_id: str) -> str | None:
        """Take a slot; None when taken, else why not (the cap that is full)."""
        with self._lock:
            if self._tokens[token_id] >= self.per_token:
                return f"this token holds sse_max_streams_per_token={self.per_token} streams"
            if self._homes[home_id] >= self.per_home:
                return f"home_id={home_id!r} has sse_max_streams_per_home={self.per_home} streams"
            self._tokens[token_id] += 1
            self._homes[home_id] += 1
            return None

    def give_back(self, token_id: str, home_id: str) -> None:
        with self._lock:
            for counts, key in ((self._tokens, token_id), (self._homes, home_id)):
                counts[key] -= 1
                if counts[key] <= 0:  # keep no entry per token or home ever seen
                    del counts[key]

    def open_streams(self, home_id: str) -> int:
        """Streams of ``home_id`` open now (for tests and metrics)."""
        with self._lock:
            return self._homes[home_id]
