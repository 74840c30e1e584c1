"""Engines for the two supported databases and the schema migrations that prepare them.

SQLite (one file, WAL) is the embedded default: an installer's box needs no database server.
PostgreSQL (``postgresql+psycopg://...``) is for several workers. The same Core queries run on
both; only the connection set-up differs.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect

DEFAULT_DB_URL = "sqlite:///atlas.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
HEAD_TABLES = ("homes", "events", "dead_letters")


def default_db_url() -> str:
    """``ATLAS_DB_URL`` from the environment, else a SQLite file in the working directory."""
    return os.environ.get("ATLAS_DB_URL", DEFAULT_DB_URL)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL: readers never block the intake's writer. synchronous=NORMAL: a commit survives a
    # process crash (SIGKILL); only an OS crash can lose the last commits, and the intake
    # inserts markedly faster than with FULL (docs/ingest.md, 'Storage'). busy_timeout:
    # several processes (intake + CLI) may share a file.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """An engine for ``url`` (default :func:`default_db_url`); SQLite gets WAL and its pragmas."""
    url = url or default_db_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql") and not url.startswith("postgresql+psycopg"):
        raise ValueError(
            f"db url {url!r}: use the psycopg 3 driver, postgresql+psycopg://USER@HOST/DB"
        )
    return create_engine(url, pool_pre_ping=True, **kwargs)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine``, pointing at the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent: at head it does nothing)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_schema(engine: Engine) -> None:
    """Fail with an actionable message when the database was never migrated."""
    missing = [t for t in HEAD_TABLES if not inspect(engine).has_table(t)]
    if missing:
        raise RuntimeError(
            f"database {engine.url.render_as_string(hide_password=True)} has no table(s) "
            f"{missing}: run `atlas db upgrade --db URL` first"
        )
