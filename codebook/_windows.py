"""From raw 1-D windows to normalised, atom-length patches (pure numpy).

The codebook learns *shapes*: each window is shifted by its pre-onset baseline and scaled by its
largest excursion, so a 400 kPa home and a 550 kPa home, or a small and a large valve, give
comparable atoms. The amplitudes that the scaling removes are not lost: the physical features
(step, surge) carry them. Patches overlap by half an atom by default so a wave feature that
straddles a patch boundary is still seen whole by one patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def as_window(item: Any, index: int) -> tuple[np.ndarray, int | None]:
    """The samples of one input item and its own sample rate, if it carries one.

    An item is a 1-D array-like, or any object with ``samples`` and ``sample_rate_hz``
    attributes (such as :class:`atlas.events.Event`), whose rate is then checked.
    """
    rate = None
    if hasattr(item, "samples") and hasattr(item, "sample_rate_hz"):
        rate = int(item.sample_rate_hz)
        item = item.samples
    x = np.asarray(item, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"X[{index}] should be a 1-D waveform, got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"X[{index}] contains NaN or infinity.")
    return x, rate


def normalise(windows: np.ndarray, pre_n: int) -> np.ndarray:
    """Subtract each row's baseline (median of its first ``pre_n`` samples; none if 0) and
    divide by its largest absolute excursion (rows that never move stay all zero)."""
    if pre_n > 0:
        windows = windows - np.median(windows[:, :pre_n], axis=1, keepdims=True)
    scale = np.max(np.abs(windows), axis=1, keepdims=True)
    return np.divide(windows, scale, out=np.zeros_like(windows), where=scale > 0)


def patches(windows: np.ndarray, atom_length: int, hop: int, center: bool) -> np.ndarray:
    """Patches of shape (n_windows, n_patches, atom_length), optionally mean-removed."""
    view = np.lib.stride_tricks.sliding_window_view(windows, atom_length, axis=1)[:, ::hop]
    out = np.array(view)
    if center:
        out -= out.mean(axis=2, keepdims=True)
    return out


def n_patches(n_samples: int, atom_length: int, hop: int) -> int:
    return (n_samples - atom_length) // hop + 1


def segment_slices(
    n_samples: int, atom_length: int, hop: int, sample_rate_hz: int, edges_s: Sequence[float]
) -> list[slice]:
    """For each time segment, the range of patches whose centre falls in it.

    Segments are ``[0, edges_s[0])``, ``[edges_s[0], edges_s[1])``, ..., ``[edges_s[-1], end)``
    in seconds from the window's first sample; patches are time-ordered, so each is a slice
    (empty when the window is too short to reach the segment).
    """
    centres = np.arange(n_patches(n_samples, atom_length, hop)) * hop + atom_length / 2
    segment = np.searchsorted(np.asarray(edges_s) * sample_rate_hz, centres, side="right")
    bounds = np.searchsorted(segment, np.arange(len(edges_s) + 2), side="left")
    return [slice(int(bounds[s]), int(bounds[s + 1])) for s in range(len(edges_s) + 1)]


def downsample(windows: np.ndarray, factor: int) -> np.ndarray:
    """Means of consecutive blocks of ``factor`` samples (a trailing partial block is dropped);
    the windows themselves when ``factor`` is 1."""
    if factor == 1:
        return windows
    n = windows.shape[1] // factor
    return windows[:, : n * factor].reshape(windows.shape[0], n, factor).mean(axis=2)


def zscore(windows: np.ndarray) -> np.ndarray:
    """Each row minus its mean, divided by its standard deviation (constant rows become 0)."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    scale = np.sqrt(np.mean(centred * centred, axis=1, keepdims=True))
    return np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)


def pyramid_slices(
    n_samples: int, atom_length: int, hop: int, levels: Sequence[int]
) -> list[slice]:
    """Relative pooling segments: for each level ``n``, the window cut in ``n`` equal parts.

    Each part is the range of patches whose centre falls in it, so every window, whatever its
    length, fills every segment it is long enough to have patches for; level 1 pools over the
    whole window (invariant to where a shape occurs).
    """
    centres = np.arange(max(0, n_patches(n_samples, atom_length, hop))) * hop + atom_length / 2
    out = []
    for level in levels:
        part = np.minimum((centres * level / n_samples).astype(np.intp), level - 1)
        bounds = np.searchsorted(part, np.arange(level + 1), side="left")
        out += [slice(int(bounds[j]), int(bounds[j + 1])) for j in range(level)]
    return out


def equal_parts(n_samples: int, n_parts: int) -> list[tuple[int, int]]:
    """The sample ranges ``[start, stop)`` of ``n_parts`` equal parts of a window (the same
    cuts as one level of :func:`pyramid_slices`)."""
    return [(j * n_samples // n_parts, (j + 1) * n_samples // n_parts) for j in range(n_parts)]
