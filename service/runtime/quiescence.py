"""What a worker still owes for the events it committed: the bookkeeping behind ``idle``.

The driver of a stepped clock (``atlas demo``, :class:`service.clock.VirtualClock`)
advances service time only once the service has finished what was due, so each stage reports
the work it holds until it has handed it on. This module keeps the one stage whose hand-over is
not a queue of the runtime's own: committed batches waiting for the intake's pairing thread to
route their homes (several commits may be routed by one call).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping


class RoutingLedger:
    """Per home, the committed batches whose events have not been routed to pairing yet.

    A batch committed while its home is being routed stays counted: :meth:`routing` returns how
    many commits each home had when the route began, and :meth:`routed` takes off exactly
    those. Counting per commit (not a set of homes) is what keeps such a batch pending.
    """

    def __init__(self) -> None:
        self._commits: Counter[str] = Counter()
        self._lock = threading.Lock()

    def committed(self, homes: Iterable[str]) -> None:
        """A batch with events of ``homes`` was committed."""
        with self._lock:
            self._commits.update(set(homes))

    def routing(self, homes: Iterable[str]) -> dict[str, int]:
        """A route of ``homes`` begins; returns what it covers (pass it to :meth:`routed`)."""
        with self._lock:
            return {h: self._commits[h] for h in set(homes) if self._commits[h] > 0}

    def routed(self, taken: Mapping[str, int]) -> None:
        """The route that :meth:`routing` returned ``taken`` for has handed its homes on."""
        with self._lock:
            self._commits.subtract(taken)
            self._commits = +self._commits  # drop the homes left at zero

    def pending(self) -> bool:
        """Whether a committed batch waits to be routed."""
        with self._lock:
            return bool(self._commits)
