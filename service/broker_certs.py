"""Throw-away TLS material for a private broker on this machine (``atlas demo --secure``, tests).

A CA drawn for one run signs the broker's certificate (for ``127.0.0.1`` and ``localhost``) and
Atlas's client certificate (``CN=atlas``, client authentication): the three files
``deploy/mosquitto.conf`` names under ``/etc/mosquitto/certs/``, plus what Atlas presents on the
service listener. Nothing here is meant for a deployment (docs/operations.md, Certificates, makes
those with the same ``openssl`` commands and a CA kept offline); the keys are unencrypted, valid
for ``days`` and readable by their owner only.

WHY ``openssl`` on the command line: it comes with every system that has Mosquitto, and no
Python package that makes certificates is a runtime dependency of Atlas (pyproject.toml).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    ca: Path  # signs the broker's certificate and Atlas's client certificate
    broker_cert: Path  # for 127.0.0.1 and localhost
    broker_key: Path
    client_cert: Path  # Atlas's client certificate (CN atlas)
    client_key: Path


#: openssl req arguments for a new unencrypted P-256 key
_NEW_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        raise FileNotFoundError("the openssl command is not installed (apt install openssl)")
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip()[:300]
        raise RuntimeError(f"openssl {args[0]} failed: {why}")


def self_signed_ca(directory: Path, name: str, days: int = 2) -> Path:
    """A new CA ``CN=name``: ``name.crt`` (returned) and ``name.key`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        *_NEW_EC_KEY,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-days",
        str(days),
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )
    (directory / f"{name}.key").chmod(0o600)
    return directory / f"{name}.crt"


def _key_and_request(name: str, subject: str, cwd: Path) -> None:
    _openssl(
        "req",
        *_NEW_EC_KEY,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
        cwd=cwd,
    )


def _sign(name: str, extensions: str, days: int, cwd: Path) -> None:
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        str(days),
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


def make_certs(directory: Path, days: int = 2) -> Certs:
    """A CA (``CN=ca``), a broker certificate for 127.0.0.1/localhost and an Atlas client
    certificate, in ``directory`` (created)."""
    d = directory
    self_signed_ca(d, "ca", days)
    _key_and_request("broker", "/CN=localhost", d)
    _sign("broker", "subjectAltName=DNS:localhost,IP:127.0.0.1\n", days, d)
    _key_and_request("atlas", "/CN=atlas", d)
    _sign("atlas", "extendedKeyUsage=clientAuth\n", days, d)
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return Certs(d / "ca.crt", d / "broker.crt", d / "broker.key", d / "atlas.crt", d / "atlas.key")
