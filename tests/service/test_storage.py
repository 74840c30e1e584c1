"""Storage on SQLite and PostgreSQL: idempotent inserts, lossless waveforms, dead letters,
engine snapshot chains."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from svc_factories import make_event, payload

from atlas.events import decode_event
from atlas.homespec import parse_home_spec
from atlas.uses import UseStatus, WaterUse
from service.storage.deadletters import DEAD_LETTER_KEEP_BYTES, DeadLetter, insert_dead_letters
from service.storage.engine import alembic_config, current_revision, upgrade
from service.storage.enginestate import KEEP_VERSIONS, load_engine_state, save_engine_state
from service.storage.events import EventRow, insert_events, load_events, load_unpaired_events
from service.storage.homes import load_sensors, upsert_home
from service.storage.labelrequests import TransitionError, plan_request, transition
from service.storage.schema import dead_letters, fixtures, homes, model_snapshots
from service.storage.snapshots import load_snapshot, save_snapshot
from service.storage.stats import db_stats
from service.storage.uses import home_scoped_use_id, insert_uses, load_uses

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def home(engine, home_spec):
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
    return home_spec.home_id


def test_upgrade_is_idempotent(engine):
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert current_revision(engine) == head  # the fixture upgraded once
    upgrade(engine)
    assert current_revision(engine) == head


def test_timestamps_are_utc_whatever_zone_they_were_given_in(engine, home_spec):
    """SQLite has no time-zone type: without UTCDateTime a Chicago time came back 6 h off."""
    chicago = datetime(2026, 3, 2, 9, 30, tzinfo=ZoneInfo("America/Chicago"))  # 15:30 UTC
    with engine.begin() as conn:
        upsert_home(conn, home_spec, now=chicago)
    with engine.connect() as conn:
        created = conn.execute(select(homes.c.created_at)).scalar_one()
        # WHERE binds go through the same type, so a comparison in another zone is exact too
        same = select(func.count()).where(homes.c.created_at == chicago)
        before = select(func.count()).where(homes.c.created_at < chicago + timedelta(seconds=1))
        n_same, n_before = conn.execute(same).scalar(), conn.execute(before).scalar()
    assert created == chicago and created.tzinfo == UTC
    assert created.hour == 15
    assert (n_same, n_before) == (1, 1)


def test_home_registration_replaces_inventory(engine, home_spec, home):
    with engine.begin() as conn:
        assert upsert_home(conn, home_spec) is False
        n = conn.execute(select(func.count()).select_from(fixtures)).scalar_one()
        assert n == len(home_spec.fixtures)
        assert load_sensors(conn, home) == {"hot": ("hot", 1000), "cold": ("cold", 1000)}
        assert load_sensors(conn, "no-such-home") is None


def test_insert_events_is_idempotent(engine, home):
    rows = [EventRow(make_event(home, i)) for i in range(5)]
    with engine.begin() as conn:
        assert insert_events(conn, rows[:3], NOW) == {(home, r.event.event_id) for r in rows[:3]}
    with engine.begin() as conn:  # a redelivery overlapping the first batch, with a repeat
        new = insert_events(conn, rows + rows[:1], NOW)
    assert new == {(home, r.event.event_id) for r in rows[3:]}
    with engine.connect() as conn:
        stats = db_stats(conn)
    assert stats["events"] == stats["distinct_event_ids"] == 5


def test_waveform_round_trip_keeps_gateway_counts(engine, home):
    event = decode_event(payload(make_event(home, 7)))
    with engine.begin() as conn:
        insert_events(conn, [EventRow(event)], NOW)
        (loaded,) = load_events(conn, [event.event_id])
    np.testing.assert_array_equal(loaded.samples, event.samples)
    assert (loaded.t, loaded.line, loaded.sample_rate_hz) == (event.t, "hot", 1000)


def test_dead_letter_keeps_real_size_of_huge_payload(engine):
    huge = b"x" * (3 * DEAD_LETTER_KEEP_BYTES)
    letter = DeadLetter("a/b", huge, "too_large", "payload is too large", None, NOW)
    with engine.begin() as conn:
        insert_dead_letters(conn, [letter])
        row = conn.execute(select(dead_letters)).one()
    assert (row.payload_size, len(row.payload), row.reason) == (
        len(huge),
        DEAD_LETTER_KEEP_BYTES,
        "too_large",
    )


def test_uses_are_stored_once_and_link_their_events(engine, home):
    events = [make_event(home, i) for i in range(2)]
    use = WaterUse(
        f"u-{events[0].event_id}",
        home,
        ("hot",),
        events[0].t,
        events[1].t,
        UseStatus.PAIRED,
        (events[0].event_id,),
        (events[1].event_id,),
        {"hot": 25.0},
    )
    with engine.begin() as conn:
        insert_events(conn, [EventRow(e) for e in events], NOW)
        assert insert_uses(conn, [use]) == {use.use_id}
        assert insert_uses(conn, [use]) == set()
        assert load_unpaired_events(conn, home) == []


def test_two_homes_may_use_the_same_event_ids(engine, home, home_spec):
    other = f"{home}-b"
    with engine.begin() as conn:
        upsert_home(conn, parse_home_spec(home_spec.to_dict() | {"home_id": other}))
    mine = [make_event(home, i) for i in range(2)]
    theirs = [replace(e, home_id=other, samples=e.samples + 1) for e in mine]  # same ids

    def use_of(evs):
        first, last = evs
        return WaterUse(
            f"u-{first.event_id}",
            first.home_id,
            ("hot",),
            first.t,
            last.t,
            UseStatus.PAIRED,
            (first.event_id,),
            (last.event_id,),
            {"hot": 25.0},
        )

    with engine.begin() as conn:
        assert len(insert_events(conn, [EventRow(e) for e in mine], NOW)) == 2
        assert insert_events(conn, [EventRow(e) for e in theirs], NOW) == {
            (other, e.event_id) for e in theirs
        }
        assert insert_uses(conn, [use_of(mine)]) == {f"u-{mine[0].event_id}"}
        (renamed,) = insert_uses(conn, [use_of(theirs)])
        assert insert_uses(conn, [use_of(theirs)]) == set()  # the same id again: stored once
        assert load_unpaired_events(conn, home) == load_unpaired_events(conn, other) == []
        loaded = load_events(conn, [mine[0].event_id], other)
        (use,) = load_uses(conn, other)
    assert renamed == use.use_id == home_scoped_use_id(use_of(theirs))
    assert use.event_ids == tuple(e.event_id for e in theirs)
    assert [e.home_id for e in loaded] == [other]
    assert np.allclose(loaded[0].samples, theirs[0].samples, atol=0.01)


def test_label_request_state_machine(engine, home):
    with engine.begin() as conn:
        kwargs = dict(
            home_id=home, round_=1, slot=0, use_id=None, choices=["a"], prompt="?", now=NOW
        )
        assert plan_request(conn, request_id="r1", **kwargs) is True
        assert plan_request(conn, request_id="r1-again", **kwargs) is False  # same round/slot
        assert transition(conn, "r1", "sent", NOW) is True
        assert transition(conn, "r1", "answered", NOW) is True
        assert transition(conn, "r1", "answered", NOW) is False  # a repeated answer
        with pytest.raises(TransitionError, match="cannot become 'expired'"):
            transition(conn, "r1", "expired", NOW)


def test_model_snapshots_are_versioned(engine, home):
    with engine.begin() as conn:
        assert save_snapshot(conn, home, "classifier", b"v1", {"n": 1}, NOW) == 1
        assert save_snapshot(conn, home, "classifier", b"v2", {"n": 2}, NOW) == 2
        assert load_snapshot(conn, home, "classifier") == (2, {"n": 2}, b"v2")
        assert load_snapshot(conn, home, "classifier", 1) == (1, {"n": 1}, b"v1")


# --- engine snapshots: a full snapshot, then deltas; pruning keeps the chain a load needs


def _state(i: int) -> dict:
    return {"format": "f", "i": i, "codes": np.full((2, 3), i, dtype=np.float32)}


def _versions(conn, home_id: str) -> list[int]:
    query = select(model_snapshots.c.version).where(model_snapshots.c.home_id == home_id)
    return sorted(conn.execute(query).scalars())


def test_a_load_reads_the_full_snapshot_and_every_delta_after_it_in_order(engine, home):
    with engine.begin() as conn:
        base = save_engine_state(conn, home, _state(0), {"n": 0}, NOW)
        for i in range(1, 4):
            save_engine_state(conn, home, _state(i), {"n": i}, NOW + timedelta(i), base=base)
        stored = load_engine_state(conn, home)
    assert (stored.version, stored.base, stored.meta["n"]) == (4, 1, 3)
    assert stored.state["i"] == 0 and [d["i"] for d in stored.deltas] == [1, 2, 3]
    np.testing.assert_array_equal(stored.deltas[-1]["codes"], np.full((2, 3), 3))


def test_pruning_keeps_the_current_chain_and_drops_older_ones(engine, home):
    with engine.begin() as conn:
        old = save_engine_state(conn, home, _state(0), {}, NOW)
        for i in range(1, 6):
            save_engine_state(conn, home, _state(i), {}, NOW, base=old)
        assert _versions(conn, home) == [1, 2, 3, 4, 5, 6]  # one chain: all of it
        new = save_engine_state(conn, home, _state(9), {}, NOW)
        save_engine_state(conn, home, _state(10), {}, NOW, base=new)
        kept = _versions(conn, home)
        assert kept[0] == min(new, 8 - KEEP_VERSIONS + 1) and kept[-1] == 8
        stored = load_engine_state(conn, home)
    assert stored.state["i"] == 9 and [d["i"] for d in stored.deltas] == [10]


def test_a_chain_with_a_gap_is_an_error_not_a_silent_older_state(engine, home):
    with engine.begin() as conn:
        base = save_engine_state(conn, home, _state(0), {}, NOW)
        save_engine_state(conn, home, _state(1), {}, NOW, base=base)
        save_engine_state(conn, home, _state(2), {}, NOW, base=base)
        conn.execute(
            model_snapshots.delete().where(
                model_snapshots.c.home_id == home, model_snapshots.c.version == 2
            )
        )
        with pytest.raises(RuntimeError, match=r"chain 1\.\.3 is broken"):
            load_engine_state(conn, home)
