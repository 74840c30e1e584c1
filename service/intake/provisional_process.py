"""The provisional pairing and classification in a child process of their own (one worker).

WHY a process: Python threads share one interpreter lock. In one process, the stored pairing and
the classifier (the engine re-running a home's history on every ingest) held that lock most of
the time at 200 events/s, and the provisional thread, whose work is what a person waits for,
queued behind them: ``atlas bench latency`` measured an after-pairable p99 of 0.45-1.4 s with
the thread, against 82 ms with the stored path switched off. A child process has its own
interpreter lock and runs on the other core.

What crosses the pipe (pickled by :mod:`multiprocessing`):

* to the child: the events the intake has just committed (decoded, with the ids of those
  stored exactly as received), and each home's :class:`~atlas.engine.preview.PreviewModel`
  whenever the engine changes it (after an ingest, a retrain, a reload), once the child has
  asked for that home: whole the first time and after a retrain, otherwise as a
  :class:`~atlas.engine.preview.ContextUpdate` (the uses ingested since);
* to the parent: each new use's provisional classification rows with its event ids (published
  on the event hub by the parent, which times them from the commit of the use's last event:
  ``atlas_provisional_delay_seconds``), the transient features of exactly stored events (the
  stored pairing then does not compute them again), requests for a home's preview model, and
  the child's garbage collector pauses (``atlas_gc_pause_seconds{process="provisional"}``).

The child pairs with :class:`~service.intake.provisional.ProvisionalPairer`, as the thread did;
uses of a home whose model has not arrived wait in the child (bounded) and are classified when
it does. If the child dies, the parent logs it and starts a new one with the next events: the
stored classification follows every use anyway, so nothing but some previews is lost.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from multiprocessing.connection import Connection

from atlas.engine.preview import PreviewModel
from atlas.events import Event
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse
from service import metrics
from service.gcpauses import PauseTimer, freeze_startup, space_full_collections
from service.intake.pairing_step import keep_newest
from service.intake.provisional import ProvisionalPairer
from service.logs import configure_logging
from service.sse_rows import sse_rows

_LOGGER = logging.getLogger(__name__)

#: Reports (a use or two each) of one home kept in the child while its preview model is on its
#: way (a home whose engine cannot load would otherwise grow this without bound).
MAX_WAITING_REPORTS = 1000

#: Hand-over times kept for ``atlas_provisional_delay_seconds`` (an open may wait minutes for
#: its close; older ones are forgotten and their uses not timed).
MAX_TIMED_EVENTS = 50_000

#: Collector pauses the child keeps until its next rows carry them to the parent (the oldest go
#: first if it classifies nothing for a long time).
MAX_PAUSES_KEPT = 10_000

Rows = Callable[[str, list[dict]], None]
Features = Callable[[str, Mapping[str, TransientFeatures]], None]


class ProvisionalProcess:
    """The parent's side: feeds the child, publishes what it classifies, sends it models.

    ``preview_model(home_id)`` returns the home's current preview model, loading the engine if
    needed (it may take a while, so it runs on a loader thread, never on the receiver);
    ``cached_model(home_id)`` returns it only if loaded. ``publish(home_id, rows)`` gets the
    provisional classification rows; ``share_features`` the features of exactly stored events.

    Nothing here blocks the intake: :meth:`add` queues the events for a sender thread (a pipe
    blocks while its reader is busy, and a child takes seconds to start), and drops them when
    more than ``max_queued`` events wait (the child cannot keep up; the stored classification
    follows).
    """

    def __init__(
        self,
        preview_model: Callable[[str], PreviewModel],
        cached_model: Callable[[str], PreviewModel | None],
        publish: Rows,
        share_features: Features | None = None,
        log_level: str = "INFO",
        log_json: bool = False,
        max_queued: int = 20_000,
    ) -> None:
        self.preview_model = preview_model
        self.cached_model = cached_model
        self.publish = publish
        self.share_features = share_features
        self.log_level = log_level
        self.log_json = log_json
        self.max_queued = max_queued
        self._context = multiprocessing.get_context("spawn")  # fork is unsafe with threads
        # messages in the order they are to be sent; models are queued under _lock, so an older
        # model of a home is never sent after a newer one
        self._outbox: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._queued = 0  # events in the outbox
        self._lock = threading.Lock()
        self._wanted: set[str] = set()  # homes the child asked a model for
        self._outdated: set[str] = set()  # wanted homes whose new model is about to be queued
        self._sent: dict[str, PreviewModel] = {}  # the model the child has, per home
        self._handed_at: dict[str, float] = {}  # event id -> perf_counter when added
        self._loader: ThreadPoolExecutor | None = None
        self._stopping = False
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._receiver: threading.Thread | None = None
        self._sender: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the child (again after :meth:`stop`, or after it died)."""
        self._stopping = False
        if self._conn is not None:  # a dead child's end
            self._conn.close()
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=child_main,
            args=(child, self.log_level, self.log_json),
            name="atlas-provisional",
            daemon=True,
        )
        self._process.start()
        child.close()
        with self._lock:
            self._conn = parent
            self._wanted.clear()  # a new child knows no model
            self._outdated.clear()
            self._sent.clear()
            if self._loader is None:
                self._loader = ThreadPoolExecutor(1, thread_name_prefix="atlas-preview-loader")
        self._receiver = _thread(self._receive, "atlas-provisional-receiver", parent)
        if self._sender is None or not self._sender.is_alive():
            self._sender = _thread(self._send_loop, "atlas-provisional-sender")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Let the child pair what it was given, then end it."""
        self._stopping = True
        self._outbox.put(("stop",))
        if self._receiver is not None:  # ends with the child's goodbye; until then the child
            self._receiver.join(timeout_s)  # may still ask for (and be sent) models
        self._outbox.put(None)  # the sender's end
        if self._sender is not None:
            self._sender.join(timeout_s)
        if self._process is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        with self._lock:  # nothing is submitted once it is None
            loader, self._loader = self._loader, None
        if loader is not None:
            loader.shutdown(wait=True)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    # ------------------------------------------------------------------ parent -> child

    def add(self, events: Sequence[Event], exact: Iterable[str] = ()) -> None:
        """Events just committed (the intake's ``on_stored``): pair them in the child."""
        if not self._stopping and not self.alive:
            _LOGGER.error("the provisional process has stopped; starting a new one")
            self.start()
        now = time.perf_counter()
        with self._lock:
            if self._queued + len(events) > self.max_queued:
                metrics.PROVISIONAL_DROPPED.inc(len(events))
                return
            self._queued += len(events)
            self._handed_at.update((e.event_id, now) for e in events)
            keep_newest(self._handed_at, MAX_TIMED_EVENTS)
        self._outbox.put(("events", list(events), list(exact)))

    def model_changed(self, home_id: str) -> None:
        """The engine of ``home_id`` changed: send its new preview model if the child uses it.

        Queued by the loader thread, not the caller (the classifier, inside its transaction),
        and changes that come before it is queued go as one."""
        with self._lock:
            if self._loader is None or home_id not in self._wanted or home_id in self._outdated:
                return  # stopped (a job may still save an engine), unused, or on its way
            self._outdated.add(home_id)
            self._loader.submit(self._queue_model, home_id, load=False)

    def _queue_model(self, home_id: str, *, load: bool) -> None:
        """Loader thread: queue the newest model (loaded first if ``load``)."""
        if load:
            try:
                self.preview_model(home_id)
            except Exception:
                _LOGGER.exception(
                    "no preview model for %s: its uses get only the stored classification", home_id
                )
                return
        with self._lock:
            self._outdated.discard(home_id)
            self._wanted.add(home_id)
            model, before = self.cached_model(home_id), self._sent.get(home_id)
            if model is not None and model is before:
                return
            update = None if model is None or before is None else before.context_update(model)
            if model is None:
                self._sent.pop(home_id, None)
            else:
                self._sent[home_id] = model
            if update is None:
                self._outbox.put(("model", home_id, model))
            else:  # new uses only: the child extends the model it has
                self._outbox.put(("context", home_id, update))

    def _time_rows(self, events_of_use: dict[str, tuple[str, ...]]) -> None:
        """Observe each published use's delay since its last event was handed over."""
        now = time.perf_counter()
        with self._lock:
            for ids in events_of_use.values():
                added = [t for i in ids if (t := self._handed_at.pop(i, None)) is not None]
                if added:
                    metrics.PROVISIONAL_DELAY.observe(now - max(added))

    def _send_loop(self) -> None:
        while (message := self._outbox.get()) is not None:
            if message[0] == "events":
                with self._lock:
                    self._queued -= len(message[1])
            conn = self._conn
            try:
                if conn is not None:
                    conn.send(message)
            except (OSError, ValueError):  # the child is gone; add() starts a new one
                _LOGGER.warning("the provisional process did not take %s", message[0])

    # ------------------------------------------------------------------ child -> parent

    def _receive(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                if not self._stopping:
                    _LOGGER.error("the provisional process ended unexpectedly")
                return
            kind = message[0]
            try:
                if kind == "rows":
                    self.publish(message[1], message[2])
                    self._time_rows(message[3])
                elif kind == "gc":
                    for generation, seconds in message[1]:
                        metrics.GC_PAUSES.record("provisional", generation, seconds)
                elif kind == "features" and self.share_features is not None:
                    self.share_features(message[1], message[2])
                elif kind == "need":
                    with self._lock:
                        self._sent.pop(message[1], None)  # the child has none: send it whole
                        if self._loader is not None:
                            self._loader.submit(self._queue_model, message[1], load=True)
                elif kind == "bye":
                    return
            except Exception:
                _LOGGER.exception("handling %s from the provisional process failed", kind)


class _Child:
    """The child's side: a :class:`ProvisionalPairer` whose uses are classified here."""

    def __init__(self, conn: Connection, pauses: deque[tuple[int, float]] | None = None) -> None:
        self.conn = conn
        self.pauses = pauses if pauses is not None else deque()  # filled by a PauseTimer
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # models and waiting uses (pairer thread vs receiver)
        self._models: dict[str, PreviewModel] = {}
        self._waiting: dict[str, list[tuple[list[WaterUse], list[Event], dict]]] = {}
        self.pairer = ProvisionalPairer(
            self._on_use, share_features=lambda h, f: self._send(("features", h, dict(f)))
        )

    def run(self) -> None:
        self.pairer.start()
        try:
            while True:
                message = self.conn.recv()
                kind = message[0]
                if kind == "events":
                    self.pairer.add(message[1], message[2])
                elif kind == "stop":
                    break
                else:
                    self._take_model(message)
            self.pairer.stop()  # pairs what it was given
            self._await_models()
        except (EOFError, OSError):  # the parent is gone
            self.pairer.stop()
        finally:
            self._send(("bye",))

    def _await_models(self, timeout_s: float = 5.0) -> None:
        """At a stop, classify the uses still waiting for their home's model (asked for)."""
        deadline = time.monotonic() + timeout_s
        while self._waiting and self.conn.poll(max(0.0, deadline - time.monotonic())):
            self._take_model(self.conn.recv())

    def _take_model(self, message: tuple) -> None:
        """A whole model, or a context update of the one this child has."""
        kind, home_id, payload = message
        if kind == "model":
            self._set_model(home_id, payload)
        elif kind == "context":
            with self._lock:
                base = self._models.get(home_id)
            if base is None:  # the pipe keeps order, so only after a failure: ask for it whole
                self._send(("need", home_id))
            else:
                self._set_model(home_id, base.with_context(payload))

    def _set_model(self, home_id: str, model: PreviewModel | None) -> None:
        with self._lock:
            if model is None:  # the home changed: the next use asks again, or waiting ones now
                self._models.pop(home_id, None)
                if self._waiting.get(home_id):
                    self._send(("need", home_id))
                return
            self._models[home_id] = model
            waiting = self._waiting.pop(home_id, [])
        for uses, evs, features in waiting:
            self._classify(model, home_id, uses, evs, features)

    def _on_use(
        self,
        home_id: str,
        uses: list[WaterUse],
        evs: list[Event],
        features: Mapping[str, TransientFeatures],
    ) -> None:
        with self._lock:
            model = self._models.get(home_id)
            if model is None:
                waiting = self._waiting.setdefault(home_id, [])
                if not waiting:
                    self._send(("need", home_id))
                waiting.append((uses, evs, dict(features)))
                del waiting[:-MAX_WAITING_REPORTS]
                return
        self._classify(model, home_id, uses, evs, features)

    def _classify(self, model: PreviewModel, home_id: str, uses, evs, features) -> None:
        try:
            rows = sse_rows(model.classify(uses, evs, features), uses, provisional=True)
        except Exception:  # a preview is a courtesy: the stored classification follows
            _LOGGER.exception("provisional classification of %s failed", home_id)
            return
        self._send(("rows", home_id, rows, {u.use_id: u.event_ids for u in uses}))
        if pauses := drain_pauses(self.pauses):
            self._send(("gc", pauses))

    def _send(self, message: tuple) -> None:
        with self._send_lock, suppress(OSError, ValueError):  # the parent is gone
            self.conn.send(message)


def drain_pauses(pauses: deque[tuple[int, float]]) -> list[tuple[int, float]]:
    """Empty ``pauses``: the pairer and the main thread both classify, and the collector's
    callback appends at any time, so pop until empty instead of trusting a length.

    Public because that race (two threads draining, a callback appending) is a contract of its
    own, tested directly with racing threads (tests/service/test_provisional_process.py)."""
    out = []
    while True:
        try:
            out.append(pauses.popleft())
        except IndexError:
            return out


def _thread(target: Callable[..., None], name: str, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def child_main(conn: Connection, log_level: str, log_json: bool) -> None:
    """Entry point of the child process (logs as the parent does; its collector pauses go to
    the parent's ``/metrics``)."""
    configure_logging(log_level, log_json)
    pauses: deque[tuple[int, float]] = deque(maxlen=MAX_PAUSES_KEPT)
    PauseTimer(lambda generation, s: pauses.append((generation, s))).install()
    freeze_startup()
    space_full_collections()
    _Child(conn, pauses).run()
