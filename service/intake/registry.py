"""A cache of registered homes and sensors, so validation does not query the database per event."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine

from service.storage.homes import SensorMap, load_sensors


class HomeRegistry:
    """``sensors(home_id, sensor_id)`` with a per-home cache refreshed on a miss.

    A miss (unknown home, or a sensor not in the cached map) re-reads the home, at most once per
    ``min_refresh_s``, so a home registered while the intake runs is picked up within a second
    and a flood of messages for an unknown home costs one query per second, not one per message.
    """

    def __init__(self, engine: Engine, min_refresh_s: float = 1.0) -> None:
        self.engine = engine
        self.min_refresh_s = min_refresh_s
        self._cache: dict[str, tuple[SensorMap | None, float]] = {}
        self._lock = threading.Lock()

    def sensors(self, home_id: str, sensor_id: str | None = None) -> SensorMap | None:
        with self._lock:
            cached = self._cache.get(home_id)
            now = time.monotonic()
            if cached is not None:
                sensor_map, fetched = cached
                hit = sensor_map is not None and (sensor_id is None or sensor_id in sensor_map)
                if hit or now - fetched < self.min_refresh_s:
                    return sensor_map
            with self.engine.connect() as conn:
                sensor_map = load_sensors(conn, home_id)
            self._cache[home_id] = (sensor_map, now)
            return sensor_map

    def is_registered(self, home_id: str) -> bool:
        return self.sensors(home_id) is not None
