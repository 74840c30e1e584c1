"""Re-pair a home's unpaired events after a commit and store the completed uses.

The one place the service calls :func:`atlas.pairing.pair_events`, so the live intake and
``atlas ingest`` pair exactly like the offline benchmark.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select

from atlas.pairing import pair_events
from service.storage.events import load_unpaired_events, utc
from service.storage.schema import events
from service.storage.uses import insert_uses

#: A use whose last event is this close to the home's newest event is not stored yet: the other
#: line of a mixing valve, or a slightly late message, may still arrive and change the pairing.
SETTLE = timedelta(seconds=5)


def pair_home(engine: Engine, home_id: str, *, final: bool = False) -> int:
    """Pair the unpaired events of ``home_id``; returns the number of uses stored.

    The clock is the home's newest event time, not the wall clock, so a replayed capture or an
    accelerated simulation times out opens exactly as live data would. ``final`` treats the
    data as complete (end of a file): still-running opens become open-ended uses.
    """
    with engine.begin() as conn:
        unpaired = load_unpaired_events(conn, home_id)
        if not unpaired:
            return 0
        newest = conn.execute(select(func.max(events.c.t)).where(events.c.home_id == home_id))
        now = max(unpaired[-1].t, utc(newest.scalar_one()))
        result = pair_events(unpaired, now=None if final else now)
        by_id = {e.event_id: e for e in unpaired}
        done = [
            use
            for use in result.uses
            if final or max(by_id[i].t for i in use.event_ids) <= now - SETTLE
        ]
        return len(insert_uses(conn, done))
