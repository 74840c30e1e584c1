"""Workers starting together after an upgrade each migrate: one does, the others wait for it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from shared_services import PG_URL
from sqlalchemy import text

from service.storage.engine import current_revision, make_engine

pytestmark = [pytest.mark.postgres]

#: One worker's start-up migration, in a process of its own (as `atlas serve` runs it).
_MIGRATE = (
    "import sys; from service.storage.engine import make_engine, upgrade; "
    "upgrade(make_engine(sys.argv[1], connect_args={'options': f'-csearch_path={sys.argv[2]}'}))"
)


@pytest.mark.timeout(120)
def test_four_workers_migrating_one_new_database_at_once_all_succeed(uid):
    schema = f"t_mig_{uid}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE, PG_URL, schema],
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        failed = [w.stderr.read() for w in workers if w.wait(100) != 0]
        assert failed == []
        engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
        assert current_revision(engine) is not None
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
