"""Runtime state: request sampling design and predictions, home status, announcements.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:00:00

Why these columns: an accuracy estimate from answered requests is only unbiased when each
answer carries the probability with which its use was drawn (``inclusion_prob``) and whether it
was a uniform audit draw (``is_audit``); ``predicted`` keeps what the model said *before* the
answer (per level, with its model version) so "was the model right" never depends on a later
retrain. ``home_status`` is the one row per home the dashboard reads; ``announcements`` are the
week-1 "I'm about to do it" presses, matched later to the next use on that valve.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inclusion_prob", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("is_audit", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("predicted", sa.JSON(), nullable=True))
        batch_op.create_index("ix_label_requests_home_state", ["home_id", "state"], unique=False)

    op.create_table(
        "home_status",
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("calibration_day", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("level_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "phase in ('week1', 'calibrating', 'calibrated')", name=op.f("ck_home_status_phase")
        ),
        sa.CheckConstraint(
            "level in ('rules', 'category', 'fixture', 'valve')",
            name=op.f("ck_home_status_level"),
        ),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_home_status_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("home_id", name=op.f("pk_home_status")),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("valve_id", sa.String(length=127), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("matched_use_id", sa.String(length=130), nullable=True),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_announcements_home_id_homes")
        ),
        sa.ForeignKeyConstraint(
            ["matched_use_id"], ["uses.use_id"], name=op.f("fk_announcements_matched_use_id_uses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
        sa.UniqueConstraint("home_id", "valve_id", "t", name="uq_announcements_home_valve_t"),
    )
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.create_index("ix_announcements_home_t", ["home_id", "t"], unique=False)
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.create_index("ix_classifications_home_use", ["home_id", "use_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("classifications", schema=None) as batch_op:
        batch_op.drop_index("ix_classifications_home_use")
    with op.batch_alter_table("announcements", schema=None) as batch_op:
        batch_op.drop_index("ix_announcements_home_t")
    op.drop_table("announcements")
    op.drop_table("home_status")
    with op.batch_alter_table("label_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_label_requests_home_state")
        batch_op.drop_column("predicted")
        batch_op.drop_column("is_audit")
        batch_op.drop_column("inclusion_prob")
