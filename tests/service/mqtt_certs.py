"""Throw-away TLS material for the MQTT tests: the generator ``atlas demo --secure`` uses
(service/broker_certs.py), so tests and demo draw their CA the same way.

Nothing here is ever committed: each test session draws its own CA and keys.
"""

from __future__ import annotations

from service.broker_certs import Certs, make_certs, self_signed_ca

__all__ = ["Certs", "make_certs", "self_signed_ca"]
