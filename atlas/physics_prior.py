"""What the installer's home spec predicts about each valve's transients, before any label.

WHY: a home gives a few dozen labels, but its spec already says, for every valve, the material
and length of the pipe run to each sensor. The ringing that follows a valve's closure is the
quarter-wave mode of that run, ``f = a / 4L`` (Wylie & Streeter, "Fluid Transients"; the
simulator's model in docs/simulator.md, 'Pressure model'), so two sinks on the same line with
runs of 5 m and 8.6 m of copper ring at ~65 Hz and ~38 Hz: separable with zero labels, where a
classifier that must learn it from 2-3 labels per valve confuses them. Real plumbing deviates
from the spec (actual wave speed, actual length: a few percent), and the ring estimate of a weak
or slow transient is sometimes noise, so the likelihood is tolerant: a log-normal around the
spec's frequency mixed with a flat outlier component.

Closures that take much longer than the wave's round trip (toilet float valves, seconds) make
almost no hammer, so their closing ring carries no information; such a valve gets the flat
density there instead of a peak. Missing rings (``ring_hz == 0``) and transients on a line the
valve does not draw from add nothing (the classifier's line mask handles lines).

:func:`ring_log_likelihood` returns one row per use and one column per valve (the hierarchy's
order), normalized per row so the best valve has 0: a matrix the classifier multiplies into its
probabilities like the rule evidence (:class:`atlas.classifier.HierarchicalClassifier`,
``physics_columns``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from atlas.domain import ClosureKind, Line, PipeMaterial, Valve
from atlas.transient import RING_BAND_HZ

#: Pressure-wave speed (m/s) by material, the middle of the ranges in Wylie & Streeter, "Fluid
#: Transients", table 2.1: copper 1200-1400, CPVC 450-600, PEX 270-350.
WAVE_SPEED_M_S: dict[PipeMaterial, float] = {
    PipeMaterial.COPPER: 1300.0,
    PipeMaterial.CPVC: 550.0,
    PipeMaterial.PEX: 300.0,
}
#: Sound is ~3% faster in hot water (1482 m/s at 20 C vs ~1530 at 50-60 C in free water).
HOT_SPEED_FACTOR = 1.03
#: Closures slower than this many wave round trips make too little hammer to ring visibly.
MAX_ROUND_TRIPS = 100.0
#: Log-density of the flat outlier component over the ringing band.
_LOG_FLAT = -float(np.log(np.log(RING_BAND_HZ[1] / RING_BAND_HZ[0])))
ACTIONS: tuple[str, ...] = ("open", "close")


def expected_ring_hz(valve: Valve, line: Line | str) -> float | None:
    """Quarter-wave frequency of ``valve``'s run on ``line`` (None: no run on that line)."""
    run = valve.runs.get(Line(line))
    if run is None:
        return None
    speed = WAVE_SPEED_M_S[PipeMaterial(run.material)]
    if Line(line) == Line.HOT:
        speed *= HOT_SPEED_FACTOR
    return speed / (4.0 * run.length_m)


def rings_visibly(valve: Valve, line: Line | str) -> bool:
    """Whether closing ``valve`` makes a hammer large enough to ring (closure vs round trip)."""
    run = valve.runs.get(Line(line))
    if run is None:
        return False
    if valve.closure.kind == ClosureKind.FLOAT:
        return False
    round_trip = 2.0 * run.length_m / WAVE_SPEED_M_S[PipeMaterial(run.material)]
    return valve.closure.time_s <= MAX_ROUND_TRIPS * round_trip


def ring_log_likelihood(
    rings: np.ndarray,
    valves: Sequence[Valve],
    *,
    sigma: float = 0.07,
    outlier: Mapping[str, float] | None = None,
    centres: np.ndarray | None = None,
) -> np.ndarray:
    """Log-likelihood of each use's observed ringing under each valve, max-normalized per row.

    Parameters
    ----------
    rings : ndarray of shape (n_uses, 2, 2)
        Observed ``ring_hz`` per use, line (hot, cold) and action (open, close); 0 = none.
    valves : sequence of Valve
        The home's valves, in the column order wanted (the hierarchy's).
    sigma : float, default=0.07
        Standard deviation of ``log(observed / expected)``: the spec's deviation from the real
        run (~4%: wave speed and length a few percent each) plus the estimate's own spread.
    outlier : mapping of action to float, default={"open": 0.5, "close": 0.2}
        Share of rings that are noise, per action: an opening's rarefaction dip is small and
        slow, so its ring estimate is noise more often than a closure's.
    centres : ndarray of shape (n_valves, 2, 2), default=None
        Log-frequencies to use instead of the spec's (NaN: the spec's), e.g. refined from data.

    Returns
    -------
    ndarray of shape (n_uses, n_valves)
        ``<= 0``; a row without any observed ring is all zeros (no information).
    """
    if sigma <= 0:
        raise ValueError(f"sigma={sigma} should be > 0.")
    eps = {"open": 0.5, "close": 0.2} if outlier is None else dict(outlier)
    for action in ACTIONS:
        if not 0 <= eps.get(action, -1) < 1:
            raise ValueError(f"outlier[{action!r}]={eps.get(action)!r} should be in [0, 1).")
    rings = np.asarray(rings, dtype=float)
    if rings.ndim != 3 or rings.shape[1:] != (2, 2):
        raise ValueError(f"rings has shape {rings.shape}; expected (n_uses, 2, 2).")
    spec_centres = spec_log_centres(valves)
    mu = spec_centres if centres is None else np.where(np.isnan(centres), spec_centres, centres)
    out = np.zeros((rings.shape[0], len(valves)))
    log_norm = np.log(sigma * np.sqrt(2 * np.pi))
    for li, line in enumerate((Line.HOT, Line.COLD)):
        for ai, action in enumerate(ACTIONS):
            r = rings[:, li, ai]
            seen = r > 0
            if not seen.any():
                continue
            # all valves at once (a loop over them was most of a provisional classification's
            # physics time); the line mask decides for valves without this line or ring
            cols = [
                c
                for c, valve in enumerate(valves)
                if line in valve.lines and not np.isnan(mu[c, li, ai])
            ]
            if not cols:
                continue
            log_r = np.log(np.where(seen, r, 1.0))[seen]
            z = (log_r[:, None] - mu[cols, li, ai][None, :]) / sigma
            peak = -0.5 * z**2 - log_norm
            ll = np.logaddexp(np.log1p(-eps[action]) + peak, np.log(eps[action]) + _LOG_FLAT)
            if action == "close":
                flat = [k for k, c in enumerate(cols) if not rings_visibly(valves[c], line)]
                ll[:, flat] = _LOG_FLAT
            out[np.ix_(np.flatnonzero(seen), cols)] += ll
    return out - out.max(axis=1, keepdims=True)


def spec_log_centres(valves: Sequence[Valve]) -> np.ndarray:
    """``log(expected_ring_hz)`` per valve, line (hot, cold) and action; NaN without a run."""
    mu = np.full((len(valves), 2, 2), np.nan)
    for col, valve in enumerate(valves):
        for li, line in enumerate((Line.HOT, Line.COLD)):
            f = expected_ring_hz(valve, line)
            if f is not None:
                mu[col, li, :] = np.log(f)
    return mu
