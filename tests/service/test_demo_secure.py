"""``atlas demo --secure``: the demo over the shipped broker config (deploy/), each client with
its own login, prints the same table as over the anonymous private broker, and no password."""

from __future__ import annotations

import logging
import shutil

import pytest

from service.cli import build_parser
from service.demo import run_demo

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None,
    reason="needs the mosquitto binary",
)
#: What differs between the two runs on purpose: the broker, ports, folders, wall time.
_RUN_SPECIFIC = (
    "started a private mosquitto",
    "  service ",
    "  gateway ",
    "  homeowner device ",
    "  logins made by",
    "service up:",
    "homeowner device (",
    "dashboard:",
    "days played in",
)


def _run(tmp_path, name: str, secure: bool) -> tuple[dict, list[str], list[str]]:
    """The summary, every printed line and the lines both runs should print alike."""
    lines: list[str] = []
    summary = run_demo(
        days=8,
        diligent_homeowner=True,  # day 8's round is answered: requests reach the phone's list
        verbose=True,
        secure=secure,
        workdir=tmp_path / name,
        out=lines.append,
    )
    return summary, lines, [x for x in lines if not any(s in x for s in _RUN_SPECIFIC)]


@pytest.mark.slow
@needs_mosquitto
def test_the_secure_demo_prints_the_same_table_and_no_password(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, not only the demo's WARNING level
    summary, printed, table = _run(tmp_path, "secure", secure=True)
    logged = caplog.text
    _, _, plain_table = _run(tmp_path, "plain", secure=False)
    assert table == plain_table  # same seeds, same table, whichever broker

    ev = summary["events"]
    assert ev["published"] == ev["acknowledged"] == ev["simulated"] == ev["stored"]
    assert ev["distinct_event_ids"] == ev["stored"] and ev["dead_letters"] == 0
    assert sum(summary["requests"].values()) >= 2
    # the phone read its home's retained list of open requests, the round's requests included
    device = summary["homeowner_device"]
    assert device["login"] == "two-bath-house/label-requests"
    assert device["updates"] >= 2 and device["most_open_requests"] >= 1

    broker = tmp_path / "secure" / "broker"
    conf = (broker / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "use_username_as_clientid true" in conf
    assert "require_certificate true" in conf and "listener 8883" not in conf
    # each client logged in with its own login (Mosquitto's notice: ..., u'USERNAME')
    broker_log = (broker / "mosquitto.log").read_text()
    for username in ("atlas", "two-bath-house/sensors", "two-bath-house/label-requests"):
        assert f"u'{username}'" in broker_log
    secrets = {p.name: p.read_text() for p in (broker / "secrets").iterdir()}
    assert len(secrets) == 3 and all(len(x) >= 24 for x in secrets.values())
    shown = "\n".join([*printed, logged, broker_log, str(summary)])
    assert not [name for name, password in secrets.items() if password in shown]
    assert "two-bath-house%2Fsensors@127.0.0.1" in "\n".join(printed)


def test_secure_is_in_the_help_and_excludes_another_broker(capsys):
    parser = build_parser(with_benches=False)
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--help"])
    assert "--secure" in capsys.readouterr().out
    assert parser.parse_args(["demo", "--secure"]).secure
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--secure", "--broker", "mqtt://127.0.0.1:1883"])
    with pytest.raises(ValueError, match="no broker_url"):
        run_demo(secure=True, broker_url="mqtt://127.0.0.1:1883")
