"""Ids read in batches, so every ``IN (...)`` list stays within the database's limits.

WHY: SQLite allows a limited number of bound variables per statement, and a pass, a pairing
or a reload can name thousands of ids; reading them :data:`IN_LIST_MAX` at a time keeps each
statement under the limit on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

#: Ids per ``IN`` list.
IN_LIST_MAX = 500

T = TypeVar("T")


def batches(ids: Sequence[T], size: int = IN_LIST_MAX) -> Iterator[Sequence[T]]:
    """``ids`` in consecutive slices of at most ``size``."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
