"""A private Mosquitto on a free local port with the data-keeping config, for demo/tests/benches.

The shared broker on 1883 cannot be restarted or reconfigured by a test; crash tests need their
own broker they can kill, with persistence on and no queue cap (``service/config/mosquitto.conf``).
The security tests run the deployment's own configuration instead (logins, ACL, TLS), given as
``config``.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
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
