"""Garbage-collector pauses: keep start-up's objects out of collections, and time each one.

WHY: a full (generation 2) collection stops every thread of a process while it scans every
tracked object. During ``atlas bench latency`` (100 homes, 200 events/s) such collections
stopped ``atlas serve`` for 300-355 ms and its provisional process for 230-270 ms, the largest
single delays a provisional classification met. Most of what they scanned was made at start-up
(modules, functions and classes of the imported libraries) and lives as long as the process:
:func:`freeze_startup` moves it out of the collector's generations (``gc.freeze``), after which
full collections took 88-114 ms in the same bench (both timed by a scratch ``gc.callbacks``
hook, this module's first form). Frozen objects are still freed by reference counting; only a
reference cycle among them would never be collected, and start-up objects that become garbage
later are rare. :class:`PauseTimer` and :class:`GcPauseCollector` keep the pauses visible in
``/metrics`` (``atlas_gc_pause_seconds``), which ``atlas bench latency`` reports.

Frozen, a full collection still took 50-100 ms at 400 homes, and there were four to six of them
in a 15 s bench while the homes' state loaded: :func:`space_full_collections` makes them ten
times rarer (docs/benchmarks.md, `atlas bench latency`, has the figures).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

#: Upper bounds of the pause histogram's buckets, seconds.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


#: Generation-1 collections between two full ones (CPython's default is 10).
FULL_COLLECTION_EVERY = 100


def freeze_startup() -> None:
    """Collect once, then freeze what is left: call when start-up has imported everything."""
    gc.collect()
    gc.freeze()


def space_full_collections(every: int = FULL_COLLECTION_EVERY) -> None:
    """Run a full collection at most once per ``every`` generation-1 collections.

    WHY: a full collection stops the whole process for as long as it scans every tracked
    object, and a heap that grows (a service loading its homes' state) triggers one every ten
    generation-1 collections. Only reference cycles wait longer to be freed: at 400 homes the
    peak resident size of ``atlas serve`` and its child did not change (docs/benchmarks.md).
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, every)


class PauseTimer:
    """Times every collection of this process and hands ``(generation, seconds)`` to ``sink``.

    ``sink`` runs inside the collector's callback, wherever the collection began (possibly
    inside a lock another part of the program holds): it must not take locks or do I/O.
    """

    def __init__(self, sink: Callable[[int, float], None]) -> None:
        self.sink = sink
        self._started = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.sink(info["generation"], time.perf_counter() - self._started)


class GcPauseCollector(Collector):
    """``atlas_gc_pause_seconds``: a Prometheus histogram of pauses by process and generation.

    A custom collector rather than a ``Histogram`` because :meth:`record` is called from a
    collector callback (:class:`PauseTimer`), where the metric's own lock could already be held
    by the interrupted thread. Each process label has one writer (this process's collector,
    which never runs twice at once, or the thread that forwards another process's pauses), so
    plain counters suffice.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def record(self, process: str, generation: int, seconds: float) -> None:
        key = (process, str(generation))
        self._sums[key] = self._sums.get(key, 0.0) + seconds  # first: collect() reads by _counts
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0] * (len(BUCKETS) + 1)
        counts[next((i for i, b in enumerate(BUCKETS) if seconds <= b), len(BUCKETS))] += 1

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "atlas_gc_pause_seconds",
            "Time Python's garbage collector stopped a process, by process and generation",
            labels=["process", "generation"],
        )
        # a copy: a collection (and so record()) may start while this runs
        for key, counts in sorted(dict(self._counts).items()):
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            family.add_metric(list(key), buckets, self._sums[key])
        yield family
