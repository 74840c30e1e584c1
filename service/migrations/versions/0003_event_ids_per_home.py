"""Event ids unique per home: the key of ``events`` and ``use_events`` is (event_id, home_id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 19:00:00

Why: each gateway numbers its own events. With ids unique across all homes, an event whose id
another home had already used was taken for a redelivery and dropped, so one gateway could
pre-claim another home's future ids. ``use_events`` gains ``home_id`` to refer to an event by
its new key. event_id comes first in both keys, so reading events by id keeps its index.

SQLite rebuilds both tables (batch mode) with its foreign-key checks off for the migration
(``service/migrations/env.py``): the rebuild drops the old ``events`` while ``use_events``
still refers to it. The downgrade fails if two homes now share an event id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FK = "fk_use_events_event_id_events"


def upgrade() -> None:
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("home_id", sa.String(length=63), nullable=True))
    op.execute(
        "UPDATE use_events SET home_id = "
        "(SELECT events.home_id FROM events WHERE events.event_id = use_events.event_id)"
    )
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint("pk_events", type_="primary")
        batch_op.create_primary_key("pk_events", ["event_id", "home_id"])
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.alter_column("home_id", existing_type=sa.String(length=63), nullable=False)
        batch_op.drop_constraint("pk_use_events", type_="primary")
        batch_op.create_primary_key("pk_use_events", ["event_id", "home_id"])
        batch_op.create_foreign_key(FK, "events", ["event_id", "home_id"], ["event_id", "home_id"])


def downgrade() -> None:
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.drop_constraint("pk_use_events", type_="primary")
        batch_op.create_primary_key("pk_use_events", ["event_id"])
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint("pk_events", type_="primary")
        batch_op.create_primary_key("pk_events", ["event_id"])
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.create_foreign_key(FK, "events", ["event_id"], ["event_id"])
        batch_op.drop_column("home_id")
