"""atlas.transient: features of synthetic windows whose answers are known exactly."""

import dataclasses

import numpy as np
import pytest

from atlas import transient
from atlas.events import decode_event, encode_event
from atlas.pairing import compute_features
from atlas.transient import (
    FEATURE_NAMES,
    MAX_DECAY_PER_S,
    TransientFeatures,
    feature_matrix,
    transient_features,
    transient_features_batch,
)
from simulator.generate import generate_run
from simulator.presets import PRESETS, load_preset

RATE = 1000
T = np.arange(1750) / RATE
PRE = 0.25


def _wave(step: float, surge: float, f: float, decay: float, noise: float = 0.02, seed: int = 0):
    """Baseline 400 kPa; at PRE a step and a damped cosine of amplitude ``surge`` at ``f`` Hz."""
    rng = np.random.default_rng(seed)
    after = T >= PRE
    tau = T - PRE
    x = 400.0 + np.where(
        after, step + surge * np.cos(2 * np.pi * f * tau) * np.exp(-decay * tau), 0
    )
    return x + rng.normal(0, noise, T.size)


@pytest.mark.parametrize("f", [4.0, 16.0, 65.0, 150.0])
def test_ring_frequency_of_a_damped_cosine(f):
    feats = transient_features(_wave(8.0, 20.0, f, 3.0), RATE)
    assert feats.ring_hz == pytest.approx(f, rel=0.03)


@pytest.mark.parametrize("decay", [2.0, 6.0, 15.0])
def test_decay_rate_of_the_envelope(decay):
    feats = transient_features(_wave(8.0, 30.0, 40.0, decay), RATE)
    assert feats.decay_per_s == pytest.approx(decay, rel=0.2)


def test_close_has_positive_step_and_surge():
    feats = transient_features(_wave(6.0, 25.0, 30.0, 5.0), RATE)
    assert feats.kind == "close"
    assert feats.step_kpa == pytest.approx(6.0, abs=0.3)
    assert feats.surge_kpa == pytest.approx(25.0, rel=0.1)
    assert feats.baseline_kpa == pytest.approx(400.0, abs=0.05)
    assert feats.onset_s == pytest.approx(PRE, abs=0.005)


def test_open_has_negative_step_and_dip():
    feats = transient_features(_wave(-6.0, -10.0, 30.0, 5.0), RATE)
    assert feats.kind == "open"
    assert feats.step_kpa == pytest.approx(-6.0, abs=0.3)
    assert feats.surge_kpa == pytest.approx(-10.0, rel=0.1)


def test_rise_time_follows_a_linear_ramp():
    ramp = np.clip((T - PRE) / 0.2, 0, 1)
    feats = transient_features(400.0 - 10.0 * ramp, RATE)
    assert feats.rise_time_s == pytest.approx(0.16, abs=0.01)  # 10 %-90 % of a 0.2 s ramp
    assert feats.surge_kpa == pytest.approx(0.0, abs=0.01)


def test_flat_window_reports_no_ringing():
    feats = transient_features(np.full(T.size, 400.0), RATE)
    assert feats.decay_per_s == MAX_DECAY_PER_S
    assert feats.step_kpa == 0.0


def test_vector_follows_feature_names():
    feats = transient_features(_wave(6.0, 25.0, 30.0, 5.0), RATE)
    vector = feats.as_vector()
    assert isinstance(feats, TransientFeatures)
    assert vector.shape == (len(FEATURE_NAMES),)
    assert vector[FEATURE_NAMES.index("ring_hz")] == feats.ring_hz


def test_too_short_window_names_the_problem():
    with pytest.raises(ValueError, match="samples has 100 samples"):
        transient_features(np.zeros(100), RATE)


# ---------------------------------------------------------------- batched path: bit for bit
NUMERIC_FIELDS = tuple(f.name for f in dataclasses.fields(TransientFeatures) if f.name != "kind")
MIN_N = round(PRE * RATE) + round(0.3 * RATE) + 16  # shortest window transient_features takes


def _bits(features: list[TransientFeatures]) -> tuple[np.ndarray, list[str]]:
    """Every numeric field as raw float64 bits (so -0.0 != 0.0), and the kinds."""
    values = np.array([[getattr(f, n) for n in NUMERIC_FIELDS] for f in features], dtype=float)
    return values.reshape(len(features), len(NUMERIC_FIELDS)).view(np.uint64), [
        f.kind for f in features
    ]


def _assert_batch_matches(windows, rate: int = RATE, pre_s: float = PRE) -> None:
    """Batch results equal the per-window function's in every bit, in input order."""
    expected = [transient_features(w, rate, pre_s) for w in windows]
    batch = transient_features_batch(windows, rate, pre_s)
    assert all(isinstance(f, TransientFeatures) for f in batch)
    bits, kinds = _bits(batch)
    want_bits, want_kinds = _bits(expected)
    assert kinds == want_kinds
    mismatched = np.nonzero((bits != want_bits).any(axis=1))[0]
    assert not mismatched.size, f"windows {mismatched[:10].tolist()} differ"
    vectors = np.stack([f.as_vector() for f in expected])
    matrix = feature_matrix(windows, rate, pre_s)
    assert np.array_equal(matrix.view(np.uint64), vectors.view(np.uint64))
    if len({len(w) for w in windows}) == 1:  # a 2-D array is accepted as is
        stacked = feature_matrix(np.stack(windows), rate, pre_s)
        assert np.array_equal(stacked.view(np.uint64), vectors.view(np.uint64))


@pytest.fixture(params=["vectorised", "tiny batches"])
def batching(request, monkeypatch):
    """Module defaults, or every group vectorised however small, in batches of 3 rows."""
    if request.param == "tiny batches":
        monkeypatch.setattr(transient, "_MIN_ROWS", 1)
        monkeypatch.setattr(transient, "_BATCH_ROWS", 3)
    return request.param


@pytest.fixture(scope="module", params=sorted(PRESETS))
def preset_windows(request) -> list[np.ndarray]:
    """Every window of 3 simulated days of a preset, as simulated and after the wire's int16
    quantisation (repeated values: ties in medians, peaks and spectra)."""
    run = generate_run(load_preset(request.param), days=3, seed=11)
    raw = [s.event.samples.astype(np.float64) for s in run]
    wire = [decode_event(encode_event(s.event)).samples.astype(np.float64) for s in run]
    return raw + wire


def test_batch_equals_per_window_on_simulated_windows(preset_windows):
    assert len(preset_windows) > 200
    _assert_batch_matches(preset_windows)


def test_batch_equals_per_window_on_truncated_simulated_windows(preset_windows, batching):
    """Shorter windows down to the minimum length, 9 of each length (vectorised groups)."""
    lengths = np.linspace(MIN_N, 1749, 12).astype(int)
    windows = [w[:n] for n in lengths for w in preset_windows[:: len(preset_windows) // 9][:9]]
    _assert_batch_matches(windows)


def _edge_windows(n: int) -> list[np.ndarray]:
    """Windows that sit on the algorithm's decision edges, 8 variants of each kind."""
    rng = np.random.default_rng(n)
    t = np.arange(n) / RATE
    after = t >= PRE
    tau = np.where(after, t - PRE, 0.0)
    out: list[np.ndarray] = []
    for level in (0.0, 400.0, -3.5, 1e6, 0.1, 7.0, 250.0, 1e-9):
        out.append(np.full(n, level))  # constant: no step, zero spectrum
    for sigma in (1e-9, 1e-3, 0.02, 0.5, 3.0, 40.0, 1e-6, 0.1):
        out.append(400.0 + rng.normal(0, sigma, n))  # noise only
    for step in (0.01, -0.01, 0.05, -0.05, 0.2, -0.2, 0.03, -0.03):
        out.append(400.0 + step * after + rng.normal(0, 0.02, n))  # step within the noise
    for f in (1.5, 1.6, 2.0, 340.0, 349.0, 350.0, 360.0, 499.0):  # ringing at the band edges
        out.append(400.0 + 5 * after + 8 * np.cos(2 * np.pi * f * tau) * np.exp(-3 * tau) * after)
    for f in (20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 300.0):  # two equal tones: near-ties
        two = np.cos(2 * np.pi * f * tau) + np.cos(2 * np.pi * 1.5 * f * tau)
        out.append(400.0 - 6 * after + 5 * two * np.exp(-4 * tau) * after)
    for k in range(8):  # one spike near the end: residual shorter than 16 samples
        spike = np.full(n, 400.0)
        spike[n - 1 - k * 2] += 30.0
        out.append(spike)
    for k in range(8):  # ramps (rise time crossings on exact fractions) and clean steps
        ramp = np.clip((t - PRE) / (0.05 + 0.05 * k), 0, 1)
        out.append(400.0 + (-1) ** k * 10.0 * ramp)
    for k in range(8):  # quantised ringing: repeated values
        wave = 400.0 + (4 + k) * np.sin(2 * np.pi * (10 + 30 * k) * tau) * np.exp(-5 * tau) * after
        out.append(np.round(wave * 2) / 2)
    return out


@pytest.mark.parametrize("n", [MIN_N, MIN_N + 1, 1750])
def test_batch_equals_per_window_on_edge_cases(n, batching):
    _assert_batch_matches(_edge_windows(n))


@pytest.mark.parametrize("rate", [250, 8000])
def test_batch_equals_per_window_at_other_rates(rate):
    """250 Hz (band cut by Nyquist) and 8 kHz (14,000 samples: 16384-point FFTs)."""
    rng = np.random.default_rng(rate)
    t = np.arange(int(1.75 * rate)) / rate
    windows = [
        300.0
        + np.where(t >= PRE, -4.0 + 6.0 * np.cos(2 * np.pi * f * (t - PRE)) * np.exp(-4 * t), 0)
        + rng.normal(0, 0.05, t.size)
        for f in rng.uniform(3, 0.4 * rate, 10)
    ]
    _assert_batch_matches(windows, rate)


def test_batch_keeps_input_order_across_lengths(preset_windows):
    rng = np.random.default_rng(3)
    windows = [w[: rng.choice([MIN_N, 1000, 1750])] for w in preset_windows[:60]]
    _assert_batch_matches(windows)


def test_pairing_compute_features_uses_identical_features():
    run = generate_run(load_preset("apartment"), days=2, seed=4)
    events = [s.event for s in run]
    features = compute_features(events)
    assert list(features) == [e.event_id for e in events]
    for e in events:
        assert features[e.event_id] == transient_features(e.samples, e.sample_rate_hz)


def test_batch_of_nothing():
    assert transient_features_batch([], RATE) == []
    assert feature_matrix([], RATE).shape == (0, len(FEATURE_NAMES))


@pytest.mark.parametrize("group", [3, 12])  # one by one, and a vectorised group
def test_batch_names_the_window_it_refuses(group):
    windows = [_wave(6.0, 25.0, 30.0, 5.0, seed=i) for i in range(group)]
    windows[2] = windows[2].copy()
    windows[2][500] = np.nan
    with pytest.raises(ValueError, match=r"windows\[2\]: samples contain NaN"):
        transient_features_batch(windows, RATE)
    windows[2] = np.zeros(100)
    with pytest.raises(ValueError, match=r"windows\[2\] has 100 samples"):
        feature_matrix(windows, RATE)
    with pytest.raises(ValueError, match="sample_rate_hz=0"):
        feature_matrix(windows, 0)
