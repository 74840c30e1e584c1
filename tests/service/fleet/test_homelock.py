"""Per-home advisory locks: stable keys, real blocking across connections, and two "workers"
pairing one home from a shuffled stream end with the same uses as in-order pairing."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from sqlalchemy import func, select, text

from atlas.pairing import pair_events
from service.intake.messages import InboundMessage
from service.intake.pipeline import IngestPipeline
from service.storage.engine import make_engine
from service.storage.homelock import ENGINE, PAIRING, home_key, lock_home_in_transaction
from service.storage.homes import upsert_home
from service.storage.schema import use_events, uses
from simulator.generate import generate_run
from tests.conftest import PG_URL

pytestmark = [pytest.mark.postgres]


def test_home_key_is_stable_signed_64_bit_and_per_purpose():
    # a fixed value: the key must be the same in every process and every release
    assert home_key("h-1", PAIRING) == home_key("h-1", PAIRING) == -3744710125342925916
    assert home_key("h-1", ENGINE) != home_key("h-1", PAIRING) != home_key("h-2", PAIRING)
    assert all(-(2**63) <= home_key(f"h-{i}", ENGINE) < 2**63 for i in range(100))
    with pytest.raises(ValueError, match="home_id=''"):
        home_key("", ENGINE)


def _second_engine(uid: str):
    return make_engine(PG_URL, connect_args={"options": f"-csearch_path=t_{uid}"})


def test_lock_blocks_another_connection_until_commit_and_spares_other_homes(postgres_engine, uid):
    other = _second_engine(uid)
    acquired: dict[str, float] = {}

    def contender(home: str) -> None:
        with other.begin() as conn:
            lock_home_in_transaction(conn, home, PAIRING)
            acquired[home] = time.monotonic()

    try:
        with postgres_engine.begin() as conn:
            lock_home_in_transaction(conn, f"h-{uid}", PAIRING)
            same = threading.Thread(target=contender, args=(f"h-{uid}",))
            same.start()
            contender(f"g-{uid}")  # another home: not blocked
            contender(f"h-{uid}x")
            time.sleep(0.5)
            assert f"h-{uid}" not in acquired  # still waiting
            released = time.monotonic()
        same.join(10)
        assert acquired[f"h-{uid}"] >= released
        with postgres_engine.connect() as conn:  # released at commit: nothing left held
            held = conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :o"),
                {"o": home_key(f"h-{uid}", PAIRING) & 0xFFFFFFFF},
            ).scalar_one()
        assert held == 0
    finally:
        other.dispose()


def test_two_workers_pairing_a_shuffled_stream_match_in_order_pairing(
    postgres_engine, home_spec, uid
):
    """Two intake pipelines (own engines, own in-process locks: like two processes) take
    alternate batches of a stream whose order is shuffled within each batch, and the worker
    holding the NEWER batch always commits first (the worst case of round-robin delivery and
    independent commits); both re-pair after every commit, concurrently."""
    sim = generate_run(home_spec, days=2, seed=5)
    with postgres_engine.begin() as conn:
        upsert_home(conn, home_spec)
    rng = random.Random(1)
    msgs = [
        InboundMessage(s.event.topic(), json.dumps(s.payload()).encode(), s.event.t, 0, 0, 0)
        for s in sim
    ]
    batches = [rng.sample(msgs[i : i + 8], len(msgs[i : i + 8])) for i in range(0, len(msgs), 8)]
    batches += [[]] * (len(batches) % 2)  # both workers take the same number of steps
    second = _second_engine(uid)
    workers = [IngestPipeline(postgres_engine, clock=None), IngestPipeline(second, clock=None)]
    assert workers[0].pairer.arrival_settle_s > 0  # PostgreSQL: several workers possible
    for w in workers:
        w.pairer.arrival_settle_s = 0.4  # > the commit skew forced below, keeps the test quick
    step = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for batch in batches[k::2]:
                step.wait()
                if k == 0:
                    time.sleep(0.1)  # the older batch commits after the newer one
                workers[k].process(batch)
                workers[k].pair({home_spec.home_id})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
            step.abort()

    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        workers[0].pair({home_spec.home_id}, final=True)
    finally:
        second.dispose()
    expected = {frozenset(u.event_ids) for u in pair_events([s.event for s in sim], now=None).uses}
    stored: dict[str, set[str]] = {}
    with postgres_engine.connect() as conn:
        for use_id, event_id in conn.execute(select(use_events.c.use_id, use_events.c.event_id)):
            stored.setdefault(use_id, set()).add(event_id)
        n_uses = conn.execute(select(func.count()).select_from(uses)).scalar_one()
    assert n_uses == len(stored)  # no use lost its links to a concurrent pairing
    linked = [e for ids in stored.values() for e in ids]
    assert sorted(linked) == sorted({s.event.event_id for s in sim})  # each event in one use
    assert {frozenset(ids) for ids in stored.values()} == expected
