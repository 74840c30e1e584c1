"""Event contract: what a gateway publishes decodes exactly, and every bad payload gets a reason."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jsonschema
import numpy as np
import pytest

from atlas.events import (
    MAX_PAYLOAD_BYTES,
    Event,
    EventError,
    check_registered,
    decode_event,
    encode_event,
    event_json_schema,
)

T0 = datetime(2026, 11, 1, 7, 42, tzinfo=UTC)


def make_event(n: int = 1750, rate: int = 1000) -> Event:
    rng = np.random.default_rng(0)
    samples = (420 + 30 * np.sin(np.arange(n) / 7) + rng.normal(0, 0.3, n)).astype(np.float32)
    return Event("ev-1", "home-a", "hot", "hot", T0, rate, samples)


@pytest.mark.parametrize("encoding", ["i16le-b64", "json"])
def test_round_trip_is_exact_to_quantisation(encoding):
    event = make_event()
    payload = encode_event(event, encoding=encoding)
    jsonschema.validate(payload, event_json_schema())
    decoded = decode_event(json.dumps(payload))
    assert decoded.t == event.t and decoded.sample_rate_hz == 1000
    assert np.max(np.abs(decoded.samples - event.samples)) <= 0.0051


def good_payload() -> dict:
    return encode_event(make_event())


def _replace(field, value):
    def mutate(p):
        p[field] = value

    return mutate


def _drop(field):
    return lambda p: p.pop(field)


BAD = [
    (_replace("schema", "atlas.event/9"), "unknown_schema"),
    (_drop("event_id"), "missing_field"),
    (_replace("sample_rate_hz", "1000"), "wrong_type"),
    (_replace("sample_rate_hz", 5), "bad_sample_rate"),
    (_replace("home_id", "x'; DROP TABLE events;--"), "bad_id"),
    (_replace("line", "warm"), "bad_line"),
    (_replace("t", "yesterday"), "bad_time"),
    (_replace("t", "2026-11-01T07:42:00"), "bad_time"),
    (_replace("encoding", "f32"), "unknown_encoding"),
    (_replace("samples", "!!not base64!!"), "bad_base64"),
    (_replace("n_samples", 1751), "sample_count_mismatch"),
    (_replace("scale_kpa", float("nan")), "bad_scale"),
    (_replace("n_samples", True), "wrong_type"),
]


@pytest.mark.parametrize(("mutate", "reason"), BAD)
def test_bad_payload_has_specific_reason(mutate, reason):
    payload = good_payload()
    mutate(payload)
    with pytest.raises(EventError) as err:
        decode_event(json.dumps(payload))
    assert err.value.reason == reason
    assert str(err.value)


def test_nan_in_json_samples_is_refused():
    payload = encode_event(make_event(200), encoding="json")
    payload["samples"][3] = float("nan")
    with pytest.raises(EventError) as err:
        decode_event(json.dumps(payload))  # json.dumps writes NaN, which json.loads accepts
    assert err.value.reason == "not_finite"


def test_truncated_json_and_oversize_payload():
    text = json.dumps(good_payload())
    with pytest.raises(EventError, match="not valid JSON") as err:
        decode_event(text[: len(text) // 2])
    assert err.value.reason == "bad_json"
    with pytest.raises(EventError) as err:
        decode_event(b" " * (MAX_PAYLOAD_BYTES + 1))
    assert err.value.reason == "too_large"


def test_deeply_nested_json_is_bad_json_not_a_crash():
    with pytest.raises(EventError) as err:
        decode_event("[" * 100_000 + "]" * 100_000)
    assert err.value.reason == "bad_json"


def test_odd_byte_count_and_window_length():
    payload = good_payload()
    payload["samples"] = base64.b64encode(b"\x00\x01\x02").decode()
    with pytest.raises(EventError) as err:
        decode_event(payload)
    assert err.value.reason == "bad_base64"
    with pytest.raises(EventError) as err:
        decode_event(encode_event(make_event(n=20)))
    assert err.value.reason == "bad_window"


def test_future_time_is_refused_only_with_a_clock():
    payload = good_payload()
    assert decode_event(payload).t == T0
    with pytest.raises(EventError) as err:
        decode_event(payload, now=T0 - timedelta(hours=1))
    assert err.value.reason == "future_time"


def test_registry_checks_home_sensor_line_and_rate():
    event = decode_event(good_payload())
    check_registered(event, {"hot": ("hot", 1000), "cold": ("cold", 1000)})
    cases = [
        (None, "unknown_home"),
        ({"cold": ("cold", 1000)}, "unknown_sensor"),
        ({"hot": ("cold", 1000)}, "wrong_line"),
        ({"hot": ("hot", 2000)}, "wrong_sample_rate"),
    ]
    for sensors, reason in cases:
        with pytest.raises(EventError) as err:
            check_registered(event, sensors)
        assert err.value.reason == reason
