"""Throw-away TLS material for the MQTT tests, made with openssl in a temporary directory.

Nothing here is ever committed: each test session draws its own CA and keys.
"""

from __future__ import annotations

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
    other_ca: Path  # a CA nobody used: a client trusting only it must refuse the broker


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


#: openssl req arguments for a new unencrypted P-256 key
_NEW_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


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


def _self_signed_ca(name: str, cwd: Path) -> None:
    _openssl(
        "req",
        "-x509",
        *_NEW_EC_KEY,
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        cwd=cwd,
    )


def _sign(name: str, extensions: str, cwd: Path) -> None:
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
        "2",
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


def make_certs(directory: Path) -> Certs:
    """A CA, a broker certificate for 127.0.0.1/localhost and an Atlas client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    _self_signed_ca("ca", directory)
    _self_signed_ca("other-ca", directory)
    _key_and_request("broker", "/CN=localhost", directory)
    _sign("broker", "subjectAltName=DNS:localhost,IP:127.0.0.1\n", directory)
    _key_and_request("atlas", "/CN=atlas", directory)
    _sign("atlas", "extendedKeyUsage=clientAuth\n", directory)
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    d = directory
    return Certs(
        d / "ca.crt",
        d / "broker.crt",
        d / "broker.key",
        d / "atlas.crt",
        d / "atlas.key",
        d / "other-ca.crt",
    )
