"""Broker logins for a home's devices and for the service, named so the ACL can be per home.

Mosquitto's ACL patterns (``deploy/atlas.acl``) put the username (``%u``) into a topic and can
do nothing else with it: no prefix stripping, no condition on the role. So a device's username
*is* the branch of the topic tree it owns below ``atlas/v1/homes/``:

- the gateway of home H logs in as ``H/sensors``: ``pattern write atlas/v1/homes/%u/+/events``
  lets it publish ``atlas/v1/homes/H/sensors/<sensor>/events`` and nothing of another home;
- a homeowner device of H logs in as ``H/label-requests``: ``read atlas/v1/homes/%u`` is the
  retained list of open requests, ``write atlas/v1/homes/%u/+/answer`` its answers and
  ``read atlas/v1/homes/%u/+/answer/result`` the service's replies.

Each pattern also applies to the other role (a gateway may publish on
``H/sensors/<x>/answer``), but only on topics that no Atlas subscription matches. Home ids
cannot contain ``/`` (``atlas.homespec.ID_PATTERN``), so no home's branch lies inside another's,
and the service account's name has no ``/``. The client id (``%c``) is not used: a client
chooses it freely, so a pattern on it would let any login claim any home. The device listener
replaces it with the username (``use_username_as_clientid``), so no device can take over
another client's session.

The passwords are drawn here and hashed into the password file by ``mosquitto_passwd`` (the
password reaches it on stdin, never on a command line, where ``ps`` would show it).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from atlas.homespec import is_valid_id

#: the topic branch below ``homes/<home_id>/`` each device role owns
DEVICE_BRANCHES = {"gateway": "sensors", "homeowner": "label-requests"}
SERVICE_USERNAME = "atlas"  # the user block of deploy/atlas.acl
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class Login:
    """One broker login; the password exists only in this object and, hashed, in the file."""

    role: str
    username: str
    password: str = field(repr=False)


def device_username(home_id: str, role: str) -> str:
    """``smith-house``, ``gateway`` -> ``smith-house/sensors`` (see the module docstring)."""
    if role not in DEVICE_BRANCHES:
        raise ValueError(f"role={role!r} should be one of {sorted(DEVICE_BRANCHES)}")
    if not is_valid_id(home_id):
        raise ValueError(f"home id {home_id!r} is not a valid home id (atlas.homespec.ID_PATTERN)")
    return f"{home_id}/{DEVICE_BRANCHES[role]}"


def provision_logins(
    password_file: Path,
    homes: list[str],
    service: str | None = None,
    binary: str = "mosquitto_passwd",
) -> list[Login]:
    """Add (or give new passwords to) the gateway and homeowner logins of each home in
    ``homes`` and the service account ``service``; returns them with their new passwords.

    Everything is checked before the file is touched. A new file is created readable by its
    owner only.
    """
    if service is not None and not _SERVICE_NAME.fullmatch(service):
        raise ValueError(
            f"service username {service!r} should be 1-64 letters, digits, '_', '.' or '-'"
        )
    wanted = [
        (role, device_username(h, role)) for h in dict.fromkeys(homes) for role in DEVICE_BRANCHES
    ]
    if service is not None:
        wanted.append(("service", service))
    if not wanted:
        raise ValueError("nothing to provision: give at least one home or the service account")
    tool = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")
    if tool is None:
        raise FileNotFoundError(f"{binary!r} not found (it comes with mosquitto)")
    if not password_file.exists():
        os.close(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    logins = [Login(role, name, secrets.token_urlsafe(24)) for role, name in wanted]
    for login in logins:
        _set_password(tool, password_file, login)
    return logins


def _set_password(tool: str, password_file: Path, login: Login) -> None:
    typed = f"{login.password}\n{login.password}\n"
    done = subprocess.run(
        [tool, str(password_file), login.username],
        input=typed,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"mosquitto_passwd could not set user {login.username!r} in {password_file}: "
            f"{(done.stderr or done.stdout).strip()[:300]}"
        )
