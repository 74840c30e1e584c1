"""Words a person remembers for a label request ("Today at 07:42 water ran for 3 min 10 s ...").

Pure formatting: no I/O. The homeowner remembers the wall-clock time in their own time zone and
roughly how long the water ran, not an event id, so the prompt says exactly that.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def format_duration(seconds: float) -> str:
    """``190`` -> ``"3 min 10 s"``; ``3725`` -> ``"1 h 2 min"``; ``4`` -> ``"4 s"``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min {r} s" if r else f"{m} min"
    h, r = divmod(s, 3600)
    m = r // 60
    return f"{h} h {m} min" if m else f"{h} h"


def _lines(lines: tuple[str, ...] | list[str]) -> str:
    ordered = [x for x in ("hot", "cold") if x in lines]
    if len(ordered) == 2:
        return "on the hot and cold lines"
    return f"on the {ordered[0]} line" if ordered else "on an unknown line"


def describe_use(
    t_open: datetime | None,
    t_close: datetime | None,
    lines: tuple[str, ...] | list[str],
    now: datetime,
    tz: ZoneInfo,
) -> str:
    """The request prompt for a use, relative to ``now`` in the home's time zone.

    Within a week the day is counted back from ``now`` ("5 days ago"); the phone page words
    an open request again as of the moment it is shown.

    >>> from datetime import UTC, timedelta
    >>> t = datetime(2026, 3, 2, 7, 42, tzinfo=UTC)
    >>> describe_use(t, t.replace(minute=45, second=10), ["hot", "cold"], t, ZoneInfo("UTC"))
    'Today at 07:42 water ran for 3 min 10 s on the hot and cold lines'
    >>> describe_use(t, None, ["hot"], t + timedelta(days=5), ZoneInfo("UTC"))
    '5 days ago at 07:42 water started running on the hot line'
    """
    start = t_open or t_close
    if start is None:
        raise ValueError("a use needs t_open or t_close to be described")
    local = start.astimezone(tz)
    days = (now.astimezone(tz).date() - local.date()).days
    when = {0: "Today", 1: "Yesterday"}.get(days) or (
        f"{days} days ago" if 1 < days < 7 else local.strftime("On %A %d %B")
    )
    clock = local.strftime("%H:%M")
    if t_open is not None and t_close is not None:
        ran = f"water ran for {format_duration((t_close - t_open).total_seconds())}"
    elif t_open is not None:
        ran = "water started running"
    else:
        ran = "water stopped running"
    return f"{when} at {clock} {ran} {_lines(lines)}"
