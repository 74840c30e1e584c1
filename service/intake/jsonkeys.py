"""Find a key given twice in one JSON object of an event payload.

``json.loads`` keeps the last of two equal keys, so ``{"home_id": "a", ..., "home_id": "b"}``
reads as home b while a reader of the first line sees home a. The identity keys decide where an
event is stored and whose errors topic hears of it, so a payload that repeats one is refused.
"""

from __future__ import annotations

import json

from atlas.events import MAX_PAYLOAD_BYTES

#: The keys whose repetition is checked exactly: they name the event and its home and sensor.
IDENTITY_KEYS = (b'"event_id"', b'"home_id"', b'"sensor_id"')


def repeated_key(payload: bytes) -> str | None:
    """The first key that appears twice in one object of ``payload`` (None: none, or the payload
    is not JSON an event decoder would accept anyway, which reports it itself).

    A byte scan first: a payload in which no identity key appears twice and that has no escape
    sequence (``"home\\u005fid"`` spells ``home_id`` too) cannot repeat one, and costs no second
    parse; sample data (base64 or numbers) has neither.

    >>> repeated_key(b'{"home_id": "a", "t": 1, "home_id": "b"}')
    'home_id'
    >>> repeated_key(b'{"home_id": "a"}') is None
    True
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    if b"\\" not in payload and all(payload.count(key) < 2 for key in IDENTITY_KEYS):
        return None
    found: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        if not found:
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    found.append(key)
                    break
                seen.add(key)
        return dict(items)

    try:
        json.loads(payload, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    return found[0] if found else None
