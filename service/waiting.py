"""Polling a condition until a deadline: the one helper the demo and the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], bool],
    timeout_s: float = 30.0,
    poll_s: float = 0.05,
    max_poll_s: float | None = None,
) -> bool:
    """Whether ``predicate()`` became true within ``timeout_s`` (checked every ``poll_s``, and
    once more at the deadline, so a condition met while sleeping is not reported as missed).

    ``max_poll_s``: the pause doubles from ``poll_s`` up to this, so a condition usually met at
    once is seen within a millisecond while a long wait costs few checks.
    """
    deadline = time.monotonic() + timeout_s
    pause = poll_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
        if max_poll_s is not None:
            pause = min(2 * pause, max_poll_s)
    return predicate()
