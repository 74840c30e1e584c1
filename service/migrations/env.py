"""Alembic environment: runs against the engine handed over by ``service.storage.engine``.

There is no alembic.ini to edit: ``atlas db upgrade --db URL`` builds the config in code, so an
installed package can migrate any database it is pointed at.
"""

from __future__ import annotations

from alembic import context

from service.storage.engine import make_engine
from service.storage.schema import metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: copy-and-move in batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url"))
with engine.connect() as conn:
    _run(conn)
    conn.commit()
