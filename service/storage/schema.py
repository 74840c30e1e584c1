"""The tables (SQLAlchemy Core). Alembic migrations in ``service/migrations`` create them.

Core, not ORM: the intake's hot path is a batch ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
and the rest are small keyed reads, so mapped classes would add a layer without removing any SQL.
Keys are the domain's own ids (event_id, use_id, home_id), which is what makes every write
idempotent: a redelivered MQTT message or a re-run job hits the same key and changes nothing.
An event is keyed by its id *and* its home (0003): each gateway numbers its own events, and a
gateway that reuses another home's ids must not make that home's events look like duplicates.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)

# Stable constraint names, so Alembic (and SQLite batch mode) can refer to them later.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 63  # homespec.ID_PATTERN allows 63 characters
EVENT_ID = 128  # events._is_event_id allows 128
LABEL_REQUEST_STATES = ("planned", "sent", "answered", "expired", "declined")
LABEL_SOURCES = ("guided", "active", "audit")
LEVELS = ("valve", "fixture", "category")
DISPLAY_LEVELS = ("rules", "category", "fixture", "valve")
PHASES = ("week1", "calibrating", "calibrated")


class UTCDateTime(TypeDecorator):
    """``DateTime(timezone=True)`` that stores UTC and always reads back an aware UTC datetime.

    Why: SQLite has no time-zone type. SQLAlchemy writes an aware datetime there as its *local*
    wall time without the offset and reads it back naive, so a time given in Chicago time came
    back 6 h off once treated as UTC. Converting to UTC on the way in makes the stored text UTC
    on SQLite (PostgreSQL's timestamptz was right already), and attaching/normalising UTC on the
    way out gives every reader the same aware value on both dialects. Comparisons in WHERE
    clauses bind through this type too, so they compare UTC with UTC. A naive datetime is taken
    as UTC (the service's convention). The column type in the database is unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a timestamp column needs a datetime, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, UTCDateTime(), nullable=nullable)


homes = Table(
    "homes",
    metadata,
    Column("home_id", String(ID), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("spec", JSON, nullable=False),  # HomeSpec.to_dict(): the installer's file, verbatim
    _ts("created_at"),
    _ts("updated_at"),
)

sensors = Table(
    "sensors",
    metadata,
    Column("home_id", String(ID), ForeignKey("homes.home_id"), primary_key=True),
    Column("sensor_id", String(ID), primary_key=True),
    Column("line", String(8), nullable=False),
    Column("sample_rate_hz", Integer, nullable=False),
)

fixtures = Table(
    "fixtures",
    metadata,
    Column("home_id", String(ID), ForeignKey("homes.home_id"), primary_key=True),
    Column("fixture_id", String(ID), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("category", String(32), nullable=False),
    Column("handle", String(32), nullable=False),
    Column("location", String(80), nullable=False),
)

valves = Table(
    "valves",
    metadata,
    Column("home_id", String(ID), primary_key=True),
    Column("valve_id", String(2 * ID + 1), primary_key=True),  # "fixture_id/valve_name"
    Column("fixture_id", String(ID), nullable=False),
    Column("name", String(ID), nullable=False),
    Column("lines", String(16), nullable=False),  # "hot", "cold" or "hot,cold"
    ForeignKeyConstraint(["home_id", "fixture_id"], ["fixtures.home_id", "fixtures.fixture_id"]),
)

events = Table(
    "events",
    metadata,
    # event_id first in the key: reads by id (a use's events) use the key's index
    Column("event_id", String(EVENT_ID), primary_key=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), primary_key=True),
    Column("sensor_id", String(ID), nullable=False),
    Column("line", String(8), nullable=False),
    _ts("t"),
    Column("sample_rate_hz", Integer, nullable=False),
    Column("n_samples", Integer, nullable=False),
    Column("scale_kpa", Float, nullable=False),
    Column("offset_kpa", Float, nullable=False),
    Column("waveform", LargeBinary, nullable=False),  # see service.storage.waveform
    _ts("received_at"),
    Index("ix_events_home_t", "home_id", "t"),
)

uses = Table(
    "uses",
    metadata,
    Column("use_id", String(EVENT_ID + 2), primary_key=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("lines", String(16), nullable=False),
    _ts("t"),
    _ts("t_open", nullable=True),
    _ts("t_close", nullable=True),
    Column("drop_kpa", JSON, nullable=False),
    _ts("created_at"),
    Index("ix_uses_home_t", "home_id", "t"),
)

use_events = Table(
    "use_events",
    metadata,
    # the event is the key: an event belongs to at most one use, so "unpaired" means "not here"
    Column("event_id", String(EVENT_ID), primary_key=True),
    Column("use_id", String(EVENT_ID + 2), ForeignKey("uses.use_id"), nullable=False, index=True),
    Column("role", String(8), nullable=False),  # "open" | "close"
    Column("home_id", String(ID), primary_key=True),
    ForeignKeyConstraint(["event_id", "home_id"], ["events.event_id", "events.home_id"]),
    CheckConstraint("role in ('open', 'close')", name="role"),
)

classifications = Table(
    "classifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("use_id", String(EVENT_ID + 2), ForeignKey("uses.use_id"), nullable=False),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("level", String(16), nullable=False),
    Column("label", String(2 * ID + 1), nullable=False),
    Column("probability", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
    _ts("created_at"),
    UniqueConstraint("use_id", "level", "model_version", name="uq_classifications_use_level_model"),
    CheckConstraint("level in ('valve', 'fixture', 'category')", name="level"),
    Index("ix_classifications_home_use", "home_id", "use_id"),
)

label_requests = Table(
    "label_requests",
    metadata,
    Column("request_id", String(EVENT_ID), primary_key=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("round", Integer, nullable=False),
    Column("slot", Integer, nullable=False),
    Column("use_id", String(EVENT_ID + 2), ForeignKey("uses.use_id"), nullable=True),
    Column("state", String(16), nullable=False),
    Column("choices", JSON, nullable=False),
    Column("prompt", Text, nullable=False),
    _ts("created_at"),
    _ts("sent_at", nullable=True),
    _ts("expires_at", nullable=True),
    _ts("closed_at", nullable=True),
    # sampling design (0002): the draw probability and audit flag make the accuracy estimate
    # unbiased; ``predicted`` is the model's answer per level before the homeowner's, with version
    Column("inclusion_prob", Float, nullable=True),
    Column("is_audit", Boolean, nullable=False, server_default=false()),
    Column("predicted", JSON, nullable=True),
    Index("ix_label_requests_home_state", "home_id", "state"),
    # the scheduler's idempotency key: a re-run round creates (and pushes) nothing new
    UniqueConstraint("home_id", "round", "slot", name="uq_label_requests_home_round_slot"),
    CheckConstraint(
        "state in ('planned', 'sent', 'answered', 'expired', 'declined')", name="state"
    ),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("use_id", String(EVENT_ID + 2), ForeignKey("uses.use_id"), nullable=False),
    Column("level", String(16), nullable=False),
    Column("label", String(2 * ID + 1), nullable=False),
    Column("source", String(16), nullable=False),
    Column("answered_by", String(120), nullable=False),
    Column("request_id", String(EVENT_ID), ForeignKey("label_requests.request_id"), nullable=True),
    _ts("answered_at"),
    # one answer per request: a repeated POST of the same answer is a no-op
    UniqueConstraint("request_id", name="uq_labels_request_id"),
    CheckConstraint("source in ('guided', 'active', 'audit')", name="source"),
)

accuracy_history = Table(
    "accuracy_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    _ts("t"),
    Column("level", String(16), nullable=False),
    Column("estimate", Float, nullable=False),
    Column("lower_bound", Float, nullable=False),
    Column("n_labels", Integer, nullable=False),
    Column("displayed", Boolean, nullable=False),
    Column("model_version", String(64), nullable=False),
    Index("ix_accuracy_history_home_t", "home_id", "t"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _ts("received_at"),
    Column("topic", String(512), nullable=False),
    Column("home_id", String(ID), nullable=True),  # set only when the home is registered
    Column("reason", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # truncated to DEAD_LETTER_KEEP_BYTES
    Column("payload_size", Integer, nullable=False),  # the real size received
    Index("ix_dead_letters_reason", "reason"),
)

model_snapshots = Table(
    "model_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("kind", String(32), nullable=False),  # "classifier", "codebook", ...
    Column("version", Integer, nullable=False),
    _ts("created_at"),
    Column("meta", JSON, nullable=False),
    Column("blob", LargeBinary, nullable=False),
    UniqueConstraint("home_id", "kind", "version", name="uq_model_snapshots_home_kind_version"),
)

home_status = Table(
    "home_status",
    metadata,
    Column("home_id", String(ID), ForeignKey("homes.home_id"), primary_key=True),
    Column("phase", String(16), nullable=False),
    Column("calibration_day", Integer, nullable=False),
    Column("level", String(16), nullable=False),  # the display level
    Column("reason", JSON, nullable=False),
    Column("model_version", String(64), nullable=False, server_default=""),
    _ts("level_changed_at", nullable=True),
    _ts("updated_at"),
    CheckConstraint("phase in ('week1', 'calibrating', 'calibrated')", name="phase"),
    CheckConstraint("level in ('rules', 'category', 'fixture', 'valve')", name="level"),
)

announcements = Table(
    "announcements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("valve_id", String(2 * ID + 1), nullable=False),
    _ts("t"),
    Column("matched_use_id", String(EVENT_ID + 2), ForeignKey("uses.use_id"), nullable=True),
    # a double-tapped "I'm about to do it" is one announcement
    UniqueConstraint("home_id", "valve_id", "t", name="uq_announcements_home_valve_t"),
    Index("ix_announcements_home_t", "home_id", "t"),
)

fleet_versions = Table(
    "fleet_versions",
    metadata,
    # 1, 2, ...: versions only grow, so "newer" is "larger" even after older ones are pruned
    Column("version", Integer, primary_key=True, autoincrement=False),
    _ts("built_at"),  # service time of the rebuild
    Column("n_homes", Integer, nullable=False),  # homes whose aggregates it was built from
    Column("format", String(32), nullable=False),  # FleetPrior.to_dict's format
    Column("build_s", Float, nullable=False),  # the rebuild's wall time ...
    Column("cpu_s", Float, nullable=False),  # ... and CPU time (its thread's)
    Column("blob", LargeBinary, nullable=False),  # see service.storage.fleets
)

home_fleet = Table(
    "home_fleet",
    metadata,
    Column("home_id", String(ID), ForeignKey("homes.home_id"), primary_key=True),
    # the homeowner declined: the home's data are never read by a rebuild
    Column("opt_out", Boolean, nullable=False, server_default=false()),
    Column("started_version", Integer, nullable=True),  # fleet at install (None: none existed)
    Column("version", Integer, nullable=True),  # fleet its engine uses now (never pruned)
    Column("skipped", JSON, nullable=False),  # checklist items its fleet covers (registration)
    _ts("updated_at"),
)

flow_calibrations = Table(
    "flow_calibrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # applied in this order
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("kind", String(16), nullable=False),  # "fixture" (a bucket) or "meter"
    _ts("created_at"),  # service time it was recorded
    _ts("t_from"),  # the measurement's period: the bucket fill's use, or the meter readings
    _ts("t_to"),
    Column("valve_id", String(2 * ID + 1), nullable=True),  # the fixture's valve (kind fixture)
    Column("litres", Float, nullable=False),  # what the bucket or the meter measured
    Column("estimated_litres", Float, nullable=False),  # what the model said before it
    # the inputs the calibration is replayed from (the measured uses' drops, or the meter's
    # factor): the home's flow model is the spec's default with every row applied in order
    Column("inputs", JSON, nullable=False),
    CheckConstraint("kind in ('fixture', 'meter')", name="kind"),
    Index("ix_flow_calibrations_home_id", "home_id", "id"),
)

alerts = Table(
    "alerts",
    metadata,
    # deterministic from (home, kind, subject, raised at): a re-run check stores nothing new
    Column("alert_id", String(EVENT_ID), primary_key=True),
    Column("home_id", String(ID), ForeignKey("homes.home_id"), nullable=False),
    Column("kind", String(16), nullable=False),
    # what it is about: the running use, the toilet, the night; repeats are judged per subject
    Column("subject", String(2 * ID + 1), nullable=False),
    _ts("at"),  # when it could first be raised (the detector's time)
    Column("message", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("use_ids", JSON, nullable=False),
    _ts("created_at"),  # service time it was stored
    _ts("pushed_at", nullable=True),  # every configured channel accepted it
    _ts("acknowledged_at", nullable=True),
    Column("acknowledged_by", String(120), nullable=True),
    CheckConstraint("kind in ('running', 'flapper', 'night')", name="kind"),
    Index("ix_alerts_home_kind_subject", "home_id", "kind", "subject"),
)
