"""The owner's pairing queue: each home once its events have settled, a busy home not put off."""

from __future__ import annotations

from service.runtime.service import _SettleQueue


def test_homes_come_out_when_their_time_comes_and_a_busy_home_is_not_put_off():
    q = _SettleQueue()
    assert q.pop_ready(0.0) == set() and q.next_in(0.0) is None
    q.add({"a", "b"}, 1.0)
    q.add({"c"}, 3.0)
    assert q.pop_ready(0.5) == set() and q.next_in(0.5) == 0.5
    q.add({"a"}, 2.0)  # new events of a meanwhile: a still comes out at 1.0 ...
    assert q.pop_ready(1.0) == {"a", "b"}
    assert q.next_in(1.0) == 1.0  # ... and once more at 2.0, for the new events
    assert q.pop_ready(2.0) == {"a"}
    assert q.pop_ready(2.5) == set() and q.pop_ready(3.0) == {"c"}
    assert q.next_in(3.0) is None
