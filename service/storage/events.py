"""Idempotent event inserts and reads (waveforms packed by :mod:`service.storage.waveform`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from atlas.events import Event
from service.storage.inlists import batches
from service.storage.schema import events, use_events
from service.storage.waveform import (
    DEFAULT_SCALE_KPA,
    pack_counts,
    pack_waveform,
    unpack_waveform,
)


@dataclass(frozen=True, eq=False)
class EventRow:
    """One validated event ready to store.

    ``counts``/``scale_kpa``/``offset_kpa`` are the gateway's own int16 quantisation when the
    payload was ``i16le-b64``: storing them as received is lossless and skips re-quantising.
    Without them the samples are quantised at ``scale_kpa``.
    """

    event: Event
    scale_kpa: float = DEFAULT_SCALE_KPA
    counts: np.ndarray | None = None
    offset_kpa: float = 0.0


#: An event's key: ``(home_id, event_id)``. Ids are unique per home, not across homes.
EventKey = tuple[str, str]


def insert_events(
    conn: Connection, rows: Sequence[EventRow], received_at: datetime
) -> set[EventKey]:
    """Insert ``rows``, skipping events their home already stored; returns the new keys.

    ``ON CONFLICT DO NOTHING RETURNING`` works on SQLite and PostgreSQL and, unlike ``rowcount``
    (-1 on PostgreSQL for a batch), says exactly which rows were new, so a redelivered message is
    stored once. The conflict is on (event_id, home_id): another home's event of the same id is
    stored.
    """
    if not rows:
        return set()
    values = []
    seen: set[EventKey] = set()
    for row in rows:
        ev = row.event
        if (ev.home_id, ev.event_id) in seen:  # the same message twice in one batch
            continue
        seen.add((ev.home_id, ev.event_id))
        if row.counts is not None:
            blob, scale, offset = pack_counts(row.counts), row.scale_kpa, row.offset_kpa
        else:
            blob, scale, offset = pack_waveform(ev.samples, row.scale_kpa)
        values.append(
            {
                "event_id": ev.event_id,
                "home_id": ev.home_id,
                "sensor_id": ev.sensor_id,
                "line": ev.line,
                "t": ev.t,
                "sample_rate_hz": ev.sample_rate_hz,
                "n_samples": len(ev.samples),
                "scale_kpa": scale,
                "offset_kpa": offset,
                "waveform": blob,
                "received_at": received_at,
            }
        )
    ins = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        ins(events)
        .on_conflict_do_nothing(index_elements=["event_id", "home_id"])
        .returning(events.c.home_id, events.c.event_id)
    )
    return {(home, event_id) for home, event_id in conn.execute(stmt, values)}


def _to_event(row) -> Event:
    m = row._mapping  # not attribute access: ``Row.t`` is the row's own tuple accessor
    return Event(
        event_id=m["event_id"],
        home_id=m["home_id"],
        sensor_id=m["sensor_id"],
        line=m["line"],
        t=utc(m["t"]),
        sample_rate_hz=m["sample_rate_hz"],
        samples=unpack_waveform(m["waveform"], m["scale_kpa"], m["offset_kpa"]),
    )


def utc(t: datetime) -> datetime:
    # SQLite hands back naive datetimes even for DateTime(timezone=True); all times are UTC.
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def load_events(
    conn: Connection, event_ids: Iterable[str], home_id: str | None = None
) -> list[Event]:
    """The stored events of ``home_id`` with these ids, ordered by time (then id).

    ``home_id`` None reads the ids in every home: only right while no two homes share an id
    (ids are unique per home), so callers that know the home pass it.
    """
    ids = list(event_ids)
    found: list[Event] = []
    for chunk in batches(ids):
        query = select(events).where(events.c.event_id.in_(chunk))
        if home_id is not None:
            query = query.where(events.c.home_id == home_id)
        found.extend(_to_event(r) for r in conn.execute(query))
    return sorted(found, key=lambda e: (e.t, e.event_id))


def received_at(conn: Connection, home_id: str, event_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of the events ``event_ids`` of ``home_id`` was received (wall clock, UTC)."""
    found: dict[str, datetime] = {}
    for chunk in batches(event_ids):
        query = select(events.c.event_id, events.c.received_at).where(
            events.c.event_id.in_(chunk), events.c.home_id == home_id
        )
        found.update((eid, utc(at)) for eid, at in conn.execute(query))
    return found


def unpaired_event_ids(conn: Connection, home_id: str) -> list[str]:
    """Ids of the events of ``home_id`` not yet part of a stored use, by time.

    Ids only: the pairer keeps the waveforms of events it has seen waiting, and decoding them
    again at every re-pairing cost more than the pairing itself.
    """
    paired = select(use_events.c.event_id).where(
        use_events.c.event_id == events.c.event_id, use_events.c.home_id == events.c.home_id
    )
    query = (
        select(events.c.event_id)
        .where(events.c.home_id == home_id, ~paired.exists())
        .order_by(events.c.t, events.c.event_id)
    )
    return list(conn.execute(query).scalars())


def load_unpaired_events(conn: Connection, home_id: str) -> list[Event]:
    """Events of ``home_id`` not yet part of a stored use, by time: the input of re-pairing."""
    return load_events(conn, unpaired_event_ids(conn, home_id), home_id)
