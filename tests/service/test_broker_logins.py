"""`atlas broker users`: logins named for the per-home ACL, hashed by mosquitto_passwd."""

from __future__ import annotations

import stat

import pytest

from service.broker_logins import device_username, provision_logins
from service.cli import main


@pytest.mark.parametrize(
    ("role", "username"),
    [("gateway", "smith-house/sensors"), ("homeowner", "smith-house/label-requests")],
)
def test_a_device_username_is_the_topic_branch_it_owns(role, username):
    assert device_username("smith-house", role) == username


@pytest.mark.parametrize(
    ("home_id", "role", "says"),
    [
        ("a/b", "gateway", "not a valid home id"),  # a / would reach into another branch
        ("a+", "gateway", "not a valid home id"),  # Mosquitto denies patterns to + and #
        ("home", "installer", "role='installer' should be one of"),
    ],
)
def test_a_username_outside_the_convention_is_refused(home_id, role, says):
    with pytest.raises(ValueError, match=says):
        device_username(home_id, role)


def test_provisioning_adds_hashed_logins_to_a_private_file(tmp_path):
    passwd = tmp_path / "atlas.passwd"
    logins = provision_logins(passwd, ["home-a", "home-a", "home-b"], service="atlas")
    assert [(x.role, x.username) for x in logins] == [
        ("gateway", "home-a/sensors"),
        ("homeowner", "home-a/label-requests"),
        ("gateway", "home-b/sensors"),
        ("homeowner", "home-b/label-requests"),
        ("service", "atlas"),
    ]
    lines = passwd.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == [x.username for x in logins]
    assert all(line.split(":", 1)[1].startswith("$7$") for line in lines)  # PBKDF2-SHA512
    assert not [x for x in logins if x.password in passwd.read_text() or x.password in repr(x)]
    assert len({x.password for x in logins}) == len(logins)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600


def test_provisioning_again_gives_a_new_password(tmp_path):
    passwd = tmp_path / "atlas.passwd"
    first = provision_logins(passwd, ["home-a"])
    before = passwd.read_text()
    again = provision_logins(passwd, ["home-a"])
    assert len(passwd.read_text().splitlines()) == 2 and passwd.read_text() != before
    assert {x.password for x in first}.isdisjoint(x.password for x in again)


def test_nothing_is_written_when_a_name_is_wrong(tmp_path):
    passwd = tmp_path / "atlas.passwd"
    with pytest.raises(ValueError, match="service username 'at:las'"):
        provision_logins(passwd, ["home-a"], service="at:las")
    assert not passwd.exists()


def test_cli_prints_each_password_once(tmp_path, capsys):
    passwd = tmp_path / "atlas.passwd"
    assert (
        main(["broker", "users", "--password-file", str(passwd), "--home", "home-a", "--service"])
        == 0
    )
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[:3]]
    assert [row[:2] for row in rows] == [
        ["gateway", "home-a/sensors"],
        ["homeowner", "home-a/label-requests"],
        ["service", "atlas"],
    ]
    assert all(out.count(row[2]) == 1 for row in rows)
    assert "systemctl reload mosquitto" in out


def test_cli_refuses_a_bad_home_id(tmp_path, capsys):
    assert main(["broker", "users", "--password-file", str(tmp_path / "p"), "--home", "A/B"]) == 2
    assert "'A/B' is not a valid home id" in capsys.readouterr().err
