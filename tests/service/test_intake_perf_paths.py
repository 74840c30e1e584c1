"""The intake's fast paths give exactly what the straightforward code gave.

``decode_event_counts`` checks an ``i16le-b64`` window through its smallest and largest counts
(or not at all when no int16 count can leave the range) instead of scanning float64 arrays, and
``pack_counts`` shuffles bytes by slicing and compresses with zstd: all must be indistinguishable
from the reference formulas they replaced, including at the range limits, and blobs written in
the first format (zlib) must still read back.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime

import numpy as np
import pytest
import zstandard
from sqlalchemy import create_engine

from atlas.events import MAX_ABS_KPA, EventError, decode_event, decode_event_counts
from service.intake.messages import InboundMessage
from service.intake.mqtt import Batcher, IntakeConfig, MqttIntake
from service.intake.pipeline import IngestPipeline
from service.storage.waveform import pack_counts, shuffled_deltas, unpack_counts


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


def _reference_deltas(counts: np.ndarray) -> bytes:
    deltas = np.diff(counts, prepend=np.int16(0)).astype("<i2")
    return deltas.view(np.uint8).reshape(-1, 2).T.tobytes()


def _reference_verdict(counts: np.ndarray, scale: float, offset: float) -> str:
    """What the full float64 scan says about a window: ok, not_finite or out_of_range."""
    kpa = offset + scale * counts.astype(np.float64)
    if not np.all(np.isfinite(kpa)):
        return "not_finite"
    return "out_of_range" if kpa.size and np.max(np.abs(kpa)) > MAX_ABS_KPA else "ok"


def _verdict(counts: np.ndarray, scale: float, offset: float) -> str:
    try:
        decode_event_counts(_payload(counts, scale, offset))
    except EventError as err:
        return err.reason
    return "ok"


@pytest.mark.parametrize("seed", range(3))
def test_range_verdict_matches_the_full_scan_around_the_skip_bound(seed):
    """The scan is skipped when |offset| + scale * 32768 is inside the range: around that bound
    (either side, either sign, with the extreme counts present or not) every verdict is the
    full scan's."""
    rng = np.random.default_rng(seed)
    for _ in range(40):
        scale = float(rng.choice([0.01, 0.1, 0.15, 0.3]))
        bound = MAX_ABS_KPA - scale * 32768.0  # |offset| at which the skip stops
        offset = float(rng.choice([-1, 1]) * (bound + rng.uniform(-2 * scale, 2 * scale)))
        counts = rng.integers(-300, 300, 1750).astype("<i2")
        if rng.random() < 0.5:
            counts[rng.integers(0, 1750)] = rng.choice([-32768, 32767])
        assert _verdict(counts, scale, offset) == _reference_verdict(counts, scale, offset)


@pytest.mark.parametrize(
    "counts",
    [
        np.random.default_rng(1).integers(-32768, 32768, 1750).astype("<i2"),
        np.array([-32768, 32767, -32768, 0, 1], dtype="<i2"),
        np.array([7], dtype="<i2"),
        np.zeros(0, dtype="<i2"),
    ],
)
def test_pack_counts_compresses_the_same_shuffled_deltas(counts):
    assert shuffled_deltas(counts) == _reference_deltas(counts)
    blob = pack_counts(counts)
    assert zstandard.ZstdDecompressor().decompress(blob) == _reference_deltas(counts)
    np.testing.assert_array_equal(unpack_counts(blob), counts)


def test_blobs_of_the_first_format_still_read_back():
    """Databases written before the switch to zstd hold zlib-1 blobs of the same bytes."""
    counts = np.random.default_rng(3).integers(-500, 500, 1750).astype("<i2")
    old_blob = zlib.compress(_reference_deltas(counts), 1)
    np.testing.assert_array_equal(unpack_counts(old_blob), counts)


def test_zstd_blobs_are_smaller_than_zlib_on_a_pressure_wave():
    t = np.arange(1750) / 1000
    wave = 400 + 20 * np.exp(-3 * t) * np.sin(2 * np.pi * 30 * t)
    noise = np.random.default_rng(4).normal(0, 0.05, t.size)
    counts = np.round((wave + noise - 400) / 0.01).astype("<i2")
    assert len(pack_counts(counts)) < len(zlib.compress(_reference_deltas(counts), 1))


def _batcher(quiet_s: float) -> Batcher:
    """The intake's batching, without a broker or a database."""
    return Batcher(IntakeConfig(batch_size=10, drain_quiet_s=quiet_s))


def _queue(batcher: Batcher, n: int) -> None:
    for i in range(n):
        assert batcher.offer(InboundMessage("t", b"{}", datetime.now(UTC), i, 1))


def test_pairing_waits_while_a_backlog_drains_not_for_live_traffic():
    """A draining backlog either queues more than a batch or fills batches as fast as the
    worker takes them (the queue then stays short): pairing waits in both cases."""
    batcher = _batcher(quiet_s=3600.0)
    assert not batcher.draining()
    _queue(batcher, 11)
    assert batcher.draining()  # more than a batch queued
    assert len(batcher.take_batch()) == 10
    assert batcher.draining()  # one left, but the batch just taken was full
    live = _batcher(quiet_s=3600.0)
    _queue(live, 4)  # fewer than half a batch: live traffic
    assert len(live.take_batch()) == 4
    assert not live.draining()
    quiet = _batcher(quiet_s=0.0)  # a full batch long enough ago no longer counts
    _queue(quiet, 10)
    assert len(quiet.take_batch()) == 10
    assert not quiet.draining()


def test_the_intake_batches_by_its_config_and_a_full_queue_refuses():
    config = IntakeConfig(batch_size=10, drain_quiet_s=1.0, queue_max=2)
    intake = MqttIntake(IngestPipeline(create_engine("sqlite://")), config)
    assert intake.queue_capacity == intake.batcher.capacity == 2
    assert intake.batcher.config is config
    _queue(intake.batcher, 2)
    assert not intake.batcher.offer(InboundMessage("t", b"{}", datetime.now(UTC), 3, 1))
    assert len(intake.batcher.take_batch(timeout=0.01)) == 2
    assert intake.batcher.take_batch(timeout=0.01) == []
