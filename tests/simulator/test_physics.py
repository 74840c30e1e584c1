"""simulator.physics: quarter-wave ringing, Joukowsky surge and its 1/Tc scaling."""

import itertools

import numpy as np
import pytest

from atlas.domain import Line, PipeMaterial
from atlas.transient import transient_features
from simulator import physics

RATE = 1000
PRE = 0.25


def _run(material: PipeMaterial, length_m: float, damping: float = 0.03) -> physics.RunAcoustics:
    return physics.RunAcoustics(
        wave_speed_m_s=physics.wave_speed(material),
        length_m=length_m,
        diameter_mm=12.7,
        damping_ratio=damping,
        transmission=0.35,
        branch_k=0.0,
    )


def _window(act: physics.Actuation, step_kpa: float, noise: float = 0.05) -> np.ndarray:
    """What a clean sensor records: 400 kPa, then one actuation at PRE."""
    tau = np.arange(int(1.75 * RATE)) / RATE - PRE
    rng = np.random.default_rng(0)
    return 400.0 + physics.transient_wave(tau, act, step_kpa) + rng.normal(0, noise, tau.size)


@pytest.mark.parametrize(
    ("material", "length_m"),
    [
        (PipeMaterial.COPPER, 5.0),
        (PipeMaterial.COPPER, 20.0),
        (PipeMaterial.CPVC, 8.0),
        (PipeMaterial.PEX, 5.0),
    ],
)
def test_ringing_is_at_the_quarter_wave_frequency(material, length_m):
    run = _run(material, length_m)
    act = physics.actuation_for(run, Line.COLD, "close", 0.0, flow_lpm=8.0, time_s=0.03)
    measured = transient_features(_window(act, 3.0), RATE, PRE).ring_hz
    expected = physics.WAVE_SPEED_M_S[material] / (4 * length_m)
    assert measured == pytest.approx(expected, rel=0.05)


def test_instant_closure_gives_joukowsky():
    a, dv = 1300.0, 0.5
    assert physics.hammer_kpa(a, dv, length_m=10.0, closure_s=0.001) == pytest.approx(
        physics.RHO_KG_M3 * a * dv / 1000.0
    )


def test_surge_scales_with_one_over_closure_time_past_the_round_trip():
    a, length = 1300.0, 10.0
    round_trip = 2 * length / a
    surges = [physics.hammer_kpa(a, 0.5, length, k * round_trip) for k in (2.0, 4.0, 8.0)]
    assert surges[0] / surges[1] == pytest.approx(2.0)
    assert surges[1] / surges[2] == pytest.approx(2.0)


def test_measured_surge_halves_when_a_slow_closure_takes_twice_as_long():
    run = _run(PipeMaterial.COPPER, 10.0)
    surges = []
    for closure_s in (0.1, 0.2):
        act = physics.actuation_for(run, Line.COLD, "close", 0.0, 6.0, closure_s)
        surges.append(transient_features(_window(act, 2.0), RATE, PRE).surge_kpa)
    assert surges[0] / surges[1] == pytest.approx(2.0, rel=0.15)


def test_quicker_closure_makes_a_larger_surge():
    run = _run(PipeMaterial.PEX, 8.0, damping=0.11)
    surges = []
    for closure_s in (1.0, 0.4, 0.15, 0.05):
        act = physics.actuation_for(run, Line.COLD, "close", 0.0, 6.0, closure_s)
        surges.append(transient_features(_window(act, 2.0), RATE, PRE).surge_kpa)
    assert all(b > a for a, b in itertools.pairwise(surges))


def test_opening_dips_less_than_closing_spikes():
    run = _run(PipeMaterial.COPPER, 8.0)
    close = physics.actuation_for(run, Line.HOT, "close", 0.0, 6.0, 0.3)
    opening = physics.actuation_for(run, Line.HOT, "open", 0.0, 6.0, 0.3)
    assert opening.surge_kpa < 0 < close.surge_kpa
    assert abs(opening.surge_kpa) < close.surge_kpa


def test_steady_drop_grows_with_flow_squared_and_is_shared():
    hydraulics = physics.Hydraulics(main_k=0.025, heater_k=0.025)
    one = hydraulics.steady_drop(Line.COLD, 0.0, 5.0, 0.0)
    two = hydraulics.steady_drop(Line.COLD, 0.0, 10.0, 0.0)
    assert two == pytest.approx(4 * one)
    # a hot-only flow still lowers the cold sensor through the shared service path
    assert hydraulics.steady_drop(Line.COLD, 10.0, 0.0, 0.0) > 0
    assert hydraulics.steady_drop(Line.HOT, 10.0, 0.0, 0.0) > hydraulics.steady_drop(
        Line.COLD, 10.0, 0.0, 0.0
    )


def test_plastic_rings_down_faster_per_cycle_than_copper():
    copper, pex = _run(PipeMaterial.COPPER, 10.0), _run(PipeMaterial.PEX, 10.0, damping=0.11)
    assert pex.decay_per_s / pex.ring_hz > copper.decay_per_s / copper.ring_hz


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="closure_s=0"):
        physics.hammer_kpa(1300.0, 0.5, 10.0, 0.0)
    with pytest.raises(ValueError, match="length_m=-1"):
        physics.quarter_wave_hz(1300.0, -1.0)
    with pytest.raises(ValueError, match="action='stop'"):
        physics.flow_fraction(np.zeros(3), 0.1, "stop")
