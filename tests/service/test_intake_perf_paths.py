"""The intake's fast paths give exactly what the straightforward code gave.

``decode_event_counts`` checks an ``i16le-b64`` window through its smallest and largest counts
instead of scanning float64 arrays, and ``pack_counts`` shuffles bytes by slicing: both must be
indistinguishable from the reference formulas they replaced, including at the range limits.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime

import numpy as np
import pytest

from atlas.events import MAX_ABS_KPA, EventError, decode_event, decode_event_counts
from service.storage.waveform import pack_counts, unpack_counts


def _payload(counts: np.ndarray, scale: float = 0.01, offset: float = 420.0, **extra) -> bytes:
    body = {
        "schema": "atlas.event/1",
        "event_id": "ev-1",
        "home_id": "home-a",
        "sensor_id": "hot",
        "line": "hot",
        "t": "2026-11-01T07:42:00.000Z",
        "sample_rate_hz": 1000,
        "n_samples": len(counts),
        "encoding": "i16le-b64",
        "scale_kpa": scale,
        "offset_kpa": offset,
        "samples": base64.b64encode(np.asarray(counts, dtype="<i2").tobytes()).decode("ascii"),
    }
    return json.dumps(body | extra).encode()


def _reference_samples(counts: np.ndarray, scale: float, offset: float) -> np.ndarray:
    """The float64 formula ``decode_event`` used before the fast path."""
    return (offset + scale * counts.astype(np.float64)).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("scale", "offset"), [(0.01, 420.0), (0.1, -1234.56), (3, 7)])
def test_samples_and_counts_match_the_reference(seed, scale, offset):
    counts = np.random.default_rng(seed).integers(-400, 400, 1750).astype("<i2")
    event, kept = decode_event_counts(_payload(counts, scale, offset))
    np.testing.assert_array_equal(event.samples, _reference_samples(counts, scale, offset))
    assert event.samples.dtype == np.float32
    np.testing.assert_array_equal(kept.counts, counts)
    assert (kept.scale_kpa, kept.offset_kpa) == (float(scale), float(offset))
    np.testing.assert_array_equal(
        decode_event(_payload(counts, scale, offset)).samples, event.samples
    )


@pytest.mark.parametrize("sign", [1, -1])
def test_range_limit_is_exact_at_either_end(sign):
    """One count just inside or just outside +-MAX_ABS_KPA decides, wherever it sits."""
    counts = np.zeros(1750, dtype="<i2")
    counts[-1 if sign > 0 else 0] = sign * 1000
    inside = sign * (MAX_ABS_KPA - 10.0)  # offset + 1000 * 0.01 == +-MAX_ABS_KPA exactly
    decode_event_counts(_payload(counts, 0.01, inside))
    with pytest.raises(EventError) as err:
        decode_event_counts(_payload(counts, 0.01, inside + sign * 0.02))
    assert err.value.reason == "out_of_range"


def test_extreme_counts_are_checked():
    counts = np.array([0] * 1000 + [-32768, 32767] + [0] * 748, dtype="<i2")
    with pytest.raises(EventError) as err:
        decode_event_counts(_payload(counts, 0.2, 0.0))  # 0.2 * 32768 = 6553.6 kPa
    assert err.value.reason == "out_of_range"
    event, _ = decode_event_counts(_payload(counts, 0.1, 0.0))
    np.testing.assert_array_equal(event.samples, _reference_samples(counts, 0.1, 0.0))


def test_json_encoding_has_no_counts():
    body = json.loads(_payload(np.zeros(1750)))
    body |= {"encoding": "json", "samples": [400.0] * 1750}
    body.pop("scale_kpa"), body.pop("offset_kpa")
    event, kept = decode_event_counts(json.dumps(body))
    assert kept is None and event.samples.shape == (1750,)


def test_empty_window_still_fails_on_count_and_window():
    with pytest.raises(EventError) as err:
        decode_event_counts(_payload(np.zeros(0), n_samples=1750))
    assert err.value.reason == "sample_count_mismatch"


@pytest.mark.parametrize(
    ("event_id", "ok"),
    [
        ("two-bath-house.1.000000-0", True),
        ("A:b_c.d-1", True),
        ("évènement-1", True),  # str.isalnum accepts Unicode letters: the exact test decides
        ("x" * 128, True),
        ("x" * 129, False),
        ("ev 1", False),
        ("ev/1", False),
        ("ev-1\n", False),
    ],
)
def test_event_id_rule_is_unchanged(event_id, ok):
    payload = _payload(np.zeros(1750), event_id=event_id)
    if ok:
        assert decode_event_counts(payload, now=datetime.now(UTC))[0].event_id == event_id
    else:
        with pytest.raises(EventError) as err:
            decode_event_counts(payload)
        assert err.value.reason == "bad_id"


def _reference_pack(counts: np.ndarray) -> bytes:
    deltas = np.diff(counts, prepend=np.int16(0)).astype("<i2")
    return zlib.compress(deltas.view(np.uint8).reshape(-1, 2).T.tobytes(), 1)


@pytest.mark.parametrize(
    "counts",
    [
        np.random.default_rng(1).integers(-32768, 32768, 1750).astype("<i2"),
        np.array([-32768, 32767, -32768, 0, 1], dtype="<i2"),
        np.array([7], dtype="<i2"),
        np.zeros(0, dtype="<i2"),
    ],
)
def test_pack_counts_writes_the_same_bytes(counts):
    assert pack_counts(counts) == _reference_pack(counts)
    np.testing.assert_array_equal(unpack_counts(pack_counts(counts)), counts)
