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

Examples
--------
>>> import numpy as np
>>> t = np.arange(1750) / 1000
>>> wave = np.where(t < 0.25, 400.0, 395.0)
>>> transient_features(wave, 1000).kind
'open'
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from functools import lru_cache

import numpy as np

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
        values = dict(zip(_FIELDS, astuple(self), strict=True))
        return np.array([values[name] for name in FEATURE_NAMES], dtype=np.float64)


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


def _detrend(x: np.ndarray) -> np.ndarray:
    """``x`` minus its least-squares line (closed form: np.polyfit costs more than the FFT)."""
    n = x.size
    t = np.arange(n) - (n - 1) / 2.0
    slope = float(t @ x) / float(t @ t)
    return x - x.mean() - slope * t


@lru_cache(maxsize=32)
def _spectrum_grid(n: int, n_fft: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Hann window of length ``n`` and the indices of the FFT bins inside the ringing band."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    band = np.nonzero((freqs >= RING_BAND_HZ[0]) & (freqs <= RING_BAND_HZ[1]))[0]
    return np.hanning(n), band


def _ring(residual: np.ndarray, rate: int) -> float:
    """Dominant frequency of ``residual`` in :data:`RING_BAND_HZ` (Hann window, zero padding to
    at least 8192 points, parabolic peak interpolation), or 0.0 when the segment is too short."""
    n = residual.size
    if n < 16:
        return 0.0
    n_fft = max(8192, 1 << int(np.ceil(np.log2(n))))
    window, band = _spectrum_grid(n, n_fft, rate)
    if band.size < 3:
        return 0.0
    spectrum = np.abs(np.fft.rfft(_detrend(residual) * window, n_fft))
    k = int(band[np.argmax(spectrum[band])])
    if 0 < k < spectrum.size - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
        return float((k + np.clip(shift, -0.5, 0.5)) * rate / n_fft)
    return float(k * rate / n_fft)


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
    t = (np.arange(stop) + 0.5) * half / rate
    t = t - t.mean()
    slope = float(t @ np.log(peaks[:stop])) / float(t @ t)
    return float(np.clip(-slope, 0.0, MAX_DECAY_PER_S))


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
    x = np.asarray(samples, dtype=np.float64).ravel()
    rate = int(sample_rate_hz)
    if rate <= 0:
        raise ValueError(f"sample_rate_hz={sample_rate_hz} should be > 0.")
    pre = round(pre_s * rate)
    tail = round(_TAIL_S * rate)
    if pre < 4 or x.size < pre + tail + 16:
        raise ValueError(
            f"samples has {x.size} samples at {rate} Hz; need at least {pre_s} s before the onset "
            f"(pre_s={pre_s}) and {_TAIL_S + 0.016:.3f} s after it."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinity.")

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
