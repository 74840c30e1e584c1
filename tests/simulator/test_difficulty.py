"""The difficulty calibration holds on the reference run (two_bath_house, seed 1)."""

from simulator.difficulty import FULL_RANGE, ONE_SHOT_MAX, calibrate
from simulator.generate import generate_run
from simulator.presets import load_preset


def test_reference_run_is_as_hard_as_real_homes():
    events = generate_run(load_preset("two_bath_house"), days=28, seed=1)
    report = calibrate(events)
    assert FULL_RANGE[0] <= report.split_accuracy <= FULL_RANGE[1], report
    assert report.one_shot_accuracy < ONE_SHOT_MAX, report
