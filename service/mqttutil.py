"""Small MQTT helpers: the address of an anonymous broker, and the topic prefix of a filter."""

from __future__ import annotations

from service.mqttconn import BrokerEndpoint


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://HOST:PORT`` -> (host, port), for a client that connects without login or TLS.

    A URL with a login or ``mqtts://`` is refused rather than reduced to its address: that
    client would connect anonymously and in clear. Such clients are built with
    :func:`service.mqttconn.new_client`.
    """
    broker = BrokerEndpoint.from_url(url)
    if broker.tls or broker.username is not None:
        raise ValueError(
            f"broker url {broker.masked()!r} has a login or TLS; this client only connects "
            "anonymously in clear (service.mqttconn.new_client applies both)"
        )
    return broker.host, broker.port


def topic_prefix(topic_filter: str) -> str:
    """The part before ``/homes/``: ``$share/g/atlas/v1/homes/+/...`` -> ``atlas/v1``."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    head, sep, _ = topic_filter.partition("/homes/")
    if not sep:
        raise ValueError(f"topic filter {topic_filter!r} should contain '/homes/'")
    return head
