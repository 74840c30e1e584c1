"""Small non-water waveform families shared by the codebook tests."""

from __future__ import annotations

import numpy as np
import pytest

RATE = 1000
N_SAMPLES = 1750


def chirp(f0: float, f1: float, rng: np.random.Generator, n: int = N_SAMPLES) -> np.ndarray:
    """A linear chirp from f0 to f1 Hz starting at 0.25 s, decaying, with a little noise."""
    t = np.arange(n) / RATE
    tt = np.clip(t - 0.25, 0.0, None)
    duration = n / RATE - 0.25
    phase = 2 * np.pi * (f0 * tt + 0.5 * (f1 - f0) / duration * tt**2)
    wave = (t >= 0.25) * np.exp(-2.0 * tt) * np.sin(phase + rng.uniform(0, 0.3))
    return 3.0 * wave + rng.normal(0, 0.02, n)


@pytest.fixture(scope="session")
def make_chirp():
    """The :func:`chirp` generator, for tests that need their own waves."""
    return chirp


@pytest.fixture(scope="session")
def chirp_families() -> tuple[list[np.ndarray], np.ndarray]:
    """40 up-chirps (10->80 Hz) and 40 down-chirps (80->10 Hz) with jittered endpoints."""
    rng = np.random.default_rng(7)
    waves, labels = [], []
    for i in range(80):
        up = i % 2 == 0
        lo, hi = rng.uniform(8, 14), rng.uniform(70, 90)
        waves.append(chirp(lo, hi, rng) if up else chirp(hi, lo, rng))
        labels.append(int(up))
    return waves, np.asarray(labels)
