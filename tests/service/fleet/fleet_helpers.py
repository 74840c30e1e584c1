"""Shared by the fleet tests (imported by this unique name, like ``rt_helpers``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Whether ``predicate`` held within the timeout (called once per try: it may consume)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
