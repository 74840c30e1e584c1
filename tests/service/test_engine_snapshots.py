"""Engine snapshots in the database as chains: a full snapshot, then deltas; pruning keeps the
chain a load needs (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from service.storage.enginestate import KEEP_VERSIONS, load_engine_state, save_engine_state
from service.storage.homes import upsert_home
from service.storage.schema import model_snapshots

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def home(engine, home_spec):
    with engine.begin() as conn:
        upsert_home(conn, home_spec)
    return home_spec.home_id


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
