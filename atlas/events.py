"""The pressure-wave event contract (``atlas.event/1``): encoding and strict decoding.

A sensor gateway publishes one event per pressure transient on
``atlas/v1/homes/{home_id}/sensors/{sensor_id}/events``. The payload is JSON; the samples are
either ``i16le-b64`` (little-endian int16 counts, base64, with ``scale_kpa`` and ``offset_kpa``:
``kpa = offset_kpa + scale_kpa * count``) or ``json`` (a plain list of kPa floats, for testing by
hand). ``docs/events.md`` documents it; ``atlas/schemas/event.schema.json`` is the JSON Schema.

Decoding is pure and strict because the intake must dead-letter bad payloads with a reason a
person can act on, instead of crashing or storing garbage: every failure raises
:class:`EventError` with a stable ``reason`` code and a human-readable message.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import numpy as np

from atlas.homespec import is_valid_id

SCHEMA = "atlas.event/1"
ENCODINGS = ("i16le-b64", "json")
MAX_PAYLOAD_BYTES = 512 * 1024
MIN_WINDOW_S = 0.05
MAX_WINDOW_S = 10.0
MIN_SAMPLE_RATE_HZ = 100
MAX_SAMPLE_RATE_HZ = 20_000
MAX_ABS_KPA = 5_000.0  # ~725 psi: far beyond any household pipe, so larger means a broken sensor
MAX_CLOCK_SKEW = timedelta(minutes=10)
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
#: Digits an integer in a payload may have. Every numeric field's range fits in far fewer; and
#: Python refuses to convert an integer of more than 4,300 digits (a ValueError naming no field)
#: and a float conversion of a 400-digit one overflows.
MAX_INT_DIGITS = 20

EVENT_TOPIC = "atlas/v1/homes/{home_id}/sensors/{sensor_id}/events"
EVENT_TOPIC_FILTER = "atlas/v1/homes/+/sensors/+/events"


class EventError(ValueError):
    """A payload breaks the contract. ``reason`` is a stable code, ``str(err)`` explains it."""

    def __init__(self, reason: str, message: str, home_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.home_id = home_id


@dataclass(frozen=True, eq=False)
class Counts:
    """The gateway's own quantisation of an ``i16le-b64`` payload: ``kpa = offset + scale * c``.

    Storage keeps these exactly as sent (lossless, no re-quantising), so the decoder hands them
    over instead of making the intake parse and base64-decode the payload a second time.
    """

    counts: np.ndarray  # little-endian int16, read-only view of the decoded bytes
    scale_kpa: float
    offset_kpa: float


@dataclass(frozen=True, eq=False)
class Event:
    """One decoded transient window. ``samples`` are pressures in kPa (float32)."""

    event_id: str
    home_id: str
    sensor_id: str
    line: str
    t: datetime
    sample_rate_hz: int
    samples: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz

    def topic(self) -> str:
        return EVENT_TOPIC.format(home_id=self.home_id, sensor_id=self.sensor_id)


def format_time(t: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, the contract's time format."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def quantize(samples_kpa: np.ndarray, scale_kpa: float = 0.01) -> tuple[np.ndarray, float]:
    """Map kPa to int16 counts around the window's median; returns (counts, offset_kpa).

    A 0.01 kPa step over +-327 kPa covers every household transient (static pressure
    300-550 kPa, surges of a few hundred kPa) at far finer resolution than sensor noise.
    """
    offset = float(np.round(np.median(samples_kpa), 2))
    counts = np.clip(np.round((samples_kpa - offset) / scale_kpa), -32768, 32767)
    return counts.astype("<i2"), offset


def encode_event(event: Event, encoding: str = "i16le-b64", scale_kpa: float = 0.01) -> dict:
    """The JSON payload a gateway publishes for ``event``."""
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "event_id": event.event_id,
        "home_id": event.home_id,
        "sensor_id": event.sensor_id,
        "line": event.line,
        "t": format_time(event.t),
        "sample_rate_hz": event.sample_rate_hz,
        "n_samples": len(event.samples),
        "encoding": encoding,
    }
    if encoding == "i16le-b64":
        counts, offset = quantize(np.asarray(event.samples, dtype=np.float64), scale_kpa)
        payload["scale_kpa"] = scale_kpa
        payload["offset_kpa"] = offset
        payload["samples"] = base64.b64encode(counts.tobytes()).decode("ascii")
    elif encoding == "json":
        payload["samples"] = [round(float(x), 3) for x in event.samples]
    else:
        raise ValueError(f"encoding={encoding!r} should be one of {ENCODINGS}.")
    return payload


class _HugeInt:
    """An integer literal of more than :data:`MAX_INT_DIGITS` digits, left unconverted so that
    the check of its field can name the field (``number_too_large``)."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def _parse_int(text: str) -> int | _HugeInt:
    return int(text) if len(text) <= MAX_INT_DIGITS + 1 else _HugeInt(text)


#: One decoder for every payload: ``json.loads`` with a keyword builds a new one per call.
_DECODER = json.JSONDecoder(parse_int=_parse_int)


def _too_large(name: str, value: _HugeInt, home_id: str | None) -> EventError:
    return EventError(
        "number_too_large",
        f"field {name!r} is an integer of {value.digits} digits; "
        f"at most {MAX_INT_DIGITS} are accepted",
        home_id,
    )


def _require(payload: dict, name: str, kind: type | tuple[type, ...], home_id: str | None) -> Any:
    if name not in payload:
        raise EventError("missing_field", f"required field {name!r} is missing", home_id)
    value = payload[name]
    if isinstance(value, _HugeInt):
        raise _too_large(name, value, home_id)
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise EventError(
            "wrong_type",
            f"field {name!r} should be {expected}, got {type(value).__name__}",
            home_id,
        )
    return value


def _check_id(payload: dict, name: str, home_id: str | None) -> str:
    value = _require(payload, name, str, home_id)
    if not is_valid_id(value) and not (name == "event_id" and _is_event_id(value)):
        raise EventError(
            "bad_id",
            f"field {name!r} must match [a-z0-9][a-z0-9_-]{{0,62}}, got {value[:80]!r}",
            home_id,
        )
    return value


#: An ASCII subset of what :func:`_is_event_id` accepts, checked in C; anything else (e.g. a
#: Unicode letter, which ``str.isalnum`` accepts) takes the exact character-by-character test.
_ASCII_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def _is_event_id(value: str) -> bool:
    if _ASCII_EVENT_ID.fullmatch(value) is not None:
        return True
    return 0 < len(value) <= 128 and all(c.isalnum() or c in "-_.:" for c in value)


def _parse_time(text: str, home_id: str | None, now: datetime | None) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EventError("bad_time", f"field 't' is not ISO-8601: {text[:40]!r}", home_id) from None
    if t.tzinfo is None:
        raise EventError("bad_time", "field 't' must carry a time zone (use Z for UTC)", home_id)
    t = t.astimezone(UTC)
    if t < EARLIEST_EVENT:
        raise EventError("bad_time", f"field 't' is before 2000: {text!r}", home_id)
    if now is not None and t > now + MAX_CLOCK_SKEW:
        raise EventError("future_time", f"field 't' is in the future: {text!r}", home_id)
    return t


def _decode_samples(
    payload: dict, encoding: str, home_id: str | None
) -> tuple[np.ndarray, Counts | None]:
    """Samples in kPa (float32) and, for ``i16le-b64``, the counts they came from."""
    raw = payload.get("samples")
    if encoding == "json":
        if not isinstance(raw, list):
            raise EventError("wrong_type", "field 'samples' should be a list for json", home_id)
        huge = next((x for x in raw if isinstance(x, _HugeInt)), None)
        if huge is not None:
            raise _too_large("samples", huge, home_id)
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
            raise EventError("wrong_type", "field 'samples' must contain only numbers", home_id)
        samples = np.asarray(raw, dtype=np.float64)
        if not np.all(np.isfinite(samples)):
            raise EventError("not_finite", "samples contain NaN or infinity", home_id)
        if samples.size and float(np.max(np.abs(samples))) > MAX_ABS_KPA:
            raise _out_of_range(home_id)
        return samples.astype(np.float32), None
    if not isinstance(raw, str):
        raise EventError("wrong_type", "field 'samples' should be a base64 string", home_id)
    scale = _require(payload, "scale_kpa", int | float, home_id)
    offset = _require(payload, "offset_kpa", int | float, home_id)
    if not (math.isfinite(scale) and 0 < scale <= 10):
        raise EventError(
            "bad_scale", f"scale_kpa must be in (0, 10] and finite, got {scale}", home_id
        )
    if not math.isfinite(offset):
        raise EventError("bad_offset", f"offset_kpa must be finite, got {offset}", home_id)
    try:  # base64.b64decode(raw, validate=True) without its copy of the text into bytes
        data = binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError):
        raise EventError("bad_base64", "field 'samples' is not valid base64", home_id) from None
    if len(data) % 2:
        raise EventError(
            "bad_base64", f"i16le samples need an even byte count, got {len(data)}", home_id
        )
    counts = np.frombuffer(data, dtype="<i2")
    # |offset + scale * c| <= |offset| + scale * 32768 for every int16 c: when that bound is
    # clearly inside the range (the 1e-9 margin covers the rounding of either side), no sample
    # can be out of range or not finite (scale and offset are finite), and the scan is skipped.
    if counts.size and abs(offset) + scale * 32768.0 > MAX_ABS_KPA * (1 - 1e-9):
        # kPa = offset + scale * count rises with the count (scale > 0), so the smallest and
        # largest counts give the extreme pressures: checking those two, in the same float64
        # arithmetic, is exactly the finiteness and range check of the whole window without
        # building and scanning float64 arrays.
        low = offset + scale * float(counts.min())
        high = offset + scale * float(counts.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            raise EventError("not_finite", "samples contain NaN or infinity", home_id)
        if max(abs(low), abs(high)) > MAX_ABS_KPA:
            raise _out_of_range(home_id)
    kpa = counts * float(scale)  # float64: the same operations as offset + scale * counts
    kpa += offset
    return kpa.astype(np.float32), Counts(counts, float(scale), float(offset))


def _out_of_range(home_id: str | None) -> EventError:
    return EventError(
        "out_of_range", f"samples exceed +-{MAX_ABS_KPA:.0f} kPa: a sensor fault", home_id
    )


def decode_event(raw: bytes | str | dict, now: datetime | None = None) -> Event:
    """Parse and validate one payload. Raises :class:`EventError` on any contract violation.

    ``now`` enables the future-timestamp check (the intake passes its clock; offline replays of
    old captures pass None). Checks that need the home registry (unknown home or sensor, sample
    rate differing from the registered one) are the intake's job: see :func:`check_registered`.
    """
    return decode_event_counts(raw, now)[0]


def decode_event_counts(
    raw: bytes | str | dict, now: datetime | None = None
) -> tuple[Event, Counts | None]:
    """:func:`decode_event` plus the gateway's int16 counts (None for the ``json`` encoding).

    The same checks in the same order with the same reasons; the intake stores the counts as
    they arrived, which saves it a second JSON parse and base64 decode of every payload.
    """
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise EventError(
                "too_large", f"payload is {len(raw)} bytes, the limit is {MAX_PAYLOAD_BYTES}"
            )
        try:  # bytes decoded as json.loads decodes them
            text = (
                raw.decode(json.detect_encoding(raw), "surrogatepass")
                if isinstance(raw, bytes)
                else raw
            )
            payload = _DECODER.decode(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EventError("bad_json", f"payload is not valid JSON: {exc}") from None
        except RecursionError:  # hostile nesting such as [[[[...]]]] 100,000 deep
            raise EventError("bad_json", "payload JSON is nested too deeply") from None
    else:
        payload = raw
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise EventError("wrong_type", f"payload must be a JSON object, got {kind}")
    home_id = payload.get("home_id") if isinstance(payload.get("home_id"), str) else None
    home_id = home_id if home_id and is_valid_id(home_id) else None
    schema = payload.get("schema")
    if schema != SCHEMA:
        raise EventError("unknown_schema", f"schema must be {SCHEMA!r}, got {schema!r}", home_id)
    event_id = _check_id(payload, "event_id", home_id)
    home = _check_id(payload, "home_id", home_id)
    sensor_id = _check_id(payload, "sensor_id", home_id)
    line = _require(payload, "line", str, home_id)
    if line not in ("hot", "cold"):
        raise EventError("bad_line", f"field 'line' must be 'hot' or 'cold', got {line!r}", home_id)
    t = _parse_time(_require(payload, "t", str, home_id), home_id, now)
    rate = _require(payload, "sample_rate_hz", int, home_id)
    if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise EventError(
            "bad_sample_rate",
            f"sample_rate_hz must be in [{MIN_SAMPLE_RATE_HZ}, {MAX_SAMPLE_RATE_HZ}], got {rate}",
            home_id,
        )
    encoding = _require(payload, "encoding", str, home_id)
    if encoding not in ENCODINGS:
        raise EventError(
            "unknown_encoding", f"encoding must be one of {ENCODINGS}, got {encoding!r}", home_id
        )
    declared = _require(payload, "n_samples", int, home_id)
    samples, counts = _decode_samples(payload, encoding, home_id)
    if len(samples) != declared:
        raise EventError(
            "sample_count_mismatch",
            f"n_samples says {declared} but {len(samples)} samples arrived (truncated?)",
            home_id,
        )
    window_s = len(samples) / rate
    if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
        raise EventError(
            "bad_window",
            f"{len(samples)} samples at {rate} Hz is a {window_s:.3f} s window; "
            f"expected {MIN_WINDOW_S}-{MAX_WINDOW_S} s",
            home_id,
        )
    return Event(event_id, home, sensor_id, line, t, rate, samples), counts


def check_registered(event: Event, sensors: dict[str, tuple[str, int]] | None) -> None:
    """Check an event against its home's registered sensors ``{sensor_id: (line, rate_hz)}``.

    ``sensors`` is None when the home is unknown.
    """
    if sensors is None:
        raise EventError("unknown_home", f"home {event.home_id!r} is not registered")
    if event.sensor_id not in sensors:
        raise EventError(
            "unknown_sensor",
            f"home {event.home_id!r} has no sensor {event.sensor_id!r}",
            event.home_id,
        )
    line, rate = sensors[event.sensor_id]
    if line != event.line:
        raise EventError(
            "wrong_line",
            f"sensor {event.sensor_id!r} is on the {line} line, event says {event.line}",
            event.home_id,
        )
    if rate != event.sample_rate_hz:
        raise EventError(
            "wrong_sample_rate",
            f"sensor {event.sensor_id!r} is registered at {rate} Hz, event says "
            f"{event.sample_rate_hz} Hz",
            event.home_id,
        )


def event_json_schema() -> dict:
    """The JSON Schema of the payload, shipped in ``atlas/schemas/event.schema.json``."""
    text = resources.files("atlas").joinpath("schemas/event.schema.json").read_text("utf-8")
    return json.loads(text)
