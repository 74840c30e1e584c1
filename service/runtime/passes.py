"""The pacing of the classifier's passes over the homes with new stored uses."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from service.clock import Clock


class ClassifyPasses:
    """Which homes wait to be classified, and when their pass is due.

    Homes are classified in passes ``every_s`` of service time apart: the pause starts when a
    home is first dirtied (after a pass or an idle spell), and the homes dirtied during it join
    the pass, so a burst of notifications is classified in one pass, not one per home, and a
    quiet service does not classify the first home of a burst on its own.

    WHY a class of its own: this policy used to live inside the runtime's classification
    thread, where a test could reach it only by running that thread's private loop. Here it is
    driven and tested directly (tests/service/runtime/test_classify_passes.py); the runtime's
    loop (service/runtime/service.py) only classifies the homes :meth:`take_pass` hands it
    and calls :meth:`pass_done`. Thread-safe.
    """

    def __init__(self, clock: Clock, every_s: float) -> None:
        self.clock = clock
        self.every = timedelta(seconds=every_s)
        self._dirty: set[str] = set()
        self._classifying = False  # a pass over dirty homes is under way
        self._pass_at = clock.now()  # service time of the next pass (while any is dirty)
        self._cv = threading.Condition()

    def mark_dirty(self, homes: Iterable[str]) -> None:
        """Queue ``homes`` for the next pass (the first home after a pass starts the pause)."""
        with self._cv:
            if not self._dirty:  # the pause before the next pass starts now
                self._pass_at = self.clock.now() + self.every
            self._dirty |= set(homes)
            self._cv.notify()

    def next_due(self) -> datetime | None:
        """Service time of the next pass (None: no home waits)."""
        with self._cv:
            return self._pass_at if self._dirty else None

    def busy(self) -> bool:
        """Whether a pass is under way or due by the service clock (a stepped clock's driver
        waits for it before advancing)."""
        with self._cv:
            return self._classifying or bool(self._dirty and self._pass_at <= self.clock.now())

    def wake(self) -> None:
        """Look again at the clock and the stop event (a stepped clock moved, or stopping)."""
        with self._cv:
            self._cv.notify()

    def take_pass(self, stop: threading.Event, idle_s: float = 0.5) -> set[str]:
        """Wait until a pass is due and take its homes: they count as being classified until
        :meth:`pass_done`. Returns an empty set after ``idle_s`` without a dirty home (the
        runtime saves snapshots then), and, once ``stop`` is set, the homes still dirty at
        once (a last pass), then an empty set."""
        with self._cv:
            if not self._dirty and not stop.is_set():
                self._cv.wait(idle_s)
            while self._dirty and not stop.is_set() and (wait := self._pass_wait()) != 0:
                self._cv.wait(wait)
            homes, self._dirty = self._dirty, set()
            self._classifying = bool(homes)
        return homes

    def pass_done(self) -> None:
        """The pass :meth:`take_pass` handed out is over (classified or failed)."""
        with self._cv:
            self._classifying = False

    def _pass_wait(self) -> float | None:
        """Wall seconds until the next pass (0: now; None: until woken, as a stepped clock
        moves only when its driver advances it)."""
        left = (self._pass_at - self.clock.now()).total_seconds()
        if left <= 0:
            return 0.0
        return None if self.clock.stepped else self.clock.wall_seconds(left)
