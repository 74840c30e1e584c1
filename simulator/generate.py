"""Turn a home and a usage schedule into the events its two sensors would publish (pure).

``generate_run`` = usage model (``simulator.usage``) + hidden plumbing spread + physics
(``simulator.physics``). The hidden spread is what a real home has beyond what an installer
writes in the spec (actual wave speed, pipe anchoring, how much of each branch the sensor
shares, how much of a valve's hammer reaches the sensor); ``variation`` scales it together with
the habit spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from atlas.domain import Category, Line, Valve
from atlas.events import Event, encode_event
from atlas.homespec import HomeSpec
from simulator import physics
from simulator.usage import Faults, PlannedUse, schedule

PRE_S = 0.25  # window before the onset (contracts §1)
POST_S = 1.5  # window after it
LOOKBACK_S = 8.0  # earlier actuations still moving the level or ringing (float closures ~5 s)
NOISE_KPA = 0.12  # transducer noise, ~0.02 % of a 0-1000 kPa full scale
HOT_STATIC_OFFSET_KPA = -4.0  # heater inlet check valve / dip tube
DEFAULT_START = datetime(2026, 3, 2)  # a Monday; local midnight in the home's time zone

#: Fraction of a valve's hammer that reaches the sensor, by category: appliances hang on
#: flexible hoses and their own inlet screens, which absorb much of the spike.
TRANSMISSION: dict[Category, float] = {
    Category.DISHWASHER: 0.22,
    Category.WASHING_MACHINE: 0.2,
    Category.TOILET: 0.3,
}
DEFAULT_TRANSMISSION = 0.35


@dataclass(frozen=True, eq=False)
class SimEvent:
    """One published event and the ground truth the simulator knows about it."""

    event: Event
    truth: dict

    def payload(self, encoding: str = "i16le-b64") -> dict:
        """The exact dict a gateway publishes (no ground truth)."""
        return encode_event(self.event, encoding)


@dataclass(frozen=True)
class HomeAcoustics:
    """Hidden, seed-drawn plumbing of one home (see the module docstring)."""

    runs: dict[tuple[str, Line], physics.RunAcoustics]
    hydraulics: physics.Hydraulics
    coupling: float  # fraction of a transient felt on the other line
    diurnal_amplitude: float
    drift_sigma_kpa: float


def draw_acoustics(spec: HomeSpec, rng: np.random.Generator, variation: float) -> HomeAcoustics:
    """Draw the hidden plumbing of ``spec`` around its nominal values."""
    runs: dict[tuple[str, Line], physics.RunAcoustics] = {}
    for fixture in spec.fixtures:
        base_t = TRANSMISSION.get(fixture.category, DEFAULT_TRANSMISSION)
        for valve in fixture.valves:
            for line, run in sorted(valve.runs.items()):
                a = physics.wave_speed(run.material, line) * _spread(rng, 0.03 * variation)
                length = run.length_m * _spread(rng, 0.03 * variation)
                runs[(valve.id, line)] = physics.RunAcoustics(
                    wave_speed_m_s=a,
                    length_m=length,
                    diameter_mm=run.diameter_mm,
                    damping_ratio=physics.DAMPING_RATIO[run.material]
                    * _spread(rng, 0.25 * variation),
                    transmission=base_t * _spread(rng, 0.3 * variation),
                    branch_k=physics.branch_loss_k(
                        run.length_m, run.diameter_mm, float(rng.uniform(0.2, 0.6))
                    ),
                )
    prv = spec.model.has_prv
    hydraulics = physics.Hydraulics(
        # service path: ~40 kPa at 40 L/min through meter, main and PRV (droop included);
        # ~25 kPa without a PRV. Heater: ~10 kPa at 20 L/min.
        main_k=(0.025 if prv else 0.016) * _spread(rng, 0.15 * variation),
        heater_k=0.025 * _spread(rng, 0.15 * variation),
    )
    return HomeAcoustics(
        runs=runs,
        hydraulics=hydraulics,
        coupling=0.1 * _spread(rng, 0.3 * variation),
        diurnal_amplitude=0.01 if prv else 0.05,
        drift_sigma_kpa=1.0 if prv else 3.0,
    )


def _spread(rng: np.random.Generator, sigma: float) -> float:
    return float(np.exp(rng.normal(0.0, sigma)))


@dataclass(frozen=True)
class _Act:
    """An actuation on one line, with the use it belongs to."""

    use: PlannedUse
    valve: Valve
    act: physics.Actuation
    flow_lpm: float  # flow change on act.line (positive)


def _actuations(
    spec: HomeSpec,
    uses: list[PlannedUse],
    acoustics: HomeAcoustics,
    rng: np.random.Generator,
    variation: float,
) -> list[_Act]:
    acts: list[_Act] = []
    for use in uses:
        valve = spec.valve(use.valve_id)
        total = valve.flow_lpm * use.flow_scale
        for line in valve.lines:
            share = use.hot_share if line == Line.HOT else 1.0 - use.hot_share
            if len(valve.lines) == 1:
                share = 1.0
            flow = total * share
            run = acoustics.runs[(valve.id, line)]
            lag = float(rng.uniform(0.0, 0.03)) if len(valve.lines) > 1 else 0.0
            for action, t, time_s in (
                ("open", use.start_s + lag, use.open_s),
                ("close", use.start_s + use.duration_s + lag, use.close_s),
            ):
                # per actuation: water temperature and trapped air shift the wave speed a
                # little, and how the hand or float meets the seat changes what gets through
                jitter = physics.RunAcoustics(
                    wave_speed_m_s=run.wave_speed_m_s * _spread(rng, 0.012 * variation),
                    length_m=run.length_m,
                    diameter_mm=run.diameter_mm,
                    damping_ratio=run.damping_ratio * _spread(rng, 0.1 * variation),
                    transmission=run.transmission * _spread(rng, 0.15 * variation),
                    branch_k=run.branch_k,
                )
                acts.append(
                    _Act(
                        use,
                        valve,
                        physics.actuation_for(jitter, line, action, t, flow, time_s),
                        flow,
                    )
                )
    acts.sort(key=lambda a: a.act.t_s)
    return acts


def _steady_drops(
    acts: list[_Act], acoustics: HomeAcoustics
) -> tuple[dict[Line, np.ndarray], dict[Line, np.ndarray]]:
    """Steady drop on each line after each actuation (index 0 = before any), and how many uses
    run on each line just before each actuation."""
    flows = {Line.HOT: 0.0, Line.COLD: 0.0}
    branch = {Line.HOT: 0.0, Line.COLD: 0.0}
    running = {Line.HOT: 0, Line.COLD: 0}
    drops = {line: np.zeros(len(acts) + 1) for line in Line}
    running_before = {line: np.zeros(len(acts), dtype=int) for line in Line}
    for k, item in enumerate(acts):
        line = item.act.line
        for ln in Line:
            running_before[ln][k] = running[ln]
        sign = 1.0 if item.act.action == "open" else -1.0
        k_branch = acoustics.runs[(item.valve.id, line)].branch_k
        flows[line] = max(0.0, flows[line] + sign * item.flow_lpm)
        branch[line] = max(0.0, branch[line] + sign * k_branch * item.flow_lpm**2)
        running[line] += 1 if sign > 0 else -1
        for ln in Line:
            drops[ln][k + 1] = acoustics.hydraulics.steady_drop(
                ln, flows[Line.HOT], flows[Line.COLD], branch[ln]
            )
    return drops, running_before


def _static(
    spec: HomeSpec,
    acoustics: HomeAcoustics,
    times_s: np.ndarray,
    start_local: datetime,
    rng: np.random.Generator,
) -> np.ndarray:
    hours = (start_local.hour + start_local.minute / 60 + times_s / 3600.0) % 24.0
    p0 = spec.model.static_pressure_kpa * physics.diurnal_factor(hours, acoustics.diurnal_amplitude)
    if times_s.size == 0:
        return p0
    return p0 + physics.ou_drift(times_s, acoustics.drift_sigma_kpa, 7200.0, rng)


def true_litres(use: PlannedUse, valve: Valve) -> float:
    """Litres a use really drew: its flow integrated over the valve's ramps.

    The flow rises as ``1 - (1 - x)^2`` over the opening and falls as ``1 - x^2`` over the
    closing (:func:`simulator.physics.flow_fraction`), so each ramp passes two thirds of what
    full flow would: ``Q * (duration - open_s / 3 + 2 * close_s / 3)``.
    """
    flow_lpm = valve.flow_lpm * use.flow_scale
    return flow_lpm / 60.0 * (use.duration_s - use.open_s / 3.0 + 2.0 * use.close_s / 3.0)


def _local_start(spec: HomeSpec, start: datetime | None) -> datetime:
    try:
        zone = ZoneInfo(spec.model.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone={spec.model.timezone!r} of home {spec.home_id!r} is not a known IANA zone."
        ) from None
    if start is None:
        return DEFAULT_START.replace(tzinfo=zone)
    return start.astimezone(zone) if start.tzinfo else start.replace(tzinfo=zone)


def render_uses(
    spec: HomeSpec,
    uses: list[PlannedUse],
    *,
    seed: int,
    start: datetime | None = None,
    variation: float = 1.0,
    id_prefix: str | None = None,
) -> list[SimEvent]:
    """The events of given ``uses`` (times relative to ``start``), sorted by time."""
    if variation < 0:
        raise ValueError(f"variation={variation} should be >= 0.")
    root = np.random.SeedSequence(seed)
    rng_plumbing, rng_acts, rng_drift, rng_noise = (np.random.default_rng(s) for s in root.spawn(4))
    acoustics = draw_acoustics(spec, rng_plumbing, variation)
    acts = _actuations(spec, uses, acoustics, rng_acts, variation)
    drops, running_before = _steady_drops(acts, acoustics)
    times = np.array([a.act.t_s for a in acts])
    start_local = _local_start(spec, start)
    start_utc = start_local.astimezone(UTC)
    static = _static(spec, acoustics, times, start_local, rng_drift)
    prefix = id_prefix or f"{spec.home_id}.{seed}"

    events: list[SimEvent] = []
    for k, item in enumerate(acts):
        line = item.act.line
        sensor = spec.model.sensors[line]
        rate = sensor.sample_rate_hz
        t_first = item.act.t_s - PRE_S
        tau = np.arange(round((PRE_S + POST_S) * rate)) / rate + t_first
        lo = int(np.searchsorted(times, item.act.t_s - LOOKBACK_S, side="left"))
        hi = int(np.searchsorted(times, t_first + tau.size / rate, side="right"))
        base = static[k] + (HOT_STATIC_OFFSET_KPA if line == Line.HOT else 0.0)
        wave = np.full(tau.size, base - drops[line][lo])
        for j in range(lo, hi):
            other = acts[j].act
            step = -(drops[line][j + 1] - drops[line][j])
            rel = tau - other.t_s
            if other.line == line:
                wave += physics.transient_wave(rel, other, step)
            else:  # the other line's transient leaks in weakly; its level step is exact
                wave += physics.transient_wave(rel, other, 0.0) * acoustics.coupling
                wave += (
                    step * physics.level_fraction(rel, other.actuation_s, other.action) * (rel >= 0)
                )
        wave += physics.sensor_noise(tau.size, NOISE_KPA, rng_noise)
        own = 1 if item.act.action == "close" else 0
        fixture = spec.fixture(item.valve.fixture_id)
        truth = {
            "valve": item.valve.id,
            "fixture": fixture.id,
            "category": str(fixture.category),
            "action": item.act.action,
            "use_id": item.use.use_id,
            "lines": [str(ln) for ln in item.valve.lines],
            "overlap": bool(running_before[line][k] - own > 0),
            "activity": item.use.activity,
            "flow_lpm": round(item.valve.flow_lpm * item.use.flow_scale, 4),
            "litres": round(true_litres(item.use, item.valve), 4),
        }
        event = Event(
            event_id="",
            home_id=spec.home_id,
            sensor_id=sensor.sensor_id,
            line=str(line),
            t=start_utc + timedelta(seconds=float(t_first)),
            sample_rate_hz=rate,
            samples=wave.astype(np.float32),
        )
        events.append(SimEvent(event, truth))
    events.sort(key=lambda e: e.event.t)
    return [SimEvent(_with_id(e.event, f"{prefix}.{n:06d}"), e.truth) for n, e in enumerate(events)]


def _with_id(event: Event, event_id: str) -> Event:
    return Event(
        event_id,
        event.home_id,
        event.sensor_id,
        event.line,
        event.t,
        event.sample_rate_hz,
        event.samples,
    )


def generate_run(
    spec: HomeSpec,
    *,
    days: int,
    seed: int,
    start: datetime | None = None,
    variation: float = 1.0,
    faults: Faults | None = None,
) -> list[SimEvent]:
    """Every event of ``days`` days of ``spec``'s household, sorted by time.

    Parameters
    ----------
    spec : HomeSpec
        The home (a preset or an installer's spec).
    days : int
        Length of the run in days.
    seed : int
        The same seed, spec, start and variation give identical events.
    start : datetime, optional
        Local midnight the run starts at (naive = the home's time zone). Defaults to
        2026-03-02, a Monday.
    variation : float, default=1.0
        Scales the hidden plumbing spread and the habit spread together.
    faults : Faults, optional
        A leaking toilet flapper and/or a valve left running (:class:`simulator.usage.Faults`);
        None (the default) gives exactly the run without them.
    """
    start_local = _local_start(spec, start)
    uses = schedule(
        spec,
        days=days,
        seed=seed,
        variation=variation,
        first_weekday=start_local.weekday(),
        faults=faults,
    )
    return render_uses(spec, uses, seed=seed, start=start_local, variation=variation)
