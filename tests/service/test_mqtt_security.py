"""The shipped broker configuration (deploy/mosquitto.conf, deploy/atlas.acl) on a real Mosquitto:
no anonymous client, each home's logins confined to that home, Atlas end to end over TLS.

The broker runs the deployment files with only their paths and ports replaced, the logins made by
`atlas broker users`' own function, and a CA drawn for this run: service/broker.py's
``SecureBroker``, what ``atlas demo --secure`` runs (tests/service/test_demo_secure.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from svc_factories import sim_messages

from atlas.homespec import parse_home_spec
from service.broker import SecureBroker
from service.broker_certs import self_signed_ca
from service.broker_logins import device_username
from service.mqttconn import BrokerEndpoint, new_client
from service.runtime.service import AtlasRuntime
from service.settings import Settings
from service.storage.homes import upsert_home
from service.waiting import wait_until
from simulator.presets import load_preset
from simulator.stream import stream_events

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BASE = "atlas/v1/homes"
A, B = "home-a", "home-b"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """deploy/ on a private Mosquitto: the logins of homes A and B and the service's."""
    with SecureBroker(tmp_path_factory.mktemp("secure-broker"), [A, B], deploy_dir=DEPLOY) as b:
        yield b


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA nobody used: a client trusting only it must refuse the broker."""
    return self_signed_ca(tmp_path_factory.mktemp("other-ca"), "other-ca")


class Probe:
    """A client built by Atlas's own ``new_client`` that records what the broker answers."""

    def __init__(self, url: str, client_id: str = "", session_s: int = 0) -> None:
        self.broker = BrokerEndpoint.from_url(url)
        self.client = new_client(self.broker, client_id)
        self.connack: str | None = None
        self.error: Exception | None = None
        self.acks: dict[int, str] = {}
        self.granted: list[str] = []
        self.messages: dict[str, bytes] = {}
        self._answered = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self._answered.set()  # closed before a CONNACK
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.granted.extend(map(str, rcs))
        self.client.on_message = lambda c, u, m: self.messages.__setitem__(m.topic, m.payload)
        props = None
        if session_s:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_s
        try:
            self.client.connect(
                self.broker.host, self.broker.port, clean_start=not session_s, properties=props
            )
        except OSError as exc:  # a TLS handshake the broker refused
            self.error = exc
            return
        self.client.loop_start()
        self._answered.wait(5)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connack = str(reason_code)
        self._answered.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # "No matching subscribers" (16) is a success as well: codes below 128
        self.acks[mid] = str(reason_code) if reason_code.is_failure else "Success"

    @property
    def connected(self) -> bool:
        return self.connack == "Success"

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> str:
        """The PUBACK's verdict: "Success" or why the broker refused the message."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert wait_until(lambda: info.mid in self.acks, 5), f"no PUBACK for {topic}"
        return self.acks[info.mid]

    def subscribe(self, *topics: str) -> None:
        expected = len(self.granted) + len(topics)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        assert wait_until(lambda: len(self.granted) >= expected, 5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()


def _probe(probes: list[Probe], url: str, client_id: str = "", session_s: int = 0) -> Probe:
    probe = Probe(url, client_id, session_s)
    probes.append(probe)
    return probe


@pytest.mark.parametrize("listener", ["device", "service"])
def test_an_anonymous_client_is_refused(deployment, probes, listener):
    probe = _probe(probes, deployment.url(None, service=listener == "service"))
    assert probe.connack == "Not authorized"


def test_a_wrong_password_is_refused(deployment, probes):
    url = deployment.device_url(A, "gateway").replace(f"{A}%2Fsensors@", f"{A}%2Fsensors:wrong@")
    assert _probe(probes, url).connack == "Not authorized"


def test_the_service_listener_wants_an_atlas_certificate(deployment, probes):
    """A device's login with a valid password still cannot reach the listener where client
    ids are free (and Atlas's sessions live) without Atlas's client certificate."""
    url = deployment.url(device_username(A, "gateway"), service=True, cert=False)
    probe = _probe(probes, url)
    assert not probe.connected and (probe.error is not None or probe.connack is None)


@pytest.mark.parametrize(
    ("home", "role", "topic", "allowed"),
    [
        (A, "gateway", f"{BASE}/{A}/sensors/s1/events", True),
        (A, "gateway", f"{BASE}/{B}/sensors/s1/events", False),
        (A, "gateway", f"{BASE}/{A}/label-requests/r1/answer", False),
        (A, "homeowner", f"{BASE}/{A}/label-requests/r1/answer", True),
        (A, "homeowner", f"{BASE}/{B}/label-requests/r1/answer", False),
        (A, "homeowner", f"{BASE}/{A}/sensors/s1/events", False),
        (A, "homeowner", f"{BASE}/{A}/label-requests", False),  # the service's request list
        (B, "homeowner", f"{BASE}/{A}/label-requests/r1/answer", False),
    ],
)
def test_a_login_publishes_only_its_own_homes_topics(
    deployment, probes, uid, home, role, topic, allowed
):
    atlas = _probe(probes, deployment.service_url, f"atlas-{uid}")
    atlas.subscribe(f"{BASE}/+/sensors/+/events", f"{BASE}/+/label-requests/+/answer")
    device = _probe(probes, deployment.device_url(home, role))
    assert device.connected
    body = f"{home} {role} {uid}".encode()
    assert device.publish(topic, body) == ("Success" if allowed else "Not authorized")
    if allowed:
        assert wait_until(lambda: atlas.messages.get(topic) == body, 5)
    else:
        time.sleep(0.3)
        assert atlas.messages.get(topic) != body


def test_a_login_reads_only_its_own_homes_topics(deployment, probes, uid):
    atlas = _probe(probes, deployment.service_url, f"atlas-{uid}")
    published = {}
    for home in (A, B):
        for topic in (
            f"{BASE}/{home}/label-requests",
            f"{BASE}/{home}/label-requests/r-{uid}/answer/result",
            f"{BASE}/{home}/state",
            f"{BASE}/{home}/errors",
        ):
            published[topic] = f"{topic} {uid}".encode()
            assert atlas.publish(topic, published[topic], retain=True) == "Success"
    try:
        homeowner = _probe(probes, deployment.device_url(A, "homeowner"))
        gateway = _probe(probes, deployment.device_url(A, "gateway"))
        for device in (homeowner, gateway):
            device.subscribe("atlas/#", f"{BASE}/{B}/label-requests", f"{BASE}/{B}/state")
        readable = {
            f"{BASE}/{A}/label-requests",
            f"{BASE}/{A}/label-requests/r-{uid}/answer/result",
        }
        assert wait_until(lambda: readable <= set(homeowner.messages), 5)
        time.sleep(0.5)  # anything else would have come with them (retained, sent on SUBSCRIBE)
        assert {t for t, body in homeowner.messages.items() if body == published.get(t)} == (
            readable
        )
        assert not [t for t, body in gateway.messages.items() if body == published.get(t)]
    finally:
        for topic in published:  # an empty retained message deletes the retained one
            atlas.publish(topic, b"", retain=True)


def test_a_device_cannot_take_over_atlas_session(deployment, probes, uid):
    """Atlas's intake session keeps queuing while it is away, even when another home's login
    connects with its client id (on the device listener the client id becomes the username)."""
    intake_id = f"atlas-intake-{uid}"
    atlas = _probe(probes, deployment.service_url, intake_id, session_s=600)
    atlas.subscribe(f"{BASE}/+/sensors/+/events")
    atlas.close()
    gateway = _probe(probes, deployment.device_url(A, "gateway"))
    topics = [f"{BASE}/{A}/sensors/s{i}-{uid}/events" for i in range(5)]
    assert [gateway.publish(t) for t in topics] == ["Success"] * 5
    intruder = _probe(probes, deployment.device_url(B, "homeowner"), intake_id, session_s=600)
    assert intruder.connected
    intruder.close()
    back = _probe(probes, deployment.service_url, intake_id, session_s=600)
    assert wait_until(lambda: set(topics) <= set(back.messages), 5), sorted(back.messages)


def test_atlas_works_end_to_end_over_tls(deployment, probes, sqlite_engine, uid, tmp_path, caplog):
    """Atlas's intake and runtime log in over TLS with their client certificate; the gateway's
    events are stored, the homeowner device reads its requests, answers and reads the reply."""
    caplog.set_level(logging.DEBUG)
    spec = parse_home_spec(load_preset("two_bath_house").to_dict() | {"home_id": A})
    with sqlite_engine.begin() as conn:
        upsert_home(conn, spec)
    events, messages = sim_messages(spec, "atlas/v1", days=1, seed=5)
    settings = Settings(
        db_url="sqlite:///unused.db",
        broker_url=deployment.service_url,
        mqtt_client_prefix=f"t{uid}",
        provisional_process=False,
        log_json=False,
    )
    homeowner = _probe(probes, deployment.device_url(A, "homeowner"))
    requests_topic = f"{BASE}/{A}/label-requests"
    homeowner.subscribe(requests_topic, f"{requests_topic}/+/answer/result")
    rt = AtlasRuntime(settings, sqlite_engine)
    rt.start()
    try:
        assert rt.link.connected.is_set() and rt.intake.connected.is_set()
        assert wait_until(lambda: requests_topic in homeowner.messages, 10)
        assert json.loads(homeowner.messages[requests_topic])["requests"] == []
        report = stream_events(
            messages,
            deployment.device_url(A, "gateway"),
            speed=0,
            progress=False,
            outbox_dir=tmp_path / "outbox",
        )
        assert report.sent == report.acknowledged == len(events) and report.refused == 0
        assert wait_until(lambda: rt.intake.counters.stored >= len(events), 30)
        answer = f"{requests_topic}/no-such-request/answer"
        assert homeowner.publish(answer, b'{"choice": "shower"}') == "Success"
        assert wait_until(lambda: f"{answer}/result" in homeowner.messages, 10)
        assert json.loads(homeowner.messages[f"{answer}/result"])["ok"] is False
    finally:
        rt.stop()
    assert rt.intake.counters.dead_letters == 0
    shown = caplog.text
    assert not [x.username for x in deployment.logins.values() if x.password in shown]


def test_the_gateway_learns_why_the_broker_refused_its_events(deployment, tmp_path):
    """Events on another home's topics are refused by PUBACK and stay in the outbox."""
    messages = [(f"{BASE}/{B}/sensors/s1/events", b"{}", 0.0)]
    report = stream_events(
        messages,
        deployment.device_url(A, "gateway"),
        speed=0,
        progress=False,
        outbox_dir=tmp_path / "outbox",
    )
    assert (report.acknowledged, report.refused, report.pending) == (0, 1, 1)


def test_a_refused_login_stops_the_gateway_at_once(deployment):
    url = deployment.device_url(A, "gateway")
    bad = url.replace(f"{A}%2Fsensors@", f"{A}%2Fsensors:not-the-password@")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="refused the connection: Not authorized") as e:
        stream_events([], bad, speed=0, progress=False)
    assert time.monotonic() - started < 5 and "not-the-password" not in str(e.value)


def test_a_broker_certificate_from_another_ca_is_refused(deployment, other_ca, caplog):
    """TLS checks the broker: a client trusting another CA does not connect, and says why."""
    url = deployment.device_url(A, "gateway").replace(
        quote(str(deployment.certs.ca), safe=""), quote(str(other_ca), safe="")
    )
    assert str(other_ca.name) in url
    with pytest.raises(ConnectionError, match="no connection to mqtts://home-a%2Fsensors@"):
        stream_events([], url, speed=0, progress=False, connect_timeout_s=2)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
