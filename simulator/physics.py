"""Physics of the pressure a line sensor records when valves open and close (pure numpy).

The model, every constant and its source are in ``docs/simulator.md``. In short, the pressure on
a line is

    p(t) = static(t) - steady_drop(flows running at t) + sum of the transients of each actuation

* the steady drop is quadratic in flow (Darcy-Weisbach / orifice loss) through the shared
  service path (meter, main, PRV), the water heater on the hot side, and the part of each running
  valve's branch the sensor shares;
* each actuation moves the level from one steady drop to the next along the valve's flow ramp,
  plus a water-hammer term: Joukowsky ``dp = rho * a * dv``, scaled by ``(2L/a)/Tc`` when the
  closure time ``Tc`` exceeds the round trip ``2L/a``, followed by damped ringing at the
  quarter-wave frequency ``a / 4L``. Opening makes a smaller, slower rarefaction dip.

Functions take plain numbers and arrays and return arrays: generation (``simulator.generate``)
decides *what* happens, this module only decides what the sensor sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atlas.domain import ClosureKind, Line, PipeMaterial

RHO_KG_M3 = 998.0  # water at 20 C
#: Pressure-wave speed in a water-filled pipe (m/s); Wylie & Streeter "Fluid Transients"
#: table 2.1 ranges: copper 1200-1400, CPVC 450-600, PEX 270-350.
WAVE_SPEED_M_S: dict[PipeMaterial, float] = {
    PipeMaterial.COPPER: 1300.0,
    PipeMaterial.CPVC: 550.0,
    PipeMaterial.PEX: 300.0,
}
#: Damping ratio of the quarter-wave mode: metal rings long, viscoelastic plastics damp
#: (Covas et al. 2004, "unsteady friction and viscoelasticity in polyethylene pipes").
DAMPING_RATIO: dict[PipeMaterial, float] = {
    PipeMaterial.COPPER: 0.03,
    PipeMaterial.CPVC: 0.06,
    PipeMaterial.PEX: 0.11,
}
#: Hot water carries sound faster (1482 m/s at 20 C, 1551 m/s at 60 C in free water).
HOT_WAVE_SPEED_FACTOR = 1.03
#: A rarefaction dip from opening is this fraction of the hammer the same valve makes closing:
#: the flow accelerates against the line's inertia instead of stopping (Wylie & Streeter ch. 3).
OPEN_SURGE_FACTOR = 0.45
#: Arrestors, air pockets and relief make large spikes saturate; the soft cap keeps the wave
#: within the event encoding's +-327 kPa around the window's median.
SURGE_CAP_KPA = 220.0
DARCY_FRICTION = 0.03  # turbulent flow in 1/2"-3/4" smooth pipe at 0.5-2 m/s (Moody chart)


@dataclass(frozen=True)
class RunAcoustics:
    """What the sensor's pipe run to one valve does to a wave (from the spec, plus the hidden
    spread real plumbing has around it)."""

    wave_speed_m_s: float
    length_m: float
    diameter_mm: float
    damping_ratio: float
    transmission: float  # fraction of the valve's hammer that reaches the sensor
    branch_k: float  # kPa / (L/min)^2 of branch loss the sensor shares with this valve

    @property
    def ring_hz(self) -> float:
        return quarter_wave_hz(self.wave_speed_m_s, self.length_m)

    @property
    def decay_per_s(self) -> float:
        return self.damping_ratio * 2.0 * np.pi * self.ring_hz

    @property
    def round_trip_s(self) -> float:
        return 2.0 * self.length_m / self.wave_speed_m_s


def wave_speed(material: PipeMaterial, line: Line = Line.COLD) -> float:
    """Wave speed in m/s for ``material``; hot water is a little faster."""
    factor = HOT_WAVE_SPEED_FACTOR if line == Line.HOT else 1.0
    return WAVE_SPEED_M_S[PipeMaterial(material)] * factor


def quarter_wave_hz(wave_speed_m_s: float, length_m: float) -> float:
    """Fundamental of a pipe closed at the valve and open at the supply: f = a / 4L."""
    if length_m <= 0:
        raise ValueError(f"length_m={length_m} should be > 0.")
    return wave_speed_m_s / (4.0 * length_m)


def flow_velocity(flow_lpm: float, diameter_mm: float) -> float:
    """Mean velocity (m/s) of ``flow_lpm`` litres per minute in a pipe of ``diameter_mm``."""
    area = np.pi * (diameter_mm / 1000.0) ** 2 / 4.0
    return (flow_lpm / 60_000.0) / area


def joukowsky_kpa(wave_speed_m_s: float, dv_m_s: float) -> float:
    """Joukowsky's instantaneous-closure surge dp = rho * a * dv, in kPa."""
    return RHO_KG_M3 * wave_speed_m_s * dv_m_s / 1000.0


def hammer_kpa(wave_speed_m_s: float, dv_m_s: float, length_m: float, closure_s: float) -> float:
    """Surge of a closure over ``closure_s``: Joukowsky, times (2L/a)/Tc when Tc > 2L/a."""
    if closure_s <= 0:
        raise ValueError(f"closure_s={closure_s} should be > 0.")
    round_trip = 2.0 * length_m / wave_speed_m_s
    return joukowsky_kpa(wave_speed_m_s, dv_m_s) * min(1.0, round_trip / closure_s)


def soft_cap(surge_kpa: float, cap_kpa: float = SURGE_CAP_KPA) -> float:
    """Saturate large surges smoothly (linear for small ones)."""
    return float(cap_kpa * np.tanh(surge_kpa / cap_kpa))


def branch_loss_k(length_m: float, diameter_mm: float, shared_fraction: float) -> float:
    """Darcy-Weisbach loss coefficient (kPa per (L/min)^2) of the shared part of a branch.

    dp = f * (L / D) * rho * v^2 / 2 with v = Q / A, so dp = k * Q^2.
    """
    v_per_lpm = flow_velocity(1.0, diameter_mm)
    d = diameter_mm / 1000.0
    return DARCY_FRICTION * (shared_fraction * length_m / d) * RHO_KG_M3 * v_per_lpm**2 / 2000.0


def flow_fraction(tau: np.ndarray, actuation_s: float, action: str) -> np.ndarray:
    """Fraction of the valve's final flow change done ``tau`` seconds after the actuation starts.

    Valves are quick-opening and slow-to-cut: most of the flow goes at the end of a closure
    (the gap only throttles once nearly shut) and at the start of an opening.
    """
    x = np.clip(np.asarray(tau, dtype=np.float64) / max(actuation_s, 1e-6), 0.0, 1.0)
    if action == "close":
        return x**2
    if action == "open":
        return 1.0 - (1.0 - x) ** 2
    raise ValueError(f"action={action!r} should be 'open' or 'close'.")


def level_fraction(tau: np.ndarray, actuation_s: float, action: str) -> np.ndarray:
    """Fraction of the steady-drop change done at ``tau``: the drop goes with flow squared."""
    q = flow_fraction(tau, actuation_s, action)
    return 1.0 - (1.0 - q) ** 2 if action == "close" else q**2


def hammer_wave(
    tau: np.ndarray, surge_kpa: float, peak_s: float, ring_hz: float, decay_per_s: float
) -> np.ndarray:
    """The hammer term: rises to ``surge_kpa`` at ``peak_s`` (the end of the flow change), then
    rings as a damped cosine at ``ring_hz``. Zero before the actuation."""
    tau = np.asarray(tau, dtype=np.float64)
    peak_s = max(peak_s, 1e-3)
    rising = surge_kpa * np.clip(tau / peak_s, 0.0, 1.0) ** 2
    after = np.maximum(tau - peak_s, 0.0)
    ringing = surge_kpa * np.exp(-decay_per_s * after) * np.cos(2 * np.pi * ring_hz * after)
    return np.where(tau < 0, 0.0, np.where(tau < peak_s, rising, ringing))


@dataclass(frozen=True)
class Actuation:
    """One valve opening or closing as felt on one line."""

    t_s: float  # onset, seconds since the run started
    line: Line
    action: str  # "open" | "close"
    actuation_s: float  # opening or closing time
    surge_kpa: float  # signed: + for a close's spike, - for an open's dip
    peak_s: float
    ring_hz: float
    decay_per_s: float


def actuation_for(
    acoustics: RunAcoustics, line: Line, action: str, t_s: float, flow_lpm: float, time_s: float
) -> Actuation:
    """The transient of a valve on ``line`` changing its flow by ``flow_lpm`` over ``time_s``."""
    dv = flow_velocity(flow_lpm, acoustics.diameter_mm)
    surge = acoustics.transmission * hammer_kpa(
        acoustics.wave_speed_m_s, dv, acoustics.length_m, time_s
    )
    if action == "close":
        return Actuation(
            t_s,
            line,
            action,
            time_s,
            soft_cap(surge),
            time_s,
            acoustics.ring_hz,
            acoustics.decay_per_s,
        )
    # an opening accelerates the column early in the stroke: its dip peaks at a third of it
    return Actuation(
        t_s,
        line,
        action,
        time_s,
        -soft_cap(OPEN_SURGE_FACTOR * surge),
        time_s / 3.0,
        acoustics.ring_hz,
        1.5 * acoustics.decay_per_s,
    )


def transient_wave(tau: np.ndarray, act: Actuation, level_step_kpa: float) -> np.ndarray:
    """Contribution of one actuation: its share of the level change plus its hammer."""
    level = level_step_kpa * level_fraction(tau, act.actuation_s, act.action) * (tau >= 0)
    return level + hammer_wave(tau, act.surge_kpa, act.peak_s, act.ring_hz, act.decay_per_s)


@dataclass(frozen=True)
class Hydraulics:
    """Shared losses of a home: the service path (main, meter, PRV droop) and the heater."""

    main_k: float  # kPa / (L/min)^2 for the total flow
    heater_k: float  # kPa / (L/min)^2 for the hot flow

    def steady_drop(self, line: Line, hot_lpm: float, cold_lpm: float, branch_kpa: float) -> float:
        """Drop below static pressure at ``line``'s sensor for the given flows."""
        drop = self.main_k * (hot_lpm + cold_lpm) ** 2 + branch_kpa
        if line == Line.HOT:
            drop += self.heater_k * hot_lpm**2
        return drop


def diurnal_factor(hour_of_day: np.ndarray | float, amplitude: float) -> np.ndarray:
    """Relative static-pressure change over a day: the utility's pressure sags at the morning
    (~7:30) and evening (~19:00) demand peaks and recovers at night."""
    h = np.asarray(hour_of_day, dtype=np.float64)

    def bump(center: float, width: float) -> np.ndarray:
        d = (h - center + 12.0) % 24.0 - 12.0
        return np.exp(-0.5 * (d / width) ** 2)

    return 1.0 - amplitude * (0.6 * bump(7.5, 1.5) + 0.5 * bump(19.0, 2.0))


def ou_drift(times_s: np.ndarray, sigma_kpa: float, tau_s: float, rng: np.random.Generator):
    """Slow baseline drift (Ornstein-Uhlenbeck, exact update) sampled at sorted ``times_s``."""
    times_s = np.asarray(times_s, dtype=np.float64)
    out = np.empty(times_s.size)
    x = rng.normal(0.0, sigma_kpa)
    prev = times_s[0] if times_s.size else 0.0
    for i, t in enumerate(times_s):
        rho = np.exp(-(t - prev) / tau_s)
        x = rho * x + sigma_kpa * np.sqrt(1.0 - rho**2) * rng.normal()
        out[i] = x
        prev = t
    return out


def sensor_noise(n: int, sigma_kpa: float, rng: np.random.Generator) -> np.ndarray:
    """White transducer noise plus a little low-frequency wander (flicker)."""
    white = rng.normal(0.0, sigma_kpa, n)
    wander = np.cumsum(rng.normal(0.0, sigma_kpa * 0.02, n))
    return white + wander - wander.mean()


#: Typical closure kinds whose opening is slower than the closing (pilot-operated solenoids).
OPENING_FACTOR: dict[ClosureKind, float] = {
    ClosureKind.SOLENOID: 2.0,
    ClosureKind.MANUAL: 1.2,
    ClosureKind.FLOAT: 0.25,  # a flush drops the float at once; the fill valve opens quickly
}
