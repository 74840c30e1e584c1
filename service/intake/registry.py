"""A cache of registered homes and sensors, so validation does not query the database per event."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from sqlalchemy import Engine

from service.storage.homes import SensorMap, load_sensors

#: Unknown home ids remembered (to answer a flood for one of them from memory). A fixed, small
#: number: the ids come from payloads and topics anyone on the broker can write.
UNKNOWN_HOMES_KEPT = 256


class _Lru:
    """``(value, fetched_at)`` per key, at most ``size`` keys, the least recently used dropped."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[SensorMap | None, float]] = OrderedDict()

    def get(self, key: str) -> tuple[SensorMap | None, float] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, value: SensorMap | None, fetched: float) -> None:
        self._items[key] = (value, fetched)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class HomeRegistry:
    """``sensors(home_id, sensor_id)`` with a per-home cache refreshed on a miss.

    A miss (unknown home, or a sensor not in the cached map) re-reads the home, at most once per
    ``min_refresh_s``, so a home registered while the intake runs is picked up within a second
    and a flood of messages for an unknown home costs one query per second, not one per message.

    Both caches are bounded, least recently used first out: registered homes by ``max_homes``
    (a setting, ``registry_cache_homes``), unknown ids by :data:`UNKNOWN_HOMES_KEPT`. Unknown
    ids live apart, so messages naming millions of made-up homes neither grow memory nor push
    real homes out of the cache.
    """

    def __init__(self, engine: Engine, min_refresh_s: float = 1.0, max_homes: int = 10_000) -> None:
        self.engine = engine
        self.min_refresh_s = min_refresh_s
        self._known = _Lru(max_homes)
        self._unknown = _Lru(UNKNOWN_HOMES_KEPT)
        self._lock = threading.Lock()

    def sensors(self, home_id: str, sensor_id: str | None = None) -> SensorMap | None:
        with self._lock:
            cached = self._known.get(home_id) or self._unknown.get(home_id)
            now = time.monotonic()
            if cached is not None:
                sensor_map, fetched = cached
                hit = sensor_map is not None and (sensor_id is None or sensor_id in sensor_map)
                if hit or now - fetched < self.min_refresh_s:
                    return sensor_map
            with self.engine.connect() as conn:
                sensor_map = load_sensors(conn, home_id)
            if sensor_map is None:
                self._known.pop(home_id)
                self._unknown.put(home_id, None, now)
            else:
                self._unknown.pop(home_id)
                self._known.put(home_id, sensor_map, now)
            return sensor_map

    def is_registered(self, home_id: str) -> bool:
        return self.sensors(home_id) is not None

    def cached(self) -> tuple[int, int]:
        """How many registered and unknown homes the cache holds now."""
        with self._lock:
            return len(self._known), len(self._unknown)
