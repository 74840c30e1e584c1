"""Stored fleet versions on SQLite and PostgreSQL: bit-identical round trip, pruning, and the
fleet a home is registered with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from fp_factories import small_fleet, spec_of
from sqlalchemy import select

from atlas.checklist import build_checklist
from service.storage.fleets import (
    latest_fleet_version,
    list_fleet_versions,
    load_fleet,
    prune_fleet_versions,
    save_fleet_version,
)
from service.storage.homefleet import load_home_fleet, set_fleet_version, set_opt_out
from service.storage.homes import upsert_home
from service.storage.jsonarrays import encode_state
from service.storage.schema import fleet_versions

NOW = datetime(2026, 4, 6, 3, 0, tzinfo=UTC)


def _save(conn, n: int = 1) -> list[int]:
    return [
        save_fleet_version(
            conn, small_fleet(), built_at=NOW + timedelta(days=i), build_s=1.5, cpu_s=1.25
        )
        for i in range(n)
    ]


def _arrays(state):
    """Every array of a ``to_dict``, in order, as (dtype, shape, bytes)."""
    if isinstance(state, np.ndarray):
        return [(state.dtype.str, state.shape, state.tobytes())]
    items = state.values() if isinstance(state, dict) else state
    if isinstance(state, dict | list):
        return [a for v in items for a in _arrays(v)]
    return []


def test_a_version_reads_back_bit_for_bit(engine):
    fleet = small_fleet()
    with engine.begin() as conn:
        assert latest_fleet_version(conn) is None
        (version,) = _save(conn)
    with engine.connect() as conn:
        back = load_fleet(conn, version)
        blob = conn.execute(select(fleet_versions.c.blob)).scalar_one()
        (stored,) = list_fleet_versions(conn)
    assert version == 1 and stored.n_homes == 3 and stored.format == "atlas.fleet/1"
    assert (stored.build_s, stored.cpu_s, stored.built_at) == (1.5, 1.25, NOW)
    assert _arrays(back.to_dict()) == _arrays(fleet.to_dict()) != []
    assert encode_state(back.to_dict()) == blob  # decoded and encoded again: the same bytes
    spec = spec_of("apartment", "any")
    assert back.checklist(spec) == fleet.checklist(spec)


def test_pruning_keeps_the_newest_and_every_version_a_home_uses(engine, uid):
    spec = spec_of("apartment", f"h-{uid}")
    with engine.begin() as conn:
        _save(conn, 5)
        upsert_home(conn, spec, NOW)
        set_fleet_version(conn, spec.home_id, 2, NOW)
        assert prune_fleet_versions(conn, keep=2) == [1, 3]
        assert prune_fleet_versions(conn, keep=2) == []
        assert [v.version for v in list_fleet_versions(conn)] == [5, 4, 2]
        assert _save(conn) == [6]  # numbers are never reused


def test_a_new_home_starts_from_the_newest_fleet_and_keeps_it_when_re_registered(engine, uid):
    spec = spec_of("apartment", f"h-{uid}")
    fleet = small_fleet()
    skipped = [i.item_id for i in build_checklist(spec.fixtures) if i not in fleet.checklist(spec)]
    assert skipped
    with engine.begin() as conn:
        _save(conn, 2)
        upsert_home(conn, spec, NOW)
        assert load_home_fleet(conn, spec.home_id).version == 2
        set_opt_out(conn, spec.home_id, True, NOW)
        _save(conn)
        assert upsert_home(conn, spec, NOW) is False  # the installer replaces the spec
        home = load_home_fleet(conn, spec.home_id)
    assert (home.started_version, home.version, home.opt_out) == (2, 2, True)
    assert list(home.skipped) == skipped
