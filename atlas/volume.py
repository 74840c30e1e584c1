"""Litres per water use from the steady pressure drop while the water ran (pure numpy).

WHY: people install pressure-wave sensing to see where their water goes. Classification says
*which* fixture ran; this module says *how much* water it drew, so a week can be summed per
category and per fixture, and leaks (:mod:`atlas.alerts`) can be weighed in litres.

The physics (HydroSense, Froehlich et al. 2011: the pressure drop at a sensor grows with the
flow through the pipes it shares with the valve). Household flows are turbulent, so the loss
through each shared resistance is quadratic (Darcy-Weisbach, orifice losses):

    drop_line = main_k * (Q_hot + Q_cold)^2            the service path: meter, main, PRV
              + heater_k * Q_hot^2       (hot line)    the water heater
              + sum over running valves of branch_k(valve, line) * q(valve, line)^2

so a use's flow is ``Q = sqrt(drop / k)`` when it runs alone. Two things make a real home harder
and are handled here:

* **Overlap.** The service path is shared by every running valve, on both lines. A faucet opened
  while a toilet refills drops the pressure by ``main_k * ((T + q)^2 - T^2)``, about twice what
  it would alone. Each use's flow is therefore solved jointly with the flows of the uses running
  at its open and at its close (:func:`estimate_volumes`, a few damped sweeps).
* **Mixing valves.** A use seen on both lines has two drops for two unknowns (hot and cold
  flow); both share the main term, so the pair of equations is solved by bisection on the
  total flow.

Litres are the flow times the duration the pairing measured (open onset to close onset), plus
the valve's ramps: flow rises over the opening and falls over the closing, and a toilet float
closes over seconds (``ramp_s``).

Calibration. Before any measurement the resistances come from the home spec
(:func:`default_flow_model`): a typical service path (with or without a pressure-reducing
valve), a typical heater, and each valve's branch from Darcy-Weisbach on the spec's pipe run.
Every resistance carries a multiplicative uncertainty; each use's litres carry the uncertainty
that implies. An installer tightens them with one measurement:

* :func:`calibrate_known_volume`: a known volume at one fixture (fill a 5-litre bucket at the
  kitchen tap). The error is shared between the home's service path (which every fixture feels),
  an error all branches share (the spec's assumptions) and that fixture's own branch, in
  proportion to their prior uncertainties (a Gaussian update in log space), so a spec that is
  off throughout is corrected while one fixture's quirk does not skew the whole home.
* :func:`calibrate_meter`: a water-meter total over a period: every fixture contributed, so the
  whole model is scaled.

Nothing here does I/O or imports the service: frozen dataclasses and numbers in and out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from atlas.domain import ClosureKind, Line, Valve
from atlas.homespec import HomeSpec
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse

HOT, COLD = str(Line.HOT), str(Line.COLD)

#: Service path (meter, main, pressure-reducing valve with its droop), kPa per (L/min)^2:
#: about 40 kPa at 40 L/min behind a PRV, 25 kPa without one (typical residential figures).
MAIN_K_WITH_PRV = 0.025
MAIN_K_WITHOUT_PRV = 0.016
#: A storage heater's inlet, dip tube and outlet: about 10 kPa at 20 L/min.
HEATER_K = 0.025
#: Turbulent Darcy friction factor in 1/2"-3/4" pipe at household velocities (Moody chart).
DARCY_FRICTION = 0.03
#: Share of a valve's pipe run that the sensor also has in its path (unknown per valve; the
#: middle of the plausible 0.2-0.6 when the sensor sits on the trunk near the heater).
SHARED_FRACTION = 0.4
WATER_DENSITY = 998.0

#: Prior multiplicative (log-normal) uncertainties of the resistances before calibration: the
#: service path varies between homes; every branch shares the error of the spec's pipe data and
#: of the assumed shared fraction and friction (a factor ~1.6); each branch has its own on top.
#: Their ratio decides how far one fixture's measurement moves the rest of the home (set on
#: simulated seeds 101-110, docs/usage.md).
MAIN_SIGMA = 0.3
BRANCH_SIGMA = 0.3
COMMON_SIGMA = 0.5
#: Reading a steady level from a window: about this many kPa of noise (drift, ringing).
DROP_NOISE_KPA = 0.1
#: Timing of an open or close onset, seconds.
DURATION_NOISE_S = 0.5

#: How long a valve of each kind takes to open, relative to its closing time: pilot solenoids
#: open slower than they snap shut, a flush drops the float at once (docs/usage.md).
OPENING_OVER_CLOSING: dict[ClosureKind, float] = {
    ClosureKind.SOLENOID: 2.0,
    ClosureKind.MANUAL: 1.2,
    ClosureKind.FLOAT: 0.25,
}
#: Ramp of a use whose valve is not known (a faucet's).
DEFAULT_RAMP_S = 0.15
#: A valve closing slower than this outlasts the 1.5 s an event window runs after the onset
#: (contracts: 0.25 s before, 1.5 s after); so does its steady level.
SLOW_CLOSE_S = 1.0
#: An open transient's own step is clean when no other event starts this soon after it.
OPEN_WINDOW_S = 1.5

_MIN_K = 1e-6
_SWEEPS = 20
_BISECTIONS = 60


@dataclass(frozen=True)
class FlowModel:
    """The resistances of one home and how sure we are of them.

    Attributes
    ----------
    main_k : float
        Service path, kPa per (L/min)^2 of the total flow (both lines).
    heater_k : float
        Water heater, kPa per (L/min)^2 of the hot flow (felt on the hot line only).
    branch_k : dict of (valve id, line) to float
        The part of each valve's branch the line's sensor shares.
    ramp_s : dict of valve id to float
        Seconds to add to a use's measured duration for its opening and closing ramps.
    main_sigma : float
        Log-space standard deviation of ``main_k`` and ``heater_k`` (one home-wide factor).
    branch_sigma : dict of (valve id, line) to float
        Log-space standard deviation of each branch resistance's own error.
    common_sigma : float
        Log-space standard deviation of an error every branch shares (the spec's pipe data and
        the Darcy-Weisbach assumptions are off in the same direction for the whole home).
    source : str
        ``"spec"`` (defaults), ``"fixture:<valve ids>"`` or ``"meter"``: the last calibration.
    slow_close : frozenset of str
        Valves that close slower than an event window lasts (toilet floats): their uses are
        sized by the open transient when it is clear of other events.
    """

    main_k: float
    heater_k: float
    branch_k: dict[tuple[str, str], float] = field(default_factory=dict)
    ramp_s: dict[str, float] = field(default_factory=dict)
    main_sigma: float = MAIN_SIGMA
    branch_sigma: dict[tuple[str, str], float] = field(default_factory=dict)
    common_sigma: float = COMMON_SIGMA
    source: str = "spec"
    slow_close: frozenset[str] = frozenset()

    def branch(self, valve_id: str | None, line: str) -> float:
        """Branch resistance of ``valve_id`` on ``line``; the median of the line's valves when
        the valve is unknown (or never draws from that line)."""
        k = self.branch_k.get((valve_id, line)) if valve_id is not None else None
        if k is not None:
            return k
        same_line = [v for (_, ln), v in self.branch_k.items() if ln == line]
        return float(np.median(same_line)) if same_line else 0.05

    def sigma(self, valve_id: str | None, line: str) -> float:
        return self.branch_sigma.get((valve_id, line), BRANCH_SIGMA) if valve_id else BRANCH_SIGMA

    def scaled(self, factor: float, source: str) -> FlowModel:
        """Every resistance times ``factor`` (flows then scale by ``factor ** -0.5``)."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor={factor} should be finite and > 0.")
        return replace(
            self,
            main_k=self.main_k * factor,
            heater_k=self.heater_k * factor,
            branch_k={key: k * factor for key, k in self.branch_k.items()},
            source=source,
        )


def branch_loss_k(length_m: float, diameter_mm: float, shared_fraction: float) -> float:
    """Darcy-Weisbach coefficient (kPa per (L/min)^2) of ``shared_fraction`` of a pipe run:
    ``dp = f (L / D) rho v^2 / 2`` with ``v = Q / A``.

    The simulator has the same formula (``simulator.physics.branch_loss_k``) and is not called
    here on purpose: it is the ground truth ``atlas bench usage`` measures this estimator
    against, and the core does not depend on the simulator."""
    area = math.pi * (diameter_mm / 1000.0) ** 2 / 4.0
    v_per_lpm = (1.0 / 60_000.0) / area
    d = diameter_mm / 1000.0
    return DARCY_FRICTION * (shared_fraction * length_m / d) * WATER_DENSITY * v_per_lpm**2 / 2000.0


def ramp_seconds(valve: Valve) -> float:
    """Full-flow seconds a use gains over its measured duration from its ramps.

    Flow rises as ``1 - (1 - x)^2`` while a valve opens and falls as ``1 - x^2`` while it
    closes (quick-opening valves throttle only when nearly shut), so each ramp passes two
    thirds of full flow: ``(2 * closing - opening) / 3``. Matters for toilet floats (~1.5 s of
    a ~40 s refill), not for taps.
    """
    closing = valve.closure.time_s
    opening = closing * OPENING_OVER_CLOSING.get(valve.closure.kind, 1.0)
    return (2.0 * closing - opening) / 3.0


def default_flow_model(spec: HomeSpec, shared_fraction: float = SHARED_FRACTION) -> FlowModel:
    """The resistances a home spec implies, before any calibration (see the module docstring).

    The static pressure does not enter: with quadratic losses the drop depends on the flow, not
    on the pressure behind it; what the spec tells is whether a PRV sits in the service path
    and, per valve, the length and bore of its run.
    """
    if not 0 < shared_fraction <= 1:
        raise ValueError(f"shared_fraction={shared_fraction} should be in (0, 1].")
    branch: dict[tuple[str, str], float] = {}
    ramp: dict[str, float] = {}
    for valve in spec.valves:
        ramp[valve.id] = ramp_seconds(valve)
        for line, run in valve.runs.items():
            branch[(valve.id, str(line))] = branch_loss_k(
                run.length_m, run.diameter_mm, shared_fraction
            )
    main = MAIN_K_WITH_PRV if spec.model.has_prv else MAIN_K_WITHOUT_PRV
    slow = frozenset(v.id for v in spec.valves if v.closure.time_s > SLOW_CLOSE_S)
    return FlowModel(main_k=main, heater_k=HEATER_K, branch_k=branch, ramp_s=ramp, slow_close=slow)


@dataclass(frozen=True)
class UseDrop:
    """What the estimator needs of one use: when it ran, on which lines, and how far each
    line's pressure fell while it ran (:attr:`atlas.uses.WaterUse.drop_kpa`).

    ``valve_id`` (a label or the classifier's prediction) picks the valve's own branch
    resistance and ramps; ``category_valves`` (the valves of a predicted category) is the
    fallback when only the category is known: their resistances are averaged.
    """

    use_id: str
    lines: tuple[str, ...]
    t_open: datetime | None
    t_close: datetime | None
    drop_kpa: dict[str, float]
    valve_id: str | None = None
    category_valves: tuple[str, ...] = ()
    open_drop_kpa: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_use(
        cls,
        use: WaterUse,
        valve_id: str | None = None,
        category_valves: Iterable[str] = (),
        *,
        features: Mapping[str, TransientFeatures] | None = None,
        event_lines: Mapping[str, str] | None = None,
    ) -> UseDrop:
        """The estimator's view of a paired use.

        ``features`` and ``event_lines`` (:attr:`atlas.pairing.PairingResult.features` and
        ``.lines``) add the open transient's own step per line, which the estimator prefers for
        valves that close slower than an event window lasts (toilet floats: the close's window
        ends before the level has settled, so the pairing's mean drop under-reads).
        """
        open_drop: dict[str, float] = {}
        if features is not None and event_lines is not None:
            for event_id in use.open_event_ids:
                if event_id in features and event_id in event_lines:
                    open_drop[event_lines[event_id]] = abs(features[event_id].step_kpa)
        return cls(
            use.use_id,
            tuple(use.lines),
            use.t_open,
            use.t_close,
            dict(use.drop_kpa),
            valve_id,
            tuple(category_valves),
            open_drop,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, read back by :meth:`from_dict`.

        A stored calibration keeps its measurement, not the model it gave, and is replayed
        whenever the home's model is needed; replay must give the very model of the day it was
        recorded. JSON numbers keep every bit of a float (``repr`` round-trips) and ISO 8601
        keeps the microseconds of a time, so nothing is lost on the way.
        """
        return {
            "use_id": self.use_id,
            "lines": list(self.lines),
            "t_open": None if self.t_open is None else self.t_open.isoformat(),
            "t_close": None if self.t_close is None else self.t_close.isoformat(),
            "drop_kpa": dict(self.drop_kpa),
            "valve_id": self.valve_id,
            "category_valves": list(self.category_valves),
            "open_drop_kpa": dict(self.open_drop_kpa),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UseDrop:
        """The use :meth:`to_dict` wrote (equal to it)."""
        return cls(
            str(data["use_id"]),
            tuple(data["lines"]),
            _from_iso(data["t_open"]),
            _from_iso(data["t_close"]),
            {line: float(v) for line, v in data["drop_kpa"].items()},
            data["valve_id"],
            tuple(data["category_valves"]),
            {line: float(v) for line, v in data["open_drop_kpa"].items()},
        )


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class VolumeEstimate:
    """Flow and litres of one use.

    ``litres`` is NaN when the duration is unknown (an orphan close; an open-ended use when no
    ``until`` was given); ``litres_sigma`` is one standard deviation (resistance uncertainty,
    level-reading noise, timing), of which ``resistance_sigma`` is the part every use of the
    same valve shares; ``overlapped`` says other water ran during the use.
    """

    use_id: str
    flow_hot_lpm: float
    flow_cold_lpm: float
    duration_s: float | None
    litres: float
    litres_sigma: float
    overlapped: bool
    resistance_sigma: float = 0.0

    @property
    def flow_lpm(self) -> float:
        return self.flow_hot_lpm + self.flow_cold_lpm


def _seconds(t: datetime | None) -> float:
    return math.nan if t is None else t.timestamp()


def _branches(model: FlowModel, use: UseDrop, line: str) -> tuple[float, float]:
    """(branch k, its log sigma) for a use on ``line``."""
    if use.valve_id is not None:
        return max(model.branch(use.valve_id, line), _MIN_K), model.sigma(use.valve_id, line)
    known = [v for v in use.category_valves if (v, line) in model.branch_k]
    if known:
        k = float(np.mean([model.branch_k[(v, line)] for v in known]))
        spread = float(np.std([math.log(model.branch_k[(v, line)]) for v in known]))
        return max(k, _MIN_K), math.hypot(BRANCH_SIGMA, spread)
    return max(model.branch(None, line), _MIN_K), math.hypot(BRANCH_SIGMA, 0.5)


def _running(
    t_open: np.ndarray, t_close: np.ndarray, flow: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Total ``flow`` of the uses running strictly before each time in ``at``: opened before
    it and not closed before it (a use's own close at ``at`` still counts it)."""
    ok = np.isfinite(t_open) & np.isfinite(t_close)
    times = np.concatenate([t_open[ok], t_close[ok]])
    deltas = np.concatenate([flow[ok], -flow[ok]])
    order = np.argsort(times, kind="stable")
    times, cum = times[order], np.concatenate([[0.0], np.cumsum(deltas[order])])
    idx = np.searchsorted(times, np.nan_to_num(at, nan=-np.inf), side="left")
    return np.where(np.isfinite(at), cum[idx], np.nan)


def _solve(
    d_hot: np.ndarray,
    d_cold: np.ndarray,
    s_other: np.ndarray,
    h_other: np.ndarray,
    a: float,
    h: float,
    b_hot: np.ndarray,
    b_cold: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Hot and cold flow of each use from its drops, given the other uses' total (``s_other``)
    and hot (``h_other``) flow running at the same time. NaN drop = the use is not on that line.
    """
    hot = np.isfinite(d_hot)
    cold = np.isfinite(d_cold)
    dh = np.maximum(np.nan_to_num(d_hot), 0.0)
    dc = np.maximum(np.nan_to_num(d_cold), 0.0)
    s = np.nan_to_num(s_other)
    hh = np.nan_to_num(h_other)
    qh = np.zeros_like(dh)
    qc = np.zeros_like(dc)

    only_cold = cold & ~hot
    k = a + b_cold
    qc = np.where(only_cold, (-a * s + np.sqrt((a * s) ** 2 + k * dc)) / k, qc)
    only_hot = hot & ~cold
    k = a + h + b_hot
    lin = a * s + h * hh
    qh = np.where(only_hot, (-lin + np.sqrt(lin**2 + k * dh)) / k, qh)

    both = hot & cold
    if both.any():
        s_b, hh_b, dh_b, dc_b = s[both], hh[both], dh[both], dc[both]
        kh, kc = h + b_hot[both], b_cold[both]

        def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            main = a * (x**2 + 2.0 * x * s_b)
            rest_h = np.maximum(dh_b - main, 0.0)
            rest_c = np.maximum(dc_b - main, 0.0)
            q_hot = (-h * hh_b + np.sqrt((h * hh_b) ** 2 + kh * rest_h)) / kh
            return q_hot, np.sqrt(rest_c / kc)

        lo = np.zeros_like(s_b)
        hi = -s_b + np.sqrt(s_b**2 + np.maximum(dh_b, dc_b) / a)
        for _ in range(_BISECTIONS):  # qh(x) + qc(x) - x falls with x: one root in [lo, hi]
            mid = 0.5 * (lo + hi)
            q_hot, q_cold = split(mid)
            above = q_hot + q_cold > mid
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        q_hot, q_cold = split(0.5 * (lo + hi))
        qh[both], qc[both] = q_hot, q_cold
    return qh, qc


def _open_only(
    uses: Sequence[UseDrop], model: FlowModel, t_open: np.ndarray, t_close: np.ndarray
) -> np.ndarray:
    """Uses to size by their open transient alone: slow-closing valves (all of the predicted
    category's valves when the valve is not known), with an open step on each line, and no
    other event starting within the open's window (it would cut the level short)."""
    times = np.sort(np.concatenate([t_open[np.isfinite(t_open)], t_close[np.isfinite(t_close)]]))
    out = np.zeros(len(uses), dtype=bool)
    for i, use in enumerate(uses):
        valves = (use.valve_id,) if use.valve_id is not None else use.category_valves
        if not valves or not all(v in model.slow_close for v in valves):
            continue
        if not math.isfinite(t_open[i]) or any(ln not in use.open_drop_kpa for ln in use.lines):
            continue
        lo = np.searchsorted(times, t_open[i], side="right")
        hi = np.searchsorted(times, t_open[i] + OPEN_WINDOW_S, side="right")
        out[i] = hi == lo
    return out


def estimate_volumes(
    uses: Sequence[UseDrop],
    model: FlowModel,
    *,
    until: datetime | None = None,
) -> list[VolumeEstimate]:
    """Flow and litres of each use (same order), solved jointly over overlapping uses.

    Parameters
    ----------
    uses : sequence of UseDrop
        All the uses of one home over a period (overlaps are found among them).
    model : FlowModel
        The home's resistances (:func:`default_flow_model`, then calibrated).
    until : datetime, optional
        The present: an open-ended use is taken to run until then. Without it an open-ended
        use has a flow but NaN litres.

    The open and close steps of a use differ when other water started or stopped while it ran;
    ``drop_kpa`` is their mean, so the model's drop is the mean of the steps it predicts at the
    open and at the close (exact for the quadratic losses: the cross term is linear in the
    other flows). Slow-closing valves are sized by their open step when it is clean
    (:attr:`UseDrop.open_drop_kpa`).
    """
    n = len(uses)
    if n == 0:
        return []
    a, h = max(model.main_k, _MIN_K), max(model.heater_k, 0.0)
    t_open = np.array([_seconds(u.t_open) for u in uses])
    t_close = np.array([_seconds(u.t_close) for u in uses])
    horizon = _seconds(until)
    d_hot = np.array([u.drop_kpa.get(HOT, np.nan) if HOT in u.lines else np.nan for u in uses])
    d_cold = np.array([u.drop_kpa.get(COLD, np.nan) if COLD in u.lines else np.nan for u in uses])
    b_hot, s_hot, b_cold, s_cold = (np.empty(n) for _ in range(4))
    for i, use in enumerate(uses):
        b_hot[i], s_hot[i] = _branches(model, use, HOT)
        b_cold[i], s_cold[i] = _branches(model, use, COLD)
    # an open-ended use runs on until ``until``; without it, it is left out of the others'
    # overlap: pairing also leaves an open unclosed when it mis-read its close, and a made-up
    # flow lasting hours would bias every use after it
    ends = np.where(np.isfinite(t_close), t_close, horizon if math.isfinite(horizon) else np.nan)
    open_only = _open_only(uses, model, t_open, t_close)
    for i in np.flatnonzero(open_only):
        d_hot[i] = uses[i].open_drop_kpa.get(HOT, np.nan)
        d_cold[i] = uses[i].open_drop_kpa.get(COLD, np.nan)

    zeros = np.zeros(n)
    qh, qc = _solve(d_hot, d_cold, zeros, zeros, a, h, b_hot, b_cold)
    for _ in range(_SWEEPS):
        total, hot = qh + qc, qh
        s_open = _running(t_open, ends, total, t_open)
        s_close = _running(t_open, ends, total, t_close) - np.where(np.isfinite(t_open), total, 0)
        h_open = _running(t_open, ends, hot, t_open)
        h_close = _running(t_open, ends, hot, t_close) - np.where(np.isfinite(t_open), hot, 0)
        s_mean = np.where(open_only, s_open, np.nanmean(np.vstack([s_open, s_close]), axis=0))
        h_mean = np.where(open_only, h_open, np.nanmean(np.vstack([h_open, h_close]), axis=0))
        new_h, new_c = _solve(d_hot, d_cold, s_mean, h_mean, a, h, b_hot, b_cold)
        qh, qc = 0.3 * qh + 0.7 * new_h, 0.3 * qc + 0.7 * new_c
    overlapped = np.nan_to_num(s_mean) > 1e-6

    out = []
    for i, use in enumerate(uses):
        if math.isfinite(t_close[i]) and math.isfinite(t_open[i]):
            duration: float | None = t_close[i] - t_open[i]
        elif math.isfinite(t_open[i]) and math.isfinite(horizon):
            duration = max(horizon - t_open[i], 0.0)
        else:
            duration = None
        ramp = model.ramp_s.get(use.valve_id, DEFAULT_RAMP_S) if use.valve_id else DEFAULT_RAMP_S
        flow = float(qh[i] + qc[i])
        litres = math.nan if duration is None else flow / 60.0 * max(duration + ramp, 0.0)
        shared, own = _relative_sigmas(
            model,
            (d_hot[i], d_cold[i]),
            (b_hot[i], b_cold[i]),
            (s_hot[i], s_cold[i]),
            duration,
            bool(overlapped[i]),
        )
        out.append(
            VolumeEstimate(
                use.use_id,
                float(qh[i]),
                float(qc[i]),
                duration,
                litres,
                abs(litres) * math.hypot(shared, own),
                bool(overlapped[i]),
                abs(litres) * shared,
            )
        )
    return out


def _relative_sigmas(
    model: FlowModel,
    drops: tuple[float, float],
    branches: tuple[float, float],
    sigmas: tuple[float, float],
    duration: float | None,
    overlapped: bool,
) -> tuple[float, float]:
    """Relative standard deviations of a use's litres: (resistances, the rest).

    Flow goes as ``k ** -0.5`` and ``drop ** 0.5``, so it carries half the relative uncertainty
    of each. The resistance part is shared by every use of the valve (it does not average out
    over a week); level-reading noise, timing and overlap are the use's own.
    """
    k_parts, noise_parts = [], []
    for drop, b, sb, shared in (
        (drops[0], branches[0], sigmas[0], model.main_k + model.heater_k),
        (drops[1], branches[1], sigmas[1], model.main_k),
    ):
        if not math.isfinite(drop):
            continue
        w_main = shared / (shared + b)
        branch_var = sb**2 + model.common_sigma**2
        k_parts.append(0.25 * ((w_main * model.main_sigma) ** 2 + (1 - w_main) ** 2 * branch_var))
        noise_parts.append(0.25 * (DROP_NOISE_KPA / max(drop, DROP_NOISE_KPA)) ** 2)
    k_var = float(np.mean(k_parts)) if k_parts else 0.25
    var = float(np.mean(noise_parts)) if noise_parts else 0.0
    if duration:
        var += (DURATION_NOISE_S / max(duration, DURATION_NOISE_S)) ** 2
    if overlapped:
        var += 0.05**2  # the other uses' flows are themselves estimates
    return math.sqrt(k_var), math.sqrt(var)


def calibrate_known_volume(
    model: FlowModel,
    uses: Sequence[UseDrop],
    litres: float,
    *,
    context: Sequence[UseDrop] = (),
) -> FlowModel:
    """The model after an installer drew ``litres`` at one fixture.

    Parameters
    ----------
    model : FlowModel
        The home's current model (usually :func:`default_flow_model`).
    uses : sequence of UseDrop
        The use(s) of the measurement (e.g. one bucket fill), each with its ``valve_id``.
    litres : float
        What was measured (the bucket's mark, a measuring jug, the toilet tank's volume).
    context : sequence of UseDrop, optional
        Other uses around the measurement, if water ran meanwhile (their overlap counts).

    Returns
    -------
    FlowModel
        The estimate of ``uses`` now matches ``litres``. Flow goes as ``k ** -0.5``, so the
        measurement says the resistance ``k_eff = shared + branch`` that fixture sees is
        ``(estimated / measured) ** 2`` times the model's. In log space that error is split
        between the home-wide service path, an error every branch shares (the spec's pipe
        data and assumptions are off the same way throughout the home) and the fixture's own
        branch, in proportion to their prior variances weighted by their shares of ``k_eff``
        (the posterior mean of a Gaussian update). The first two move every fixture; the
        fixture's own branch then takes the rest exactly; the uncertainties shrink.
    """
    if not (math.isfinite(litres) and litres > 0):
        raise ValueError(f"litres={litres} should be finite and > 0.")
    if not uses or any(u.valve_id is None for u in uses):
        raise ValueError("calibration needs the measurement's use(s), each with its valve_id.")
    ids = {u.use_id for u in uses}
    everything = list(uses) + [u for u in context if u.use_id not in ids]
    estimates = estimate_volumes(everything, model)[: len(uses)]
    estimated = sum(e.litres for e in estimates)
    if not (math.isfinite(estimated) and estimated > 0):
        raise ValueError("the measurement's uses have no usable volume (unpaired or no drop).")
    log_ratio = 2.0 * math.log(estimated / litres)  # log of k_true / k_model

    # shares of the measured resistance, drop-weighted over the measurement's uses and lines
    keys: dict[tuple[str, str], float] = {}
    w_main_sum = weight_sum = 0.0
    for use in uses:
        for line, drop in use.drop_kpa.items():
            if line not in use.lines or not math.isfinite(drop) or drop <= 0:
                continue
            shared = model.main_k + (model.heater_k if line == HOT else 0.0)
            b = model.branch(use.valve_id, line)
            w_main_sum += drop * shared / (shared + b)
            weight_sum += drop
            keys[(str(use.valve_id), line)] = keys.get((str(use.valve_id), line), 0.0) + drop
    if weight_sum <= 0:
        raise ValueError("the measurement's uses have no pressure drop.")
    w_m = w_main_sum / weight_sum
    w_b = 1.0 - w_m
    s_m, s_c = model.main_sigma, model.common_sigma
    s_v = float(np.mean([model.sigma(v, ln) for v, ln in keys]))
    total_var = (w_m * s_m) ** 2 + w_b**2 * (s_c**2 + s_v**2)
    delta_main = w_m * s_m**2 * log_ratio / total_var
    delta_common = w_b * s_c**2 * log_ratio / total_var
    main_k = model.main_k * math.exp(delta_main)
    heater_k = model.heater_k * math.exp(delta_main)
    branch_k = {key: k * math.exp(delta_common) for key, k in model.branch_k.items()}
    branch_sigma = dict(model.branch_sigma)
    factor = math.exp(log_ratio)
    for valve, line in keys:
        old_shared = model.main_k + (model.heater_k if line == HOT else 0.0)
        new_shared = main_k + (heater_k if line == HOT else 0.0)
        target = factor * (old_shared + model.branch(valve, line))
        branch_k[(valve, line)] = max(target - new_shared, 0.05 * model.branch(valve, line))
        branch_sigma[(valve, line)] = math.sqrt(max(s_v**2 - (w_b * s_v**2) ** 2 / total_var, 0))
    return replace(
        model,
        main_k=main_k,
        heater_k=heater_k,
        branch_k=branch_k,
        branch_sigma=branch_sigma,
        main_sigma=math.sqrt(max(s_m**2 - (w_m * s_m**2) ** 2 / total_var, 0.0)),
        common_sigma=math.sqrt(max(s_c**2 - (w_b * s_c**2) ** 2 / total_var, 0.0)),
        source="fixture:" + ",".join(sorted({v for v, _ in keys})),
    )


def calibrate_meter(
    model: FlowModel,
    uses: Sequence[UseDrop],
    metered_litres: float,
    *,
    until: datetime | None = None,
) -> FlowModel:
    """The model after a water-meter reading: ``metered_litres`` passed the meter while
    ``uses`` (all the home's uses over the same period) ran.

    Every fixture contributed, so every resistance is scaled by ``(estimated / metered) ** 2``
    and the estimates of ``uses`` then sum to the meter's total. Uses without litres (orphan
    closes) are left out of the estimate, so read the meter over a period with few of them.
    """
    if not (math.isfinite(metered_litres) and metered_litres > 0):
        raise ValueError(f"metered_litres={metered_litres} should be finite and > 0.")
    estimated = float(np.nansum([e.litres for e in estimate_volumes(uses, model, until=until)]))
    if estimated <= 0:
        raise ValueError("no use over the metered period has a volume.")
    return meter_scaled(model, (estimated / metered_litres) ** 2)


#: Log-space standard deviation left in the home-wide resistances after a meter reading: every
#: fixture contributed to the total, so the shared error is pinned down.
METER_SIGMA = 0.05


def meter_scaled(model: FlowModel, factor: float) -> FlowModel:
    """:func:`calibrate_meter`'s update from its resistance factor ``(estimated / metered) **
    2``: a caller that estimated the period's litres its own way (the service, with what is
    certified about each use) applies a meter reading, or replays a stored one, with this."""
    scaled = model.scaled(factor, "meter")
    return replace(
        scaled,
        main_sigma=min(scaled.main_sigma, METER_SIGMA),
        common_sigma=min(scaled.common_sigma, METER_SIGMA),
    )


def total_litres(
    estimates: Iterable[VolumeEstimate], groups: Mapping[str, str]
) -> dict[str, tuple[float, float]]:
    """Litres and one standard deviation per group (``groups``: use id -> category, fixture,
    ...); uses without a group or without litres are left out.

    The resistance part of the uncertainty is added linearly within a group (the same pipes
    serve every use of a fixture, so their error does not average out over a week) and the
    rest in quadrature: a conservative spread for a weekly total.
    """
    sums: dict[str, list[float]] = {}
    for e in estimates:
        group = groups.get(e.use_id)
        if group is None or not math.isfinite(e.litres):
            continue
        acc = sums.setdefault(group, [0.0, 0.0, 0.0])
        acc[0] += e.litres
        acc[1] += e.resistance_sigma
        acc[2] += max(e.litres_sigma**2 - e.resistance_sigma**2, 0.0)
    return {g: (v[0], math.sqrt(v[1] ** 2 + v[2])) for g, v in sorted(sums.items())}
