"""The leader's jobs do their engine work on the home's owner, or on the leader when it cannot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fleet_helpers import until

from atlas.homespec import parse_home_spec
from service.runtime.ownership import Ownership
from service.scheduler.delegate import DelegatedWorkFailed, Delegation
from service.storage.homes import upsert_home
from simulator.presets import load_preset

pytestmark = [pytest.mark.postgres]

DUE = datetime(2026, 3, 2, 19, 22, tzinfo=UTC)


class _Node:
    """A worker's ownership and delegation; its "engine work" records who did what."""

    def __init__(self, db, worker_id: int) -> None:
        self.worker_id = worker_id
        self.done: list[tuple[str, str, datetime | None]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail = False
        self.own = Ownership(db, worker_id, refresh_s=0.1)
        self.delegation = Delegation(self.own, self._work, poll_s=0.1)

    def _work(self, kind: str, home_id: str, due: datetime | None) -> dict:
        self.started.set()
        self.release.wait(30)
        if self.fail:
            raise ValueError("the engine refused")
        self.done.append((kind, home_id, due))
        return {"by": self.worker_id, "due": None if due is None else due.isoformat()}

    def stop(self) -> None:
        self.release.set()
        self.delegation.shutdown()
        self.own.stop()


@pytest.fixture
def nodes(postgres_engine, uid):
    base = load_preset("apartment").to_dict()
    with postgres_engine.begin() as conn:
        for i in range(6):
            upsert_home(conn, parse_home_spec(base | {"home_id": f"h{i}-{uid}"}))
    pair = [_Node(postgres_engine, 1), _Node(postgres_engine, 2)]
    for node in pair:
        node.own.start()
    assert until(lambda: all(n.own.live == (1, 2) and len(n.own.owned()) == 3 for n in pair))
    yield pair
    for node in pair:
        node.stop()


def test_the_owner_does_the_work_and_the_leader_gets_its_result(nodes):
    leader, owner = nodes
    theirs = sorted(owner.own.owned())[0]
    mine = sorted(leader.own.owned())[0]
    assert leader.delegation.run("round", theirs, DUE) == {"by": 2, "due": DUE.isoformat()}
    assert owner.done == [("round", theirs, DUE)] and leader.done == []
    assert leader.delegation.run("retrain", mine, None) == {"by": 1, "due": None}
    assert leader.done == [("retrain", mine, None)] and len(owner.done) == 1


def test_work_that_fails_on_the_owner_fails_the_leaders_job(nodes):
    leader, owner = nodes
    owner.fail = True
    with pytest.raises(DelegatedWorkFailed, match=r"daily of \S+ failed on worker 2: ValueError"):
        leader.delegation.run("daily", sorted(owner.own.owned())[0], DUE)
    assert leader.done == []


def test_the_leader_does_the_work_when_the_owner_leaves_meanwhile(nodes):
    leader, owner = nodes
    home = sorted(owner.own.owned())[0]
    owner.release.clear()  # the owner starts the work and hangs
    result: dict = {}

    def leader_job() -> None:
        result.update(leader.delegation.run("codebook", home, DUE))

    call = threading.Thread(target=leader_job)
    call.start()
    assert owner.started.wait(30)
    owner.own.stop()  # its membership lock goes: the leader sees the owner gone
    call.join(30)
    assert result == {"by": 1, "due": DUE.isoformat()} and leader.done == [("codebook", home, DUE)]
