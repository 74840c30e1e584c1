"""How every Atlas MQTT client reaches the broker: address, login and TLS from one broker URL.

``mqtt://[USER[:PASSWORD]@]HOST[:PORT][?OPTIONS]`` is plain MQTT (port 1883 by default),
``mqtts://...`` is MQTT over TLS (port 8883), the server's certificate checked against the
system's CAs or ``ca_file`` and its host name against ``HOST``. Options (query parameters):

- ``password_file=PATH``: the password is the first line of that file;
- ``ca_file=PATH``: trust this CA (PEM) instead of the system's (``mqtts`` only);
- ``cert_file=PATH`` and optionally ``key_file=PATH``: present this client certificate (PEM;
  ``mqtts`` only).

The password comes, first found, from the URL itself, from ``password_file``, or from the
environment variable ``ATLAS_MQTT_PASSWORD``; a username without any of them is an error.

Why a URL and not separate settings: the same string reaches every client (``broker_url`` of
``atlas serve``, ``--broker`` of ``atlas intake`` and ``atlas-sim stream``), so none is left
connecting without its login or TLS; a database URL carries ``sslrootcert`` and ``passfile``
the same way. The password is read only when a client is built, is never part of a
repr, and a URL is shown only through :func:`masked_url`. Usernames that contain ``/`` (the
device logins, docs/operations.md) are written ``%2F`` in a URL.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

_LOGGER = logging.getLogger(__name__)

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
PASSWORD_ENV = "ATLAS_MQTT_PASSWORD"
_FILE_OPTIONS = ("password_file", "ca_file", "cert_file", "key_file")
_TLS_OPTIONS = ("ca_file", "cert_file", "key_file")


@dataclass(frozen=True)
class BrokerEndpoint:
    """A parsed broker URL; :meth:`from_url` checks its form, :func:`new_client` reads files."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    #: only when the URL itself carries it; see :meth:`password`
    url_password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_url(cls, url: str) -> BrokerEndpoint:
        """Parse ``url`` (see the module docstring); no file is read here."""
        shown = masked_url(url)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"broker url {shown!r}: {exc}") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"broker url {shown!r} should look like mqtt://[USER@]HOST[:PORT] or "
                "mqtts://[USER@]HOST[:PORT][?ca_file=...]"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"broker url {shown!r} should have no path or fragment")
        if port == 0:
            raise ValueError(f"broker url {shown!r}: port should be 1-65535")
        options = _options(parts.query, shown)
        tls = parts.scheme == "mqtts"
        if not tls and (given := [k for k in _TLS_OPTIONS if k in options]):
            raise ValueError(f"broker url {shown!r}: {', '.join(given)} only with mqtts://")
        if "key_file" in options and "cert_file" not in options:
            raise ValueError(f"broker url {shown!r}: key_file needs cert_file")
        username = None if parts.username is None else unquote(parts.username)
        password = None if parts.password is None else unquote(parts.password)
        if username == "":
            raise ValueError(f"broker url {shown!r}: the username is empty")
        if username is None and password is not None:
            raise ValueError(f"broker url {shown!r}: a password needs a username")
        if username is None and "password_file" in options:
            raise ValueError(f"broker url {shown!r}: password_file needs a username")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            tls=tls,
            username=username,
            url_password=password,
            **{k: Path(v) for k, v in options.items()},
        )

    def masked(self) -> str:
        """The URL to show in logs and errors: the password, if any, replaced by ``***``."""
        login = ""
        if self.username is not None:
            secret = ":***" if self.url_password is not None else ""
            login = f"{quote(self.username, safe='')}{secret}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{login}{host}:{self.port}"

    def password(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The password from the URL, ``password_file`` or ``ATLAS_MQTT_PASSWORD``, in order."""
        if self.username is None:
            return None
        if self.url_password is not None:
            return self.url_password
        if self.password_file is not None:
            path = _existing(self.password_file, "password_file")
            text = path.read_text("utf-8").splitlines()
            if not text or not text[0]:
                raise ValueError(f"broker url option password_file={path}: the file is empty")
            return text[0]
        if environ.get(PASSWORD_ENV):
            return environ[PASSWORD_ENV]
        raise ValueError(
            f"broker url {self.masked()!r} names user {self.username!r} but no password: give "
            f"?password_file=PATH, set {PASSWORD_ENV}, or write USER:PASSWORD@ in the URL"
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Verify the broker's certificate and host name; TLS 1.2 at least."""
        ca = None if self.ca_file is None else _existing(self.ca_file, "ca_file")
        context = ssl.create_default_context(cafile=ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None:
            key = None if self.key_file is None else _existing(self.key_file, "key_file")
            context.load_cert_chain(_existing(self.cert_file, "cert_file"), key)
        return context


def new_client(
    broker: BrokerEndpoint,
    client_id: str,
    *,
    manual_ack: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> mqtt.Client:
    """A paho client (callback API 2, MQTT 5) with ``broker``'s login and TLS applied.

    The intake, the runtime's link and the simulated gateway are built here, so none ignores a
    login or TLS in its URL. A failed connection attempt (refused socket, TLS handshake) is
    logged with its cause; paho itself retries silently.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password(environ))
    if broker.tls:
        client.tls_set_context(broker.ssl_context())
    shown = broker.masked()

    def on_connect_fail(client: mqtt.Client, userdata: object) -> None:
        # paho calls this inside its ``except OSError`` block: the cause is the exception
        # being handled
        _LOGGER.warning("could not connect to %s: %s", shown, sys.exc_info()[1])

    client.on_connect_fail = on_connect_fail
    return client


def masked_url(url: str) -> str:
    """``url`` with the password after ``USER:`` replaced by ``***``; never raises."""
    scheme, sep, rest = url.partition("://")
    head, query_sep, query = rest.partition("?")
    login, at, host = head.rpartition("@")  # the last @: a password may hold a raw / or @
    if not (sep and at and ":" in login):
        return url
    user = login.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{query_sep}{query}"


def _options(query: str, shown: str) -> dict[str, str]:
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"broker url {shown!r}: cannot parse the options {query!r}") from None
    unknown = sorted(set(parsed) - set(_FILE_OPTIONS))
    if unknown:
        raise ValueError(
            f"broker url {shown!r}: unknown option(s) {unknown}; known: {list(_FILE_OPTIONS)}"
        )
    for key, values in parsed.items():
        if len(values) != 1 or not values[0]:
            raise ValueError(f"broker url {shown!r}: option {key} should be given once, a path")
    return {key: values[0] for key, values in parsed.items()}


def _existing(path: Path, option: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"broker url option {option}={path}: no such file")
    return path
