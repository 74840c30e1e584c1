"""Small MQTT helpers shared by the intake, the simulator's publisher and the benchmarks."""

from __future__ import annotations

from urllib.parse import urlparse

DEFAULT_PORT = 1883


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://HOST:PORT`` -> (host, port). Only plain ``mqtt://`` is supported for now."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise ValueError(f"broker url {url!r} should look like mqtt://HOST:PORT")
    return parsed.hostname, parsed.port or DEFAULT_PORT


def topic_prefix(topic_filter: str) -> str:
    """The part before ``/homes/``: ``$share/g/atlas/v1/homes/+/...`` -> ``atlas/v1``."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    head, sep, _ = topic_filter.partition("/homes/")
    if not sep:
        raise ValueError(f"topic filter {topic_filter!r} should contain '/homes/'")
    return head
