"""Stored flow calibrations and leak alerts.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-18 09:00:00

Why: an installer's bucket fill or a water-meter reading (``atlas calibrate-flow``) must outlive
the command and reach every worker, so it is stored as the measurement it was (the replayable
inputs), and the home's flow model is the spec's default with its calibrations applied in
order. Leak and anomaly alerts (``atlas.alerts``) are stored once, keyed so that a re-run check
adds nothing, pushed, and acknowledged by the homeowner.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flow_calibrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("t_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("t_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valve_id", sa.String(length=127), nullable=True),
        sa.Column("litres", sa.Float(), nullable=False),
        sa.Column("estimated_litres", sa.Float(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.CheckConstraint("kind in ('fixture', 'meter')", name=op.f("ck_flow_calibrations_kind")),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_flow_calibrations_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_calibrations")),
    )
    op.create_index("ix_flow_calibrations_home_id", "flow_calibrations", ["home_id", "id"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=128), nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=127), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("use_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=120), nullable=True),
        sa.CheckConstraint("kind in ('running', 'flapper', 'night')", name=op.f("ck_alerts_kind")),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_alerts_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_home_kind_subject", "alerts", ["home_id", "kind", "subject"])


def downgrade() -> None:
    op.drop_index("ix_alerts_home_kind_subject", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_flow_calibrations_home_id", table_name="flow_calibrations")
    op.drop_table("flow_calibrations")
