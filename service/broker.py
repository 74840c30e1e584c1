"""A private Mosquitto on a free local port with the data-keeping config, for demo/tests/benches.

The shared broker on 1883 cannot be restarted or reconfigured by a test; crash tests need their
own broker they can kill, with persistence on and no queue cap (``service/config/mosquitto.conf``).

:class:`SecureBroker` runs the deployment's own configuration instead (``deploy/mosquitto.conf``
and ``deploy/atlas.acl``: logins, ACL, TLS on two listeners) with only its ports and file paths
replaced, the logins made by ``atlas broker users``' own function and certificates drawn for
the run: ``atlas demo --secure`` and the security tests.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sysconfig
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlencode

from service.broker_certs import Certs, make_certs
from service.broker_logins import SERVICE_USERNAME, Login, device_username, provision_logins

#: the shipped broker configuration and systemd units: ``deploy/`` of a source checkout, else
#: where an installed wheel puts it (``share/atlas/deploy`` under the environment's prefix)
DEPLOY_DIRS = (
    Path(__file__).resolve().parents[1] / "deploy",
    Path(sysconfig.get_path("data")) / "share" / "atlas" / "deploy",
)


def find_deploy_dir() -> Path:
    """The first of :data:`DEPLOY_DIRS` that holds the broker config (the checkout's first)."""
    for candidate in DEPLOY_DIRS:
        if (candidate / "mosquitto.conf").is_file():
            return candidate
    raise FileNotFoundError(
        "the shipped broker config (deploy/mosquitto.conf) is in neither "
        + " nor ".join(str(d) for d in DEPLOY_DIRS)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def render_config(port: int, data_dir: Path) -> str:
    template = resources.files("service").joinpath("config/mosquitto.conf").read_text("utf-8")
    values = {"{port}": str(port), "{data_dir}": str(data_dir), "{user}": getpass.getuser()}
    for key, value in values.items():
        template = template.replace(key, value)
    return template


class PrivateBroker:
    """``with PrivateBroker(workdir) as broker: broker.url`` ; :meth:`restart` keeps its data."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        binary: str = "mosquitto",
        config: str | None = None,
    ) -> None:
        """``config``: a whole mosquitto.conf to run instead of the data-keeping template; it
        must listen on ``port`` (start() waits for that port)."""
        path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")
        if path is None:
            raise FileNotFoundError(
                f"mosquitto binary {binary!r} not found (apt install mosquitto)"
            )
        self.binary = path
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.config = config
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        data = self.workdir / "mosquitto-data"
        data.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config or render_config(self.port, data), "utf-8")
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                log_path = self.workdir / "mosquitto.log"
                raise RuntimeError(f"mosquitto exited with {code}; see {log_path}")
            if listening(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (mosquitto saves its persistence file) or SIGKILL (it does not)."""
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- the shipped config


def deployment_config(
    deploy_dir: Path,
    *,
    ports: tuple[int, int],
    certs: Certs,
    password_file: Path,
    data_dir: Path,
) -> str:
    """``deploy/mosquitto.conf`` listening on 127.0.0.1 at ``ports`` (device, service) with
    these files: only ports and paths are replaced (each replaced line must exist), the ACL is
    ``deploy/atlas.acl`` itself, and the log goes to stderr (the broker's log file)."""
    text = (deploy_dir / "mosquitto.conf").read_text("utf-8")
    replacements = {
        "listener 8883\n": f"listener {ports[0]} 127.0.0.1\n",
        "listener 8884\n": f"listener {ports[1]} 127.0.0.1\n",
        "/etc/mosquitto/certs/broker.crt": str(certs.broker_cert),
        "/etc/mosquitto/certs/broker.key": str(certs.broker_key),
        "/etc/mosquitto/certs/atlas-clients-ca.crt": str(certs.ca),
        "/etc/mosquitto/atlas.passwd": str(password_file),
        "/etc/mosquitto/atlas.acl": str(deploy_dir / "atlas.acl"),
        "/var/lib/mosquitto/": f"{data_dir}/",
        "log_dest syslog": "log_dest stderr",
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"{deploy_dir / 'mosquitto.conf'} no longer has {old!r}")
        text = text.replace(old, new)
    # as root, Mosquitto would switch to the user `mosquitto`, who cannot read these files
    return f"user {getpass.getuser()}\n{text}"


class SecureBroker:
    """The shipped broker config on a private Mosquitto: ``with SecureBroker(workdir, [home])``.

    In ``workdir``: a CA with the broker's and Atlas's certificates (``certs/``), the password
    file with the logins of each home and of the service account made by
    :func:`~service.broker_logins.provision_logins` (what ``atlas broker users`` runs), each
    password also in a file of its own (``secrets/``, owner only) that the broker URLs name with
    ``password_file``, so no URL, log line or process list shows a password. Listeners: the
    device one (:attr:`device_port`, TLS + password, the client id replaced by the username) and
    Atlas's (:attr:`service_port`, TLS + client certificate + password).
    """

    def __init__(
        self,
        workdir: Path,
        homes: list[str],
        *,
        service_user: str = SERVICE_USERNAME,
        deploy_dir: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.homes = list(homes)
        self.service_user = service_user
        self.deploy_dir = Path(deploy_dir) if deploy_dir else find_deploy_dir()
        if not (self.deploy_dir / "mosquitto.conf").is_file():
            raise FileNotFoundError(f"no broker config at {self.deploy_dir}/mosquitto.conf")
        self.device_port = free_port()
        self.service_port = free_port()
        self.certs: Certs | None = None
        self.logins: dict[str, Login] = {}
        self._broker: PrivateBroker | None = None

    @property
    def config_file(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self, timeout_s: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.certs = make_certs(self.workdir / "certs")
        password_file = self.workdir / "atlas.passwd"
        password_file.unlink(missing_ok=True)
        logins = provision_logins(password_file, self.homes, service=self.service_user)
        secrets = self.workdir / "secrets"
        secrets.mkdir(mode=0o700, exist_ok=True)
        for login in logins:
            path = self._secret(login.username)
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(login.password)
        self.logins = {x.username: x for x in logins}
        config = deployment_config(
            self.deploy_dir,
            ports=(self.device_port, self.service_port),
            certs=self.certs,
            password_file=password_file,
            data_dir=self.workdir / "mosquitto-data",
        )
        self._broker = PrivateBroker(self.workdir, port=self.device_port, config=config)
        self._broker.start(timeout_s)
        deadline = time.monotonic() + timeout_s
        while not listening(self.service_port):
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"mosquitto did not listen on port {self.service_port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()

    def __enter__(self) -> SecureBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _secret(self, username: str) -> Path:
        return self.workdir / "secrets" / username.replace("/", "_")

    def url(self, username: str | None, *, service: bool = False, cert: bool = True) -> str:
        """The broker URL of a client logging in as ``username`` (None: anonymous) on the
        service listener (``service``; with Atlas's client certificate unless not ``cert``)
        or the device listener."""
        if self.certs is None:
            raise RuntimeError("the broker has not been started")
        options = {"ca_file": self.certs.ca}
        if service and cert:
            options |= {"cert_file": self.certs.client_cert, "key_file": self.certs.client_key}
        login = ""
        if username is not None:
            options["password_file"] = self._secret(username)
            login = f"{quote(username, safe='')}@"
        port = self.service_port if service else self.device_port
        return f"mqtts://{login}127.0.0.1:{port}?{urlencode(options)}"

    def device_url(self, home_id: str, role: str) -> str:
        """A device's URL: ``role`` ``gateway`` (``HOME/sensors``) or ``homeowner``."""
        return self.url(device_username(home_id, role))

    @property
    def service_url(self) -> str:
        """Atlas's URL: the service account on its listener, with its client certificate."""
        return self.url(self.service_user, service=True)
