"""Waveform packing is lossless for int16 counts, including wrap-around extremes."""

from __future__ import annotations

import numpy as np
import pytest

from service.storage.waveform import pack_counts, pack_waveform, unpack_counts, unpack_waveform


@pytest.mark.parametrize(
    "counts",
    [
        np.array([-32768, 32767, -32768, 0, 1], dtype="<i2"),
        np.random.default_rng(0).integers(-32768, 32768, 1750).astype("<i2"),
        np.zeros(1, dtype="<i2"),
    ],
)
def test_counts_round_trip(counts):
    np.testing.assert_array_equal(unpack_counts(pack_counts(counts)), counts)


def test_smooth_wave_compresses():
    t = np.arange(1750) / 1000
    kpa = 400 + 20 * np.exp(-3 * t) * np.sin(2 * np.pi * 30 * t)
    blob, scale, offset = pack_waveform(kpa)
    assert len(blob) < 1750 * 2 / 1.4
    np.testing.assert_allclose(unpack_waveform(blob, scale, offset), kpa, atol=scale)


def test_bad_scale_is_refused():
    with pytest.raises(ValueError, match="scale_kpa=0"):
        pack_waveform(np.zeros(10), 0)
