"""The broker URL: its grammar, where the password comes from, and that no secret is shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from service.broker_certs import make_certs
from service.intake.mqtt import IntakeConfig
from service.mqttconn import BrokerEndpoint, masked_url, new_client
from service.mqttutil import parse_broker_url
from service.settings import Settings

SECRET = "s3cr3t-Pa55"
ADMIN = {"admin_sha256": ["ab" * 32]}


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "username"),
    [
        ("mqtt://broker", "broker", 1883, False, None),
        ("mqtts://broker", "broker", 8883, True, None),
        ("mqtts://gw@10.0.0.5:8884", "10.0.0.5", 8884, True, "gw"),
        ("mqtts://smith-house%2Fsensors@[::1]", "::1", 8883, True, "smith-house/sensors"),
    ],
)
def test_url_gives_address_tls_and_user(url, host, port, tls, username):
    broker = BrokerEndpoint.from_url(url)
    assert (broker.host, broker.port, broker.tls, broker.username) == (host, port, tls, username)


def test_options_name_files_and_decode():
    broker = BrokerEndpoint.from_url(
        "mqtts://u@h?ca_file=/etc/a%20b/ca.pem&cert_file=/c.pem&key_file=/k.pem&password_file=/p"
    )
    assert (broker.ca_file, broker.cert_file, broker.key_file, broker.password_file) == (
        Path("/etc/a b/ca.pem"),
        Path("/c.pem"),
        Path("/k.pem"),
        Path("/p"),
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"http://u:{SECRET}@h", "should look like mqtt://"),
        (f"mqtt://u:{SECRET}@h:99999", "Port out of range"),
        (f"mqtt://u:{SECRET}@h:0", "port should be 1-65535"),
        (f"mqtt://u:{SECRET}@h?ca_file=/ca.pem", "ca_file only with mqtts://"),
        ("mqtts://h?key_file=/k.pem", "key_file needs cert_file"),
        (f"mqtts://u:{SECRET}@h?cafile=/ca.pem", "unknown option(s) ['cafile']"),
        ("mqtts://h?ca_file=/a&ca_file=/b", "option ca_file should be given once"),
        (f"mqtt://:{SECRET}@h", "the username is empty"),
        ("mqtt://h?password_file=/p", "password_file needs a username"),
        (f"mqtt://u:{SECRET}@h/path", "no path"),
    ],
)
def test_a_bad_url_is_refused_without_its_password(url, says):
    with pytest.raises(ValueError, match="broker url") as refused:
        BrokerEndpoint.from_url(url)
    assert says in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mqtt://h:1883", "mqtt://h:1883"),
        (f"mqtts://u:{SECRET}@h:8883?ca_file=/ca.pem", "mqtts://u:***@h:8883?ca_file=/ca.pem"),
        (f"mqtt://u:pa/ss@w{SECRET}@h", "mqtt://u:***@h"),  # raw / and @ in a password
        ("mqtt://gw@h", "mqtt://gw@h"),
        ("not a url", "not a url"),
    ],
)
def test_masked_url_hides_only_the_password(url, shown):
    assert masked_url(url) == shown


def test_password_comes_from_the_url_then_the_file_then_the_environment(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text("from-file\n")
    env = {"ATLAS_MQTT_PASSWORD": "from-env"}
    in_file = f"mqtt://u:from-url@h?password_file={secret_file}"
    assert BrokerEndpoint.from_url(in_file).password(env) == "from-url"
    assert BrokerEndpoint.from_url(f"mqtt://u@h?password_file={secret_file}").password(env) == (
        "from-file"
    )
    assert BrokerEndpoint.from_url("mqtt://u@h").password(env) == "from-env"
    assert BrokerEndpoint.from_url("mqtt://h").password(env) is None


def test_a_user_without_a_password_names_the_ways_to_give_one():
    with pytest.raises(ValueError, match="password_file=PATH, set ATLAS_MQTT_PASSWORD"):
        BrokerEndpoint.from_url("mqtt://gw@h").password({})


@pytest.mark.parametrize("content", ["", "\nsecond-line\n"])
def test_an_empty_password_file_is_refused(tmp_path, content):
    secret_file = tmp_path / "password"
    secret_file.write_text(content)
    with pytest.raises(ValueError, match=f"password_file={secret_file}: the file is empty"):
        BrokerEndpoint.from_url(f"mqtt://u@h?password_file={secret_file}").password({})


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(FileNotFoundError, match=f"ca_file={missing}: no such file"):
        BrokerEndpoint.from_url(f"mqtts://h?ca_file={missing}").ssl_context()


def test_no_repr_shows_the_password():
    url = f"mqtts://u:{SECRET}@h"
    shown = [
        repr(BrokerEndpoint.from_url(url)),
        repr(IntakeConfig(broker_url=url)),
        repr(Settings(broker_url=url)),
    ]
    assert not [text for text in shown if SECRET in text]


def test_new_client_logs_in_with_the_urls_user(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET)
    client = new_client(BrokerEndpoint.from_url(f"mqtt://gw@h?password_file={secret_file}"), "c1")
    assert (client.username, client.password) == ("gw", SECRET)


def test_tls_verifies_the_broker_and_presents_the_client_certificate(tmp_path):
    certs = make_certs(tmp_path / "certs")
    context = BrokerEndpoint.from_url(
        f"mqtts://h?ca_file={certs.ca}&cert_file={certs.client_cert}&key_file={certs.client_key}"
    ).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ca"),),)]


def test_the_address_only_parser_refuses_a_login_or_tls():
    assert parse_broker_url("mqtt://h:1884") == ("h", 1884)
    for url in ("mqtts://h", f"mqtt://u:{SECRET}@h"):
        with pytest.raises(ValueError, match="login or TLS") as refused:
            parse_broker_url(url)
        assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    ("broker_url", "says"),
    [
        ("mqtt://127.0.0.1:1883", "production needs a broker login"),
        (f"mqtt://atlas:{SECRET}@broker.example.net", "should be mqtts://"),
    ],
)
def test_production_refuses_an_anonymous_or_clear_remote_broker(broker_url, says):
    with pytest.raises(ValueError, match=says) as refused:
        Settings(environment="production", tokens=ADMIN, broker_url=broker_url)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize(
    "broker_url", ["mqtt://atlas@localhost:1883", "mqtts://atlas@broker.example.net:8884"]
)
def test_production_accepts_a_login_over_tls_or_on_this_host(broker_url):
    Settings(environment="production", tokens=ADMIN, broker_url=broker_url)


def test_settings_refuse_a_bad_broker_url_without_echoing_the_password():
    with pytest.raises(ValueError, match="broker_url") as refused:
        Settings(broker_url=f"mqtt://u:{SECRET}@h:port")
    assert SECRET not in str(refused.value)
