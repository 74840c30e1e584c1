"""Which uses may be asked about: a person has to be able to answer.

WHY each rule: a homeowner remembers running the kitchen tap this morning, not last Tuesday
(``max_age``); when two uses overlapped nobody can say which transient was which; an open-ended
or orphan use is not a complete use to ask about; and nobody should be asked twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import numpy as np

from atlas.uses import UseStatus, WaterUse


def answerable(
    uses: Sequence[WaterUse],
    now: datetime,
    *,
    asked: Collection[str] = (),
    max_age: timedelta = timedelta(hours=24),
    require_paired: bool = True,
) -> np.ndarray:
    """Indices of ``uses`` that can be asked about at ``now``.

    A use qualifies when it ended at or before ``now`` and started at most ``max_age`` ago, its
    id is not in ``asked``, its status is PAIRED (with ``require_paired``), and its
    [open, close] interval overlaps no other use of the list (on any line: the homeowner cannot
    tell lines apart).
    """
    if max_age <= timedelta(0):
        raise ValueError(f"max_age={max_age!r} should be positive.")
    spans = [(u.t, u.t_close or u.t) for u in uses]
    order = sorted(range(len(uses)), key=lambda i: spans[i][0])
    overlapped = np.zeros(len(uses), dtype=bool)
    latest_end, latest_idx = None, -1
    for i in order:
        start, end = spans[i]
        if latest_end is not None and start < latest_end:
            overlapped[i] = overlapped[latest_idx] = True
        if latest_end is None or end > latest_end:
            latest_end, latest_idx = end, i
    asked_ids = set(asked)
    keep = [
        i
        for i, u in enumerate(uses)
        if not overlapped[i]
        and u.use_id not in asked_ids
        and (not require_paired or u.status == UseStatus.PAIRED)
        and spans[i][1] <= now
        and now - u.t <= max_age
    ]
    return np.array(keep, dtype=int)
