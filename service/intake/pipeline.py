"""Validate, store and pair a batch of payloads: the path shared by the MQTT intake and ingest.

Every message ends as exactly one of: a stored event, a duplicate of a stored event, or a dead
letter with a reason code. Nothing a sender can put in a payload makes :meth:`process` raise;
only a database failure does, and then nothing of the batch is committed (so nothing is acked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from atlas.events import Event, EventError, check_registered, decode_event_counts
from service.intake.jsonkeys import repeated_key
from service.intake.messages import InboundMessage
from service.intake.pairing_step import Pairer, UnsettledHook
from service.intake.registry import HomeRegistry
from service.storage.deadletters import DeadLetter, insert_dead_letters
from service.storage.events import EventKey, EventRow, insert_events

_LOGGER = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    stored: set[EventKey] = field(default_factory=set)  # (home_id, event_id) newly stored
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    homes: set[str] = field(default_factory=set)  # homes with newly stored events
    newest_t: datetime | None = None  # event time of the newest newly stored event


def topic_ids(topic: str) -> tuple[str, str] | None:
    """``(home_id, sensor_id)`` from ``.../homes/{home}/sensors/{sensor}/events``, else None."""
    parts = topic.split("/")
    if (
        len(parts) >= 5
        and parts[-5] == "homes"
        and parts[-3] == "sensors"
        and parts[-1] == "events"
    ):
        return parts[-4], parts[-2]
    return None


class IngestPipeline:
    """Turns :class:`InboundMessage` batches into stored events, dead letters and uses.

    ``clock`` feeds the future-timestamp check; pass ``clock=None`` for offline replays of old
    captures. ``check_topic`` refuses a payload whose home/sensor differ from its topic's (the
    broker's access control is per topic, so a mismatch is either a bug or a spoof).
    ``on_unsettled``, ``hand_over`` (its ``max_handed``): see :class:`Pairer`.
    ``on_stored(events, exact)`` hears of the events of each batch once they are committed
    (decoded, as received; e.g. :class:`service.intake.provisional.ProvisionalPairer`);
    ``exact`` holds the ids of those whose samples equal the stored ones bit for bit (sent as
    ``i16le-b64`` counts, which are stored as they are).
    """

    def __init__(
        self,
        engine: Engine,
        registry: HomeRegistry | None = None,
        clock: Callable[[], datetime] | None = lambda: datetime.now(UTC),
        check_topic: bool = True,
        on_unsettled: UnsettledHook | None = None,
        hand_over: int = 0,
        on_stored: Callable[[list[Event], set[str]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry or HomeRegistry(engine)
        self.clock = clock
        self.check_topic = check_topic
        self.pairer = Pairer(engine, on_unsettled=on_unsettled, max_handed=hand_over)
        self.on_stored = on_stored

    def validate(self, msg: InboundMessage) -> EventRow:
        """The event in ``msg``, or :class:`EventError` with the reason it is refused."""
        repeated = repeated_key(msg.payload)
        if repeated is not None:
            raise EventError(
                "duplicate_key",
                f"key {repeated!r} appears twice in one object of the payload (JSON readers "
                "disagree on which one counts); send each key once",
            )
        event, counts = decode_event_counts(msg.payload, now=self.clock() if self.clock else None)
        if self.check_topic and topic_ids(msg.topic) != (event.home_id, event.sensor_id):
            raise EventError(
                "topic_mismatch",
                f"payload says home {event.home_id!r} sensor {event.sensor_id!r} but arrived on "
                f"topic {msg.topic[:200]!r}; the topic's home and sensor are authoritative",
            )
        check_registered(event, self.registry.sensors(event.home_id, event.sensor_id))
        if counts is None:  # json encoding: storage quantises the floats
            return EventRow(event)
        # the gateway's own int16 counts, stored exactly as sent (lossless, no re-quantising)
        return EventRow(event, counts.scale_kpa, counts.counts, counts.offset_kpa)

    def _dead_letter(
        self, msg: InboundMessage, reason: str, text: str, home: str | None
    ) -> DeadLetter:
        """The dead letter of ``msg``, filed under the topic's home when the topic names one
        (the broker's access control is per topic: a payload cannot speak for another home),
        else under the home the payload named; only a registered home either way."""
        ids = topic_ids(msg.topic)
        home = ids[0] if ids else home
        known = home if home is not None and self.registry.is_registered(home) else None
        return DeadLetter(msg.topic, msg.payload, reason, text, known, msg.received_at)

    def process(self, batch: Sequence[InboundMessage]) -> BatchOutcome:
        """Validate and commit ``batch`` in one transaction (see the module docstring)."""
        outcome = BatchOutcome()
        rows: list[EventRow] = []
        for msg in batch:
            try:
                rows.append(self.validate(msg))
            except EventError as err:
                outcome.dead.append(self._dead_letter(msg, err.reason, str(err), err.home_id))
            except Exception as exc:  # a bug must cost one message, never the intake
                _LOGGER.exception("unexpected error validating a message on %s", msg.topic[:200])
                text = f"internal error while validating: {type(exc).__name__}: {exc}"
                outcome.dead.append(self._dead_letter(msg, "internal_error", text[:2000], None))
        received = batch[0].received_at if batch else datetime.now(UTC)
        with self.engine.begin() as conn:
            outcome.stored = insert_events(conn, rows, received)
            insert_dead_letters(conn, outcome.dead)
        outcome.duplicates = len(rows) - len(outcome.stored)
        if outcome.stored:
            first: dict[EventKey, EventRow] = {}  # what insert_events stored of a repeated one
            for r in rows:
                first.setdefault((r.event.home_id, r.event.event_id), r)
            stored = [r for key, r in first.items() if key in outcome.stored]
            outcome.homes = {r.event.home_id for r in stored}
            exact = {r.event.event_id for r in stored if r.counts is not None}
            outcome.newest_t = max(r.event.t for r in stored)
            self.pairer.offer_events([r.event for r in stored if r.counts is not None])
            if self.on_stored is not None:
                self.on_stored([r.event for r in stored], exact)
        return outcome

    def pair(self, homes: set[str], *, final: bool = False) -> int:
        """Re-pair ``homes`` after a commit; returns the number of new uses."""
        return self.pairer.pair_homes(homes, final=final)
