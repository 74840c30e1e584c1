"""The fleet versions this worker's engines use: each decoded once, then addressed per home.

Why a cache: a stored version never changes and many homes share it, while a home's engine is
loaded again after every restart and after every save by another worker. Why the accuracy
prior is switched off here by default: it under-covers (docs/fleet.md, "Coverage of the fleet
prior"), so the stored fleet keeps it (``GET /v1/fleet`` shows it) but an engine gets it only
with the setting ``fleet.accuracy_prior``. Without it an engine's fleet is also much smaller:
a small fleet's Beta mixtures hold thousands of components per level and week, and the
engine's preview model carries its fleet to the provisional process at every model change.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from sqlalchemy import Connection

from atlas.fleet import FleetPrior
from atlas.homespec import HomeSpec
from service.settings import FleetSettings
from service.storage.fleets import load_fleet

#: Decoded versions kept; the smallest (oldest) goes first. Homes run on the newest few.
MAX_VERSIONS = 8


class FleetCache:
    """Stored fleet versions as the engines of this process receive them."""

    def __init__(self, settings: FleetSettings | None = None) -> None:
        self.settings = settings or FleetSettings()
        self._decoded: dict[int, FleetPrior] = {}
        self._lock = threading.Lock()

    def prior(self, conn: Connection, version: int, spec: HomeSpec) -> FleetPrior:
        """Fleet ``version`` for the home of ``spec`` (KeyError when it is not stored)."""
        with self._lock:
            fleet = self._decoded.get(version)
        if fleet is None:
            fleet = load_fleet(conn, version)
            with self._lock:
                self._decoded[version] = fleet
                while len(self._decoded) > MAX_VERSIONS:
                    del self._decoded[min(self._decoded)]
        fleet = fleet.for_home(spec)
        if self.settings.accuracy_prior:
            return fleet
        return replace(fleet, accuracy=None, config=replace(fleet.config, use_accuracy=False))
