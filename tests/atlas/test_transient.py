"""atlas.transient: features of synthetic windows whose answers are known exactly."""

import numpy as np
import pytest

from atlas.transient import FEATURE_NAMES, MAX_DECAY_PER_S, TransientFeatures, transient_features

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
