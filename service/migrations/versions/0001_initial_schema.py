"""Initial schema: homes, inventory, events, uses, labels, requests, history, dead letters, models.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 12:47:06.168993
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index("ix_dead_letters_reason", ["reason"], unique=False)

    op.create_table(
        "homes",
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("home_id", name=op.f("pk_homes")),
    )
    op.create_table(
        "accuracy_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("estimate", sa.Float(), nullable=False),
        sa.Column("lower_bound", sa.Float(), nullable=False),
        sa.Column("n_labels", sa.Integer(), nullable=False),
        sa.Column("displayed", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_accuracy_history_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accuracy_history")),
    )
    with op.batch_alter_table("accuracy_history", schema=None) as batch_op:
        batch_op.create_index("ix_accuracy_history_home_t", ["home_id", "t"], unique=False)

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("sensor_id", sa.String(length=63), nullable=False),
        sa.Column("line", sa.String(length=8), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sample_rate_hz", sa.Integer(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("scale_kpa", sa.Float(), nullable=False),
        sa.Column("offset_kpa", sa.Float(), nullable=False),
        sa.Column("waveform", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_events_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_home_t", ["home_id", "t"], unique=False)

    op.create_table(
        "fixtures",
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("fixture_id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_fixtures_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("home_id", "fixture_id", name=op.f("pk_fixtures")),
    )
    op.create_table(
        "model_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_model_snapshots_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_snapshots")),
        sa.UniqueConstraint(
            "home_id", "kind", "version", name="uq_model_snapshots_home_kind_version"
        ),
    )
    op.create_table(
        "sensors",
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("sensor_id", sa.String(length=63), nullable=False),
        sa.Column("line", sa.String(length=8), nullable=False),
        sa.Column("sample_rate_hz", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_sensors_home_id_homes")
        ),
        sa.PrimaryKeyConstraint("home_id", "sensor_id", name=op.f("pk_sensors")),
    )
    op.create_table(
        "uses",
        sa.Column("use_id", sa.String(length=130), nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lines", sa.String(length=16), nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("t_open", sa.DateTime(timezone=True), nullable=True),
        sa.Column("t_close", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drop_kpa", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["home_id"], ["homes.home_id"], name=op.f("fk_uses_home_id_homes")),
        sa.PrimaryKeyConstraint("use_id", name=op.f("pk_uses")),
    )
    with op.batch_alter_table("uses", schema=None) as batch_op:
        batch_op.create_index("ix_uses_home_t", ["home_id", "t"], unique=False)

    op.create_table(
        "classifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("use_id", sa.String(length=130), nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=127), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "level in ('valve', 'fixture', 'category')", name=op.f("ck_classifications_level")
        ),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_classifications_home_id_homes")
        ),
        sa.ForeignKeyConstraint(
            ["use_id"], ["uses.use_id"], name=op.f("fk_classifications_use_id_uses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classifications")),
        sa.UniqueConstraint(
            "use_id", "level", "model_version", name="uq_classifications_use_level_model"
        ),
    )
    op.create_table(
        "label_requests",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("use_id", sa.String(length=130), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state in ('planned', 'sent', 'answered', 'expired', 'declined')",
            name=op.f("ck_label_requests_state"),
        ),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_label_requests_home_id_homes")
        ),
        sa.ForeignKeyConstraint(
            ["use_id"], ["uses.use_id"], name=op.f("fk_label_requests_use_id_uses")
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_label_requests")),
        sa.UniqueConstraint("home_id", "round", "slot", name="uq_label_requests_home_round_slot"),
    )
    op.create_table(
        "use_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("use_id", sa.String(length=130), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.CheckConstraint("role in ('open', 'close')", name=op.f("ck_use_events_role")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.event_id"], name=op.f("fk_use_events_event_id_events")
        ),
        sa.ForeignKeyConstraint(
            ["use_id"], ["uses.use_id"], name=op.f("fk_use_events_use_id_uses")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_use_events")),
    )
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_use_events_use_id"), ["use_id"], unique=False)

    op.create_table(
        "valves",
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("valve_id", sa.String(length=127), nullable=False),
        sa.Column("fixture_id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("lines", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["home_id", "fixture_id"],
            ["fixtures.home_id", "fixtures.fixture_id"],
            name=op.f("fk_valves_home_id_fixtures"),
        ),
        sa.PrimaryKeyConstraint("home_id", "valve_id", name=op.f("pk_valves")),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=63), nullable=False),
        sa.Column("use_id", sa.String(length=130), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=127), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("answered_by", sa.String(length=120), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source in ('guided', 'active', 'audit')", name=op.f("ck_labels_source")
        ),
        sa.ForeignKeyConstraint(
            ["home_id"], ["homes.home_id"], name=op.f("fk_labels_home_id_homes")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["label_requests.request_id"],
            name=op.f("fk_labels_request_id_label_requests"),
        ),
        sa.ForeignKeyConstraint(["use_id"], ["uses.use_id"], name=op.f("fk_labels_use_id_uses")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("request_id", name="uq_labels_request_id"),
    )


def downgrade() -> None:
    op.drop_table("labels")
    op.drop_table("valves")
    with op.batch_alter_table("use_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_use_events_use_id"))

    op.drop_table("use_events")
    op.drop_table("label_requests")
    op.drop_table("classifications")
    with op.batch_alter_table("uses", schema=None) as batch_op:
        batch_op.drop_index("ix_uses_home_t")

    op.drop_table("uses")
    op.drop_table("sensors")
    op.drop_table("model_snapshots")
    op.drop_table("fixtures")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_home_t")

    op.drop_table("events")
    with op.batch_alter_table("accuracy_history", schema=None) as batch_op:
        batch_op.drop_index("ix_accuracy_history_home_t")

    op.drop_table("accuracy_history")
    op.drop_table("homes")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index("ix_dead_letters_reason")

    op.drop_table("dead_letters")
