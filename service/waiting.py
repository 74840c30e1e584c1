"""Polling a condition until a deadline: the one helper the demo and the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 30.0, poll_s: float = 0.05
) -> bool:
    """Whether ``predicate()`` became true within ``timeout_s`` (checked every ``poll_s``, and
    once more at the deadline, so a condition met while sleeping is not reported as missed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
