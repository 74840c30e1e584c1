"""``atlas serve`` in a process of its own, for the benchmarks that measure it from outside.

WHY a separate process: as deployed, the service has its interpreter to itself; a benchmark's
publishers and HTTP readers in the same process would compete for its lock and be counted in
its latency and memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from service.broker import PrivateBroker, free_port


def workdir_and_broker(
    stack: ExitStack, workdir: Path | None, broker_url: str | None, prefix: str
) -> tuple[Path, str]:
    """The run's folder (a temporary ``prefix``-named one unless given) and broker URL (a
    private Mosquitto in that folder unless given); what is started here stops with ``stack``."""
    if workdir is None:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    workdir.mkdir(parents=True, exist_ok=True)
    if broker_url is None:
        broker_url = stack.enter_context(PrivateBroker(workdir / "broker")).url
    return workdir, broker_url


@contextmanager
def serve_process(
    workdir: Path,
    db_url: str,
    broker_url: str,
    client_prefix: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[int, str]]:
    """Start ``atlas serve``; yield its pid and URL once ``/readyz`` answers 200; stop it.

    Its output goes to ``workdir/serve.log``; ``env`` adds or overrides settings.
    """
    port = free_port()
    full_env = (
        os.environ
        | {
            "ATLAS_ENVIRONMENT": "development",
            "ATLAS_DB_URL": db_url,
            "ATLAS_BROKER_URL": broker_url,
            "ATLAS_HTTP_PORT": str(port),
            "ATLAS_MQTT_CLIENT_PREFIX": client_prefix,
            "ATLAS_LOG_JSON": "false",
            "ATLAS_LOG_LEVEL": "WARNING",
        }
        | dict(env or {})
    )
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"atlas serve did not become ready; see {workdir}/serve.log")
            time.sleep(0.2)
        yield proc.pid, url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
