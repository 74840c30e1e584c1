"""Service configuration: one ``Settings`` object from a TOML file and ``ATLAS_*`` variables.

Why one object built at start-up (not at import): tests and the demo build their own settings
(temporary database, private broker port) and pass them to ``create_app`` / the runtime, so no
module-level global has to be patched. Precedence, highest first: keyword arguments, ``ATLAS_*``
environment variables (nested with ``__``, e.g. ``ATLAS_TIMETABLE__QUIET_START=22:00``), the
TOML file named by ``--config`` or ``ATLAS_CONFIG``, then the defaults below. ``docs/config.md``
lists every field.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from service.mqttconn import BrokerEndpoint
from service.storage.deadletters import DeadLetterRetention

#: Token values that must never protect a deployment (they appear in docs and examples).
PLACEHOLDER_TOKENS = frozenset({"changeme", "change-me", "secret", "token", "admin", "demo"})


class TimetableSettings(BaseModel):
    """When label requests may reach a homeowner; see atlas.timetable."""

    quiet_start: str = Field(default="21:00", pattern=r"^\d{2}:\d{2}$")
    quiet_end: str = Field(default="08:00", pattern=r"^\d{2}:\d{2}$")
    memory_hours: float = Field(default=24.0, gt=0, le=168)


#: A SHA-256 hex digest as ``atlas token hash`` prints it; anything else (a token pasted instead
#: of its digest, a truncated copy) would match no token and lock its owner out silently.
TokenDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class TokenSettings(BaseModel):
    """Bearer tokens, stored only as SHA-256 hex digests (``atlas token hash`` makes one)."""

    admin_sha256: list[TokenDigest] = Field(default_factory=list)
    dashboard_sha256: list[TokenDigest] = Field(default_factory=list)
    #: home_id -> digests of that home's homeowner tokens
    homeowner_sha256: dict[str, list[TokenDigest]] = Field(default_factory=dict)


class HomePushSettings(BaseModel):
    """Optional HTTP pushes of one home's label requests (MQTT state is always published)."""

    model_config = {"extra": "forbid"}

    webhook_url: str = ""
    webhook_secret: str = ""
    ntfy_url: str = ""

    @model_validator(mode="after")
    def _secret_with_webhook(self) -> HomePushSettings:
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise ValueError(
                "webhook_secret must have at least 16 characters when webhook_url is set"
            )
        return self


class FleetSettings(BaseModel):
    """The fleet of calibrated homes a new home starts from (docs/fleet.md, "In the service")."""

    model_config = {"extra": "forbid"}

    #: days of service time between the scheduled rebuilds (the leader's job); 0: none, only
    #: ``atlas fleet rebuild``
    rebuild_days: float = Field(default=7.0, ge=0, le=365)
    #: a home is *calibrated* for the fleet once installed this many days: the protocol's four
    #: weeks, whose ends (2-4) its accuracy counts are taken at
    calibrated_days: int = Field(default=28, ge=1, le=3650)
    #: calibrated homes (not opted out) a fleet version needs; fewer: no version is built
    min_homes: int = Field(default=3, ge=1)
    #: versions kept (the newest); a version a home's engine still uses is never deleted
    keep_versions: int = Field(default=5, ge=2, le=1000)
    #: hand the fleet's accuracy prior to the engines. Off: in leave-one-home-out checks it
    #: covered 85.6% (category) and 85.3% (fixture) of home-days against a nominal 90%
    #: (docs/fleet.md, "Coverage of the fleet prior"); the engines use the day-one prior
    accuracy_prior: bool = False


class AlertsSettings(BaseModel):
    """Leak and anomaly alerts (docs/usage.md, "Alerts"): which kinds are watched, how often,
    and the thresholds of :class:`atlas.alerts.AlertSettings` (its fields, its defaults)."""

    model_config = {"extra": "forbid"}

    #: the kinds watched: ``running``, ``flapper``, ``night`` (empty: no alerts at all)
    kinds: list[Literal["running", "flapper", "night"]] = Field(
        default_factory=lambda: ["running", "flapper", "night"]
    )
    #: service minutes between a home's checks (at most ``max_run_min``); a running use is also
    #: checked the moment it reaches ``max_run_min``, and a check with no new event or use
    #: since the last one reads nothing more
    check_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    max_run_min: float = Field(default=30.0, gt=0)
    #: per-category overrides of ``max_run_min``, e.g. ``{outdoor_hose = 90}``
    max_run_min_by_category: dict[str, float] = Field(default_factory=dict)
    refill_min_count: int = Field(default=4, ge=2)
    refill_window_h: float = Field(default=24.0, gt=0)
    night_start_h: float = Field(default=1.0, ge=0, lt=24)
    night_end_h: float = Field(default=5.0, gt=0, le=24)
    night_litres: float = Field(default=20.0, gt=0)

    @model_validator(mode="after")
    def _night_in_one_day(self) -> AlertsSettings:
        if self.night_start_h >= self.night_end_h:
            raise ValueError("night_start_h must be before night_end_h (both within one day)")
        return self


class Settings(BaseSettings):
    """Everything ``atlas serve`` needs; defaults give the embedded single-process set-up."""

    # hide_input_in_errors: a validation error would otherwise repeat the input, every field of
    # it for a model check, the password in broker_url included
    model_config = SettingsConfigDict(
        env_prefix="ATLAS_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
        hide_input_in_errors=True,
    )

    environment: str = Field(default="development", pattern=r"^(development|production)$")
    db_url: str = "sqlite:///atlas.db"
    #: login and TLS included (service/mqttconn.py); out of the repr for its password
    broker_url: str = Field(default="mqtt://127.0.0.1:1883", repr=False)
    event_topic: str = "atlas/v1/homes/+/sensors/+/events"
    worker_id: int = Field(default=0, ge=0, le=9999)
    mqtt_client_prefix: str = Field(default="atlas", pattern=r"^[A-Za-z0-9_\-]{1,32}$")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    public_url: str = ""
    log_json: bool = True
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    codebook_min_transients: int = Field(default=200, ge=20)
    calibration_strategy: str = Field(default="atlas", pattern=r"^(random|margin|diversity|atlas)$")
    #: the display's decision rule (docs/estimation.md); defaults are EngineConfig's
    estimate_confidence: float = Field(default=0.9, ge=0.5, lt=1.0)
    day_one_prior: bool = True
    day_one_discrepancy_sd: float = Field(default=0.05, ge=0.0, lt=0.5)
    timetable: TimetableSettings = Field(default_factory=TimetableSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    #: home_id -> webhook / ntfy push settings
    push: dict[str, HomePushSettings] = Field(default_factory=dict)
    ha_discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_\-/]{1,64}$")
    #: simulated clock (demo, tests): ISO start instant; empty = real time
    sim_start: str = ""
    sim_wall_start: float = 0.0
    sim_speed: float = Field(default=1.0, gt=0)
    scheduler_sweep_s: float = Field(default=30.0, gt=0)
    retrain_debounce_s: float = Field(default=60.0, ge=0)
    misfire_grace_s: float = Field(default=6 * 3600.0, gt=0)
    #: wall seconds between re-reads of the live workers (PostgreSQL): how long a dead
    #: worker's homes wait for a new owner (service/runtime/ownership.py)
    ownership_refresh_s: float = Field(default=1.0, gt=0, le=60)
    #: one worker: pair and classify new uses provisionally in a child process (its own
    #: interpreter lock; service/intake/provisional_process.py). False: the stored pairing
    #: gives them, as with several workers (the demo: at thousands of times real time the
    #: child's start and hand-over would cost simulated hours)
    provisional_process: bool = True
    #: with the provisional process: seconds of service time the stored pairing of a home waits
    #: after its events were committed. A use can be stored only once its last event's reach
    #: (~2 s) has passed, so pairing at every commit mostly found nothing to store; and each
    #: stored pass costs queries plus an engine ingest, interpreter time the intake and the API
    #: wait for. Longer: fewer, larger passes, a later stored classification (docs/service.md)
    store_after_s: float = Field(default=3.0, ge=0, le=60)
    #: seconds of service time between the classifier's passes over the homes with new stored
    #: uses. Each pass costs a transaction and queries per home in the intake's interpreter:
    #: one pass a second gives fewer, larger ingests (docs/benchmarks.md: after-pairable p50
    #: 1.7-2.7x and p99 3-21% lower, back to back on three seeds). 0: a pass per stored pass.
    classify_every_s: float = Field(default=1.0, ge=0, le=60)
    #: milliseconds a thread of ``atlas serve`` may hold the interpreter lock while another
    #: waits (``sys.setswitchinterval``; Python's default is 5). Each time the intake, paho or
    #: uvicorn come back from I/O while the classifier computes, they wait up to this long:
    #: 0.1 ms cut the p99 after pairable at 400 homes by a third and cost 6% of a backlog
    #: drain's rate (docs/benchmarks.md). 5 suits a worker that only drains backlogs.
    switch_interval_ms: float = Field(default=0.1, gt=0, le=100)
    #: bytes of an HTTP request body: a larger one gets 413 before it is read (the largest
    #: legitimate body, a home spec, is a few KiB)
    http_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    #: open event streams (``/v1/homes/{home}/stream``) one token may hold; 429 beyond
    sse_max_streams_per_token: int = Field(default=8, ge=1, le=10_000)
    #: open event streams of one home, whoever holds them; 429 beyond
    sse_max_streams_per_home: int = Field(default=32, ge=1, le=100_000)
    #: dead letters kept: the newest this many rows ...
    dead_letter_max_rows: int = Field(default=DeadLetterRetention.max_rows, ge=1)
    #: ... received within this many days (``atlas deadletters purge`` and the intake apply it)
    dead_letter_max_age_days: float = Field(
        default=DeadLetterRetention.max_age.total_seconds() / 86400, gt=0, le=3650
    )

    #: registered homes the intake's home-lookup cache keeps (least recently used first out);
    #: unknown home ids are kept apart, a fixed few hundred, so they never grow it
    registry_cache_homes: int = Field(default=10_000, ge=1, le=10_000_000)
    #: received messages waiting for the intake's worker. When full, the MQTT network thread
    #: waits for room: it stops reading from the broker, which keeps the unacknowledged QoS 1
    #: messages, instead of growing memory (a broker that honours the receive maximum, 1000,
    #: never fills the default)
    intake_queue_max: int = Field(default=1000, ge=1, le=1_000_000)

    @field_validator("db_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise ValueError(
                f"db_url must start with sqlite:/// or postgresql+psycopg://, got {value[:40]!r}"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _parseable_broker(cls, value: str) -> str:
        BrokerEndpoint.from_url(value)  # its errors show the URL with the password masked
        return value

    @model_validator(mode="after")
    def _refuse_open_broker_in_production(self) -> Settings:
        """Production logs in to the broker, and sends that login in clear only to this host."""
        if self.environment != "production":
            return self
        broker = BrokerEndpoint.from_url(self.broker_url)
        if broker.username is None:
            raise ValueError(
                f"production needs a broker login: broker_url={broker.masked()!r} has no user "
                "(mqtt://USER@HOST, docs/operations.md)"
            )
        if not broker.tls and not _is_loopback(broker.host):
            raise ValueError(
                f"production sends the broker login encrypted: broker_url={broker.masked()!r} "
                "should be mqtts:// unless the broker is on this host (127.0.0.1, ::1, localhost)"
            )
        return self

    @model_validator(mode="after")
    def _refuse_open_production(self) -> Settings:
        """Production must be protected: at least one admin token, none a known placeholder."""
        if self.environment != "production":
            return self
        if not self.tokens.admin_sha256:
            raise ValueError("production needs at least one admin token (tokens.admin_sha256)")
        placeholders = {hash_token(t) for t in PLACEHOLDER_TOKENS}
        configured = set(self.tokens.admin_sha256) | set(self.tokens.dashboard_sha256)
        for digests in self.tokens.homeowner_sha256.values():
            configured |= set(digests)
        if configured & placeholders:
            raise ValueError("a configured token is a placeholder such as 'changeme'")
        return self

    @property
    def dead_letter_retention(self) -> DeadLetterRetention:
        return DeadLetterRetention(
            self.dead_letter_max_rows, timedelta(days=self.dead_letter_max_age_days)
        )

    @property
    def runtime_client_id(self) -> str:
        """The runtime's own MQTT session (answers in, state out), stable per worker too."""
        return f"{self.mqtt_client_prefix}-runtime-{self.worker_id}"

    @property
    def mqtt_client_id(self) -> str:
        """Stable per worker: the broker keeps its persistent session across restarts."""
        return f"{self.mqtt_client_prefix}-intake-{self.worker_id}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("ATLAS_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hash_token(token: str) -> str:
    """The stored form of a bearer token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SettingsError(ValueError):
    """Settings that cannot be loaded, worded for the operator: each problem with the setting
    it concerns, so ``atlas serve`` can say it in a line or two instead of a traceback."""


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_path`` (TOML) or ``ATLAS_CONFIG``, the environment and overrides.

    Raises :class:`SettingsError` for a missing config file or a refused setting.
    """
    try:
        if config_path is None:
            return Settings(**overrides)
        path = Path(config_path)
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist")
        previous = os.environ.get("ATLAS_CONFIG")
        os.environ["ATLAS_CONFIG"] = str(path)
        try:
            return Settings(**overrides)
        finally:
            if previous is None:
                os.environ.pop("ATLAS_CONFIG", None)
            else:
                os.environ["ATLAS_CONFIG"] = previous
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        raise SettingsError("; ".join(problems)) from None
