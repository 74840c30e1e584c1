"""The fleet in the service: stored fleet versions and each home's fleet state.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-11 09:00:00

Why: a fleet version is built by the leader from the calibrated homes that did not opt out
and read by every worker, so it lives in the database (``fleet_versions``: only the
aggregates ``atlas.fleet.build_fleet`` shares, as JSON + arrays). ``home_fleet`` holds what is
per home: the homeowner's opt-out, the version the home was installed with and the one its
engine uses now (a restored engine must come back with the same fleet), and the checklist
items the start version covers. Every home registered before this revision gets a row with
no fleet and no opt-out: it takes a fleet at its next codebook refit (docs/fleet.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_homes", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("build_s", sa.Float(), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_fleet_versions")),
    )
    op.create_table(
        "home_fleet",
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("opt_out", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("started_version", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_home_fleet_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("home_id", name=op.f("pk_home_fleet")),
    )
    homes = sa.table("homes", sa.column("home_id"), sa.column("updated_at"))
    home_fleet = sa.table(
        "home_fleet",
        sa.column("home_id"),
        sa.column("opt_out"),
        sa.column("skipped", sa.JSON()),
        sa.column("updated_at"),
    )
    op.execute(
        home_fleet.insert().from_select(
            ["home_id", "opt_out", "skipped", "updated_at"],
            sa.select(homes.c.home_id, sa.false(), sa.literal([], sa.JSON()), homes.c.updated_at),
        )
    )


def downgrade() -> None:
    op.drop_table("home_fleet")
    op.drop_table("fleet_versions")
