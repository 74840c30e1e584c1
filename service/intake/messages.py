"""The frozen message type the paho callback hands over; nothing downstream sees paho objects."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class InboundMessage:
    """One received payload. ``mid``/``generation`` identify it for the MQTT acknowledgement.

    ``generation`` counts broker connections: a message received on an earlier connection must
    not be acknowledged on the current one, because the broker redelivers it anyway and may have
    reused its packet id for a different message that is not committed yet. ``received_perf`` is
    the receipt on the ``perf_counter`` clock, for ``atlas_intake_commit_delay_seconds``.
    """

    topic: str
    payload: bytes
    received_at: datetime
    mid: int = 0
    qos: int = 0
    generation: int = 0
    received_perf: float = field(default_factory=time.perf_counter, compare=False)
