"""Alembic environment: runs against the engine handed over by ``service.storage.engine``.

There is no alembic.ini to edit: ``atlas db upgrade --db URL`` builds the config in code, so an
installed package can migrate any database it is pointed at.
"""

from __future__ import annotations

from alembic import context

from service.storage.engine import make_engine
from service.storage.homelock import advisory_key
from service.storage.schema import metadata

config = context.config

#: PostgreSQL advisory-lock key of the migrations: several workers starting together after an
#: upgrade each run the migrations; the first takes the lock and migrates, the others wait for
#: it and then find the database at head.
MIGRATION_LOCK_KEY = advisory_key("atlas:migrations")


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move in batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection) -> None:
    """Run the migrations; on SQLite with foreign-key checks off meanwhile.

    A batch-mode rebuild drops and re-creates a table that others refer to (SQLite's own
    procedure for schema changes turns the checks off first); ``foreign_key_check`` then
    proves the result consistent before the checks are back on. The pragma is a no-op inside
    a transaction, and the driver begins one only at the first write.
    """
    sqlite = connection.dialect.name == "sqlite"
    postgres = connection.dialect.name == "postgresql"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if postgres:  # held by the session, across the commit below, until released
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
    try:
        _run(connection)
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration left rows without their parent: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        if postgres:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")


engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as conn:
    _migrate(conn)
