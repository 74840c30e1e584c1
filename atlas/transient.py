"""Physical features of one pressure-transient window (pure numpy).

A gateway publishes a window that starts ``pre_s`` seconds before a transient's onset. The
features here are the quantities the physics of a valve actuation predicts (see
``docs/simulator.md``), so they are what pairing, the rules and the codebook reason with:

* ``step_kpa``: level after minus level before. An open starts a flow, whose friction loss lowers
  the pressure (negative step); a close ends it (positive step).
* ``surge_kpa``: how far the wave overshoots its final level, in the direction of the step:
  the water-hammer spike of a close (positive) or the rarefaction dip of an open (negative).
* ``ring_hz`` / ``decay_per_s``: frequency and exponential envelope decay of the ringing that
  follows; the quarter-wave frequency a/4L identifies the pipe run, the decay its material.
* ``rise_time_s``: 10 %-90 % time of the step, which follows the valve's opening/closing time
  (solenoids fast, hands slower, toilet floats slowest).

:func:`transient_features` computes one window. For many windows (the codebook, a backlog of
events to pair), :func:`transient_features_batch` and :func:`feature_matrix` give the same
results bit for bit, vectorised across equal-length windows at a fraction of the cost.

Examples
--------
>>> import numpy as np
>>> t = np.arange(1750) / 1000
>>> wave = np.where(t < 0.25, 400.0, 395.0)
>>> transient_features(wave, 1000).kind
'open'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

#: Columns of :meth:`TransientFeatures.as_vector`, in order.
FEATURE_NAMES: tuple[str, ...] = ("step_kpa", "surge_kpa", "ring_hz", "decay_per_s", "rise_time_s")

#: Ringing is searched for between these frequencies: a/4L for 3-60 m of PEX (~1.3-25 Hz) up to
#: 1-2 m of copper (~160-325 Hz), below the 500 Hz Nyquist limit of a 1 kHz sensor.
RING_BAND_HZ = (1.5, 350.0)
#: Reported when the ringing dies out within one half period (no envelope to fit).
MAX_DECAY_PER_S = 60.0
_TAIL_S = 0.3  # the final level is the median of the window's last 0.3 s
_ONSET_GUARD_S = 0.02  # the baseline ignores the last 20 ms before the nominal onset


@dataclass(frozen=True)
class TransientFeatures:
    """Features of one transient window; see the module docstring for their meaning.

    Attributes
    ----------
    step_kpa : float
        Level after minus level before (negative for an open).
    kind : str
        ``"open"`` or ``"close"``, from the step's sign (from the surge's when the step is
        within the noise).
    baseline_kpa : float
        Median pressure before the onset.
    surge_kpa : float
        Peak excursion beyond the final level in the step's direction (signed).
    ring_hz : float
        Dominant ringing frequency after the peak (0.0 when none stands above the noise).
    decay_per_s : float
        Exponential decay rate of the ringing envelope.
    rise_time_s : float
        10 %-90 % time of the step.
    onset_s : float
        Detected onset, seconds from the window's first sample.
    noise_kpa : float
        Robust standard deviation of the pre-onset samples.
    """

    step_kpa: float
    kind: str
    baseline_kpa: float
    surge_kpa: float
    ring_hz: float
    decay_per_s: float
    rise_time_s: float
    onset_s: float
    noise_kpa: float

    def as_vector(self) -> np.ndarray:
        """The numeric features named by :data:`FEATURE_NAMES`, as a float64 vector."""
        return np.array([getattr(self, name) for name in FEATURE_NAMES], dtype=np.float64)


_FIELDS = tuple(TransientFeatures.__dataclass_fields__)


def _robust_sigma(x: np.ndarray) -> float:
    if x.size < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(np.diff(x) - np.median(np.diff(x)))) / np.sqrt(2))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or x.size < width:
        return x
    kernel = np.ones(width) / width
    return np.convolve(
        np.pad(x, (width // 2, width - 1 - width // 2), mode="edge"), kernel, "valid"
    )


def _onset_index(x: np.ndarray, pre: int, baseline: float, noise: float, rate: int) -> int:
    """First sample near the nominal onset that leaves the baseline by more than the noise."""
    start = max(0, pre - int(0.05 * rate))
    threshold = max(6.0 * noise, 0.05)
    smooth = _smooth(x, 3)
    away = np.nonzero(np.abs(smooth[start:] - baseline) > threshold)[0]
    return start + int(away[0]) if away.size else pre


def _n_fft(n: int) -> int:
    """FFT length for an ``n``-sample residual: zero padding to at least 8192 points keeps the
    bin spacing (0.12 Hz at 1 kHz) fine enough for the slow ringing of long PEX runs."""
    return max(8192, 1 << int(np.ceil(np.log2(n))))


@lru_cache(maxsize=8)
def _band(n_fft: int, rate: int) -> np.ndarray:
    """Indices of the ``n_fft``-point FFT bins inside :data:`RING_BAND_HZ` (a contiguous run)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    return np.nonzero((freqs >= RING_BAND_HZ[0]) & (freqs <= RING_BAND_HZ[1]))[0]


@lru_cache(maxsize=4096)
def _detrend_grid(n: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Centred time index, its squared norm and the Hann window for an ``n``-sample residual
    (cached: residual lengths repeat, and np.hanning costs as much as the detrending)."""
    t = np.arange(n) - (n - 1) / 2.0
    return t, float(t @ t), np.hanning(n)


def _windowed(residual: np.ndarray) -> np.ndarray:
    """``residual`` minus its least-squares line (closed form: np.polyfit costs more than the
    FFT), times a Hann window: the input of the ringing spectrum."""
    t, tt, window = _detrend_grid(residual.size)
    slope = float(t @ residual) / tt
    return (residual - residual.mean() - slope * t) * window


def _peak_hz(fourier: np.ndarray, band: np.ndarray, rate: int, n_fft: int) -> np.ndarray:
    """Per row of ``fourier`` (``n_fft``-point real FFTs), the frequency of the largest
    magnitude in ``band`` (a contiguous run of bins), refined by parabolic interpolation of the
    log magnitudes around it. Magnitudes are taken of the band and its two neighbours only."""
    size = fourier.shape[1]
    lo, hi = max(int(band[0]) - 1, 0), min(int(band[-1]) + 2, size)
    magnitude = np.abs(fourier[:, lo:hi])
    k = band[0] + np.argmax(magnitude[:, band[0] - lo : band[-1] + 1 - lo], axis=1)
    inner = (k > 0) & (k < size - 1)
    around = np.clip(k, lo + 1, hi - 2) - lo + np.arange(-1, 2)[:, None]
    a, b, c = np.log(np.take_along_axis(magnitude, around.T, axis=1) + 1e-12).T
    denom = a - 2 * b + c
    safe = np.where(denom != 0, denom, 1.0)
    shift = np.where(denom != 0, 0.5 * (a - c) / safe, 0.0)
    refined = (k + np.clip(shift, -0.5, 0.5)) * rate / n_fft
    return np.where(inner, refined, k * rate / n_fft)


def _ring(residual: np.ndarray, rate: int) -> float:
    """Dominant frequency of ``residual`` in :data:`RING_BAND_HZ` (Hann window, zero padding to
    at least 8192 points, parabolic peak interpolation), or 0.0 when the segment is too short."""
    n = residual.size
    if n < 16:
        return 0.0
    n_fft = _n_fft(n)
    band = _band(n_fft, rate)
    if band.size < 3:
        return 0.0
    fourier = np.fft.rfft(_windowed(residual), n_fft)
    return float(_peak_hz(fourier[None, :], band, rate, n_fft)[0])


def _decay(residual: np.ndarray, ring_hz: float, rate: int, noise: float) -> float:
    """Envelope decay rate: a log-linear fit to the peak |residual| of each half period."""
    if ring_hz <= 0:
        return MAX_DECAY_PER_S
    half = max(2, round(rate / (2 * ring_hz)))
    n_chunks = residual.size // half
    if n_chunks < 2:
        return MAX_DECAY_PER_S
    peaks = np.abs(residual[: n_chunks * half]).reshape(n_chunks, half).max(axis=1)
    usable = peaks > 4.0 * max(noise, 1e-3)
    # keep the leading run of chunks above the noise floor: after that the envelope is noise
    stop = int(np.argmin(usable)) if not usable.all() else n_chunks
    if stop < 2:
        return MAX_DECAY_PER_S
    t, tt = _decay_grid(stop, half, rate)
    slope = float(t @ np.log(peaks[:stop])) / tt
    return float(np.clip(-slope, 0.0, MAX_DECAY_PER_S))


@lru_cache(maxsize=4096)
def _decay_grid(n_chunks: int, half: int, rate: int) -> tuple[np.ndarray, float]:
    """Centred mid-chunk times of ``n_chunks`` half periods and their squared norm (cached: the
    same few ringing frequencies recur across a home's windows)."""
    t = (np.arange(n_chunks) + 0.5) * half / rate
    t = t - t.mean()
    return t, float(t @ t)


def _rise_time(smooth: np.ndarray, onset: int, baseline: float, step: float, rate: int) -> float:
    """Time from the 10 % to the 90 % crossing of the step (0.0 when the step is in the noise)."""
    if step == 0:
        return 0.0
    progress = (smooth[onset:] - baseline) / step
    above10 = np.nonzero(progress >= 0.1)[0]
    above90 = np.nonzero(progress >= 0.9)[0]
    if not above10.size or not above90.size:
        return 0.0
    return float(max(0, int(above90[0]) - int(above10[0])) / rate)


def _checked_rate(sample_rate_hz: int) -> int:
    rate = int(sample_rate_hz)
    if rate <= 0:
        raise ValueError(f"sample_rate_hz={sample_rate_hz} should be > 0.")
    return rate


def _checked_window(samples: ArrayLike, rate: int, pre_s: float, name: str) -> np.ndarray:
    """``samples`` as a flat float64 array, refused (naming it ``name``) when too short for a
    baseline, an onset and a tail, or not finite."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    pre = round(pre_s * rate)
    tail = round(_TAIL_S * rate)
    if pre < 4 or x.size < pre + tail + 16:
        raise ValueError(
            f"{name} has {x.size} samples at {rate} Hz; need at least {pre_s} s before the onset "
            f"(pre_s={pre_s}) and {_TAIL_S + 0.016:.3f} s after it."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: samples contain NaN or infinity.")
    return x


def transient_features(
    samples: np.ndarray, sample_rate_hz: int, pre_s: float = 0.25
) -> TransientFeatures:
    """Features of one window whose transient starts about ``pre_s`` seconds in.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        Pressures in kPa.
    sample_rate_hz : int
        Samples per second.
    pre_s : float, default=0.25
        Nominal onset: seconds of quiet baseline at the start of the window.

    Returns
    -------
    TransientFeatures
    """
    rate = _checked_rate(sample_rate_hz)
    x = _checked_window(samples, rate, pre_s, "samples")
    pre = round(pre_s * rate)
    tail = round(_TAIL_S * rate)
    quiet = x[: max(4, pre - int(_ONSET_GUARD_S * rate))]
    baseline = float(np.median(quiet))
    noise = _robust_sigma(quiet)
    final = float(np.median(x[-tail:]))
    onset = _onset_index(x, pre, baseline, noise, rate)
    post = x[onset:]
    step = final - baseline

    if abs(step) > 3.0 * noise:
        kind = "close" if step > 0 else "open"
    else:  # no clear step: a close spikes up, an open dips down
        hi, lo = float(post.max() - final), float(final - post.min())
        kind = "close" if hi >= lo else "open"
    sign = 1.0 if kind == "close" else -1.0

    excess = sign * (post - final)
    peak = int(np.argmax(excess))
    surge = sign * max(0.0, float(excess[peak]))

    residual = post[peak:] - final
    ring_hz = _ring(residual, rate)
    decay = _decay(residual, ring_hz, rate, noise)
    rise = _rise_time(_smooth(x, 5), onset, baseline, step if abs(step) > 3 * noise else 0, rate)
    return TransientFeatures(
        step_kpa=step,
        kind=kind,
        baseline_kpa=baseline,
        surge_kpa=surge,
        ring_hz=ring_hz,
        decay_per_s=decay,
        rise_time_s=rise,
        onset_s=onset / rate,
        noise_kpa=noise,
    )


# ---------------------------------------------------------------------------------- batches
#: Rows per vectorised pass: enough to amortise numpy's per-call cost, few enough that the
#: (rows x n_samples) work arrays stay in the CPU caches.
_BATCH_ROWS = 64
#: Fewer equal-length windows than this go through :func:`transient_features` one by one: a
#: vectorised pass costs ~100 numpy calls however few its rows (measured crossover ~8).
_MIN_ROWS = 8
_NUMERIC = tuple(name for name in _FIELDS if name != "kind")


def transient_features_batch(
    windows: Sequence[ArrayLike] | np.ndarray, sample_rate_hz: int, pre_s: float = 0.25
) -> list[TransientFeatures]:
    """:func:`transient_features` of every window, computed in vectorised batches.

    The results are identical, bit for bit (tested on simulated and edge-case windows), at
    a fraction of the cost on many windows: windows of equal length are stacked, and the
    medians, smoothing, onset and peak searches, rise times, ringing spectra (one FFT call per
    batch) and envelope peaks run across rows. What stays per window is what cannot be
    vectorised without changing the last bits: the means and BLAS dot products of the
    detrending and decay fits (their summation orders depend on each window's length).

    Parameters
    ----------
    windows : sequence of array-like of shape (n_samples,), or ndarray (n_windows, n_samples)
        Pressures in kPa; lengths may differ.
    sample_rate_hz : int
        Samples per second of every window.
    pre_s : float, default=0.25
        Nominal onset: seconds of quiet baseline at the start of each window.

    Returns
    -------
    list of TransientFeatures
        In the order of ``windows``.
    """
    cols = _batch_columns(windows, sample_rate_hz, pre_s)
    kinds = np.where(cols["close"], "close", "open").tolist()
    fields = [kinds if name == "kind" else cols[name].tolist() for name in _FIELDS]
    return [TransientFeatures(*values) for values in zip(*fields, strict=True)]


def feature_matrix(
    windows: Sequence[ArrayLike] | np.ndarray, sample_rate_hz: int, pre_s: float = 0.25
) -> np.ndarray:
    """The :data:`FEATURE_NAMES` columns of :func:`transient_features_batch`, shape
    (n_windows, len(FEATURE_NAMES)), without building one object per window. A 2-D array of
    equal-length windows is used as it is (the codebook's path)."""
    cols = _batch_columns(windows, sample_rate_hz, pre_s)
    return np.column_stack([cols[name] for name in FEATURE_NAMES]).reshape(
        len(cols["close"]), len(FEATURE_NAMES)
    )


def _batch_columns(
    windows: Sequence[ArrayLike] | np.ndarray, sample_rate_hz: int, pre_s: float
) -> dict[str, np.ndarray]:
    """Every feature of every window, one array per field (``close`` stands for ``kind``)."""
    rate = _checked_rate(sample_rate_hz)
    groups: dict[int, list[int]] = {}
    if isinstance(windows, np.ndarray) and windows.ndim == 2:
        xs: Sequence[np.ndarray] = np.asarray(windows, dtype=np.float64)
        if len(xs):
            groups[xs.shape[1]] = list(range(len(xs)))
    else:
        xs = [np.asarray(w, dtype=np.float64).ravel() for w in windows]
        for i, x in enumerate(xs):
            groups.setdefault(x.size, []).append(i)
    out = {name: np.zeros(len(xs)) for name in _NUMERIC}
    out["close"] = np.zeros(len(xs), dtype=bool)
    for members in groups.values():
        if len(members) < _MIN_ROWS:
            _one_by_one(out, xs, members, rate, pre_s)
            continue
        block = xs if isinstance(xs, np.ndarray) else np.stack([xs[i] for i in members])
        _check_block(block, rate, pre_s, members)
        for start in range(0, len(members), _BATCH_ROWS):
            rows = members[start : start + _BATCH_ROWS]
            columns = _rows_features(block[start : start + len(rows)], rate, pre_s)
            for name, values in columns.items():
                out[name][rows] = values
    return out


def _one_by_one(
    out: dict[str, np.ndarray],
    xs: Sequence[np.ndarray],
    members: list[int],
    rate: int,
    pre_s: float,
) -> None:
    """Fill ``out`` for windows ``members`` with :func:`transient_features`, window by window."""
    for i in members:
        one = transient_features(_checked_window(xs[i], rate, pre_s, f"windows[{i}]"), rate, pre_s)
        for name in _NUMERIC:
            out[name][i] = getattr(one, name)
        out["close"][i] = one.kind == "close"


def _check_block(block: np.ndarray, rate: int, pre_s: float, members: Sequence[int]) -> None:
    """Refuse equal-length windows as :func:`transient_features` would, naming ``windows[i]``:
    the first row shows a length problem, the first non-finite row the other one."""
    not_finite = np.nonzero(~np.isfinite(block).all(axis=1))[0]
    for row in (0, *not_finite[:1].tolist()):
        _checked_window(block[row], rate, pre_s, f"windows[{members[row]}]")


def _rows_features(x: np.ndarray, rate: int, pre_s: float) -> dict[str, np.ndarray]:
    """:func:`transient_features` of each row of ``x`` (equal-length windows), as columns.

    Each step repeats the per-window code's floating-point operations in the same order;
    "from the onset on" and "from the peak on" become column masks instead of slices.
    """
    m, n = x.shape
    rows = np.arange(m)
    pre = round(pre_s * rate)
    tail = round(_TAIL_S * rate)
    quiet = x[:, : max(4, pre - int(_ONSET_GUARD_S * rate))]
    baseline = np.median(quiet, axis=1)
    diffs = np.diff(quiet, axis=1)
    spread = np.median(np.abs(diffs - np.median(diffs, axis=1, keepdims=True)), axis=1)
    noise = 1.4826 * spread / np.sqrt(2)
    final = np.median(x[:, -tail:], axis=1)

    # onset: the first sample from 50 ms before the nominal onset that leaves the baseline;
    # every later step only looks at columns from `first` on
    first = max(0, pre - int(0.05 * rate))
    threshold = np.maximum(6.0 * noise, 0.05)
    away = np.abs(_smooth_rows(x, 3, first) - baseline[:, None]) > threshold[:, None]
    hit = np.argmax(away, axis=1)
    onset = np.where(away[rows, hit], first + hit, pre)
    late = x[:, first:]
    post = np.arange(first, n) >= onset[:, None]

    step = final - baseline
    clear = np.abs(step) > 3.0 * noise
    hi = np.where(post, late, -np.inf).max(axis=1) - final
    lo = final - np.where(post, late, np.inf).min(axis=1)
    close = np.where(clear, step > 0, hi >= lo)
    sign = np.where(close, 1.0, -1.0)
    excess = np.where(post, sign[:, None] * (late - final[:, None]), -np.inf)
    peak = np.argmax(excess, axis=1)
    top = excess[rows, peak]
    surge = sign * np.where(top > 0.0, top, 0.0)
    peak += first  # column in x where the residual (post[peak:] - final) starts

    ring = _ring_rows(x, peak, final, rate)
    decay = _decay_rows(x, peak, final, ring, noise, rate)
    moving = np.where(clear, step, 0.0)
    rise = _rise_rows(_smooth_rows(x, 5, first), onset - first, baseline, moving, rate)
    return {
        "step_kpa": step,
        "close": close,
        "baseline_kpa": baseline,
        "surge_kpa": surge,
        "ring_hz": ring,
        "decay_per_s": decay,
        "rise_time_s": rise,
        "onset_s": onset / rate,
        "noise_kpa": noise,
    }


def _smooth_rows(x: np.ndarray, width: int, start: int) -> np.ndarray:
    """Columns ``start:`` of :func:`_smooth` of each row: the same edge padding and the same sum
    order as ``np.convolve`` with a flat kernel (first tap first), without padding copies."""
    m, n = x.shape
    if width <= 1 or n < width:
        return x[:, start:]
    left = width // 2
    tap = (np.ones(width) / width)[0]
    out = np.empty((m, n - start))
    lo, hi = max(start, left), n - (width - 1 - left)  # columns whose taps all fall inside x
    if hi > lo:
        inner = out[:, lo - start : hi - start]
        np.multiply(x[:, lo - left : hi - left], tap, out=inner)
        scratch = np.empty_like(inner)
        for j in range(1, width):
            inner += np.multiply(x[:, lo - left + j : hi - left + j], tap, out=scratch)
    for c in [*range(start, lo), *range(max(hi, start), n)]:  # edges: end samples repeated
        taps = np.clip(np.arange(c - left, c - left + width), 0, n - 1)
        column = x[:, taps[0]] * tap
        for j in taps[1:]:
            column = column + x[:, j] * tap
        out[:, c - start] = column
    return out


def _ring_rows(x: np.ndarray, peak: np.ndarray, final: np.ndarray, rate: int) -> np.ndarray:
    """:func:`_ring` of each row's residual ``x[i, peak[i]:] - final[i]``; one FFT call per
    group of equal FFT length."""
    m, n = x.shape
    ring = np.zeros(m)
    lengths = n - peak
    n_ffts = np.array([_n_fft(size) if size >= 16 else 0 for size in lengths.tolist()])
    for n_fft in np.unique(n_ffts[n_ffts > 0]).tolist():
        band = _band(n_fft, rate)
        if band.size < 3:
            continue
        members = np.nonzero(n_ffts == n_fft)[0]
        sizes = lengths[members]
        width = int(sizes.max())
        # each residual moved to the start of its FFT row (one contiguous copy per row); what
        # follows it in the row is multiplied by a zero window below
        flat = np.concatenate([x[members].ravel(), np.zeros(width)])
        padded = np.zeros((len(members), n_fft))
        head = padded[:, :width]
        starts = np.arange(len(members)) * n + peak[members]
        head[:] = np.lib.stride_tricks.sliding_window_view(flat, width)[starts]
        head -= final[members, None]
        means = np.empty(len(members))
        slopes = np.empty(len(members))
        window = np.zeros(head.shape)
        for row, size in enumerate(sizes.tolist()):
            t, tt, hann = _detrend_grid(size)
            values = head[row, :size]
            means[row] = np.add.reduce(values) / size  # what values.mean() computes
            slopes[row] = float(t @ values) / tt
            window[row, :size] = hann
        head -= means[:, None]
        head -= slopes[:, None] * (np.arange(width) - (sizes[:, None] - 1) / 2.0)
        head *= window
        ring[members] = _peak_hz(np.fft.rfft(padded, axis=1), band, rate, n_fft)
    return ring


def _decay_rows(
    x: np.ndarray,
    peak: np.ndarray,
    final: np.ndarray,
    ring: np.ndarray,
    noise: np.ndarray,
    rate: int,
) -> np.ndarray:
    """:func:`_decay` of each row's residual ``x[i, peak[i]:] - final[i]``: the half-period
    peaks of all rows come from one ``np.maximum.reduceat``; only the fit's dot is per row."""
    m, n = x.shape
    decay = np.full(m, MAX_DECAY_PER_S)
    ringing = ring > 0
    half = np.maximum(2, np.rint(rate / (2 * np.where(ringing, ring, 1.0)))).astype(np.intp)
    counts = (n - peak) // half
    rows = np.nonzero(ringing & (counts >= 2))[0]
    if not rows.size:
        return decay
    half, counts, start = half[rows], counts[rows], peak[rows] + np.arange(rows.size) * n
    # per row: the start of each half period, then the end of the last (its segment unused)
    per_row = counts + 1
    owner = np.repeat(np.arange(rows.size), per_row)
    within = np.arange(per_row.sum()) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    edges = start[owner] + within * half[owner]
    magnitude = np.append(np.abs(x[rows] - final[rows, None]).ravel(), 0.0)
    is_chunk = within < counts[owner]
    peaks = np.maximum.reduceat(magnitude, edges)[is_chunk]
    owner, within = owner[is_chunk], within[is_chunk]
    usable = peaks > 4.0 * np.maximum(noise[rows], 1e-3)[owner]
    # the leading run of chunks above the noise floor, as in _decay
    first_chunk = np.cumsum(counts) - counts
    stops = np.minimum.reduceat(np.where(usable, counts[owner], within), first_chunk)
    logs = np.log(np.where(usable, peaks, 1.0))
    slopes = np.zeros(rows.size)
    fitted = stops >= 2
    for i in np.nonzero(fitted)[0].tolist():
        t, tt = _decay_grid(int(stops[i]), int(half[i]), rate)
        slopes[i] = float(t @ logs[first_chunk[i] : first_chunk[i] + stops[i]]) / tt
    decay[rows[fitted]] = np.clip(-slopes[fitted], 0.0, MAX_DECAY_PER_S)
    return decay


def _rise_rows(
    smooth: np.ndarray, onset: np.ndarray, baseline: np.ndarray, step: np.ndarray, rate: int
) -> np.ndarray:
    """:func:`_rise_time` of each row (0.0 where ``step`` is 0); ``smooth`` may start at any
    column, ``onset`` counting from that column."""
    rows = np.arange(len(step))
    moving = step != 0
    progress = (smooth - baseline[:, None]) / np.where(moving, step, 1.0)[:, None]
    post = np.arange(smooth.shape[1]) >= onset[:, None]
    above10 = post & (progress >= 0.1)
    above90 = post & (progress >= 0.9)
    i10 = np.argmax(above10, axis=1)
    i90 = np.argmax(above90, axis=1)
    found = moving & above10[rows, i10] & above90[rows, i90]
    return np.where(found, np.maximum(0, i90 - i10) / rate, 0.0)
