"""Scheduler leader election: one leader per database schema, takeover when it stops."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from service.scheduler.leader import LeaderElection, connection_lock_key, leader_lock_key
from service.storage.engine import make_engine

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class _Flag:
    def __init__(self) -> None:
        self.elected = threading.Event()
        self.deposed = threading.Event()

    def election(self, engine) -> LeaderElection:
        return LeaderElection(engine, self.elected.set, self.deposed.set, retry_s=0.1)


def test_lock_key_depends_on_database_and_schema():
    assert leader_lock_key("test", "a") == leader_lock_key("test", "a")
    assert (
        len(
            {
                leader_lock_key("test", "a"),
                leader_lock_key("test", "b"),
                leader_lock_key("other", "a"),
            }
        )
        == 3
    )
    assert -(2**63) <= leader_lock_key("test", "a") < 2**63


@pytest.mark.postgres
def test_one_leader_per_schema_and_takeover(postgres_engine):
    first, second = _Flag(), _Flag()
    a, b = first.election(postgres_engine), second.election(postgres_engine)
    a.start()
    assert first.elected.wait(5)
    b.start()
    time.sleep(0.5)
    assert not second.elected.is_set()  # same schema: a standby
    # another schema on the same server has its own leader at the same time
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    other_engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    other = _Flag()
    c = other.election(other_engine)
    try:
        with other_engine.connect() as conn, postgres_engine.connect() as conn2:
            assert connection_lock_key(conn) != connection_lock_key(conn2)
        c.start()
        assert other.elected.wait(5)
        a.stop()  # the leader stops: the standby of its schema takes over
        assert first.deposed.is_set()
        assert second.elected.wait(5)
    finally:
        for election in (a, b, c):
            election.stop()
        other_engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _leader_gauge() -> float | None:
    return REGISTRY.get_sample_value("atlas_scheduler_leader")


def test_sqlite_process_is_the_leader_and_says_so_in_metrics(sqlite_engine):
    flag = _Flag()
    election = flag.election(sqlite_engine)
    election.start()
    try:
        assert flag.elected.wait(5)
        assert _leader_gauge() == 1.0  # an operator's alert: no worker (or two) leading
    finally:
        election.stop()
    assert flag.deposed.is_set()
    assert _leader_gauge() == 0.0
