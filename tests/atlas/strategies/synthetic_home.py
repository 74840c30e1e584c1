"""Synthetic homes for strategy tests: a real hierarchy, features in the atlas.features layout.

A module of its own (not conftest) so test files can import it by a unique name: several
conftest.py files exist, and `from conftest import ...` picks whichever was imported first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from spec_factory import fixture, home_spec

from atlas.domain import Category
from atlas.homespec import HomeSpec

N_BASE = 2 + len(Category)  # line columns + evidence columns


def small_home() -> HomeSpec:
    """Toilet, kitchen single-handle faucet, shower mixer, dishwasher: 8 valves."""
    run = {"material": "copper", "length_m": 6.0}
    fixtures = [
        ("toilet", "toilet", "fill_valve", {"cold": run}),
        ("kitchen", "kitchen_faucet", "single_handle", {"hot": run, "cold": run}),
        ("shower", "shower", "mixer", {"hot": run, "cold": run}),
        ("dishwasher", "dishwasher", "solenoid_hot", {"hot": run}),
    ]
    return home_spec([fixture(*f) for f in fixtures], name="synthetic")


@dataclass(frozen=True)
class SyntheticHome:
    spec: HomeSpec
    X: np.ndarray
    truth: np.ndarray  # valve id per row
    y: np.ndarray  # labels so far (None = unlabeled)


def synthetic_home(
    n_per_valve: int = 40, n_labeled_per_valve: int = 2, n_features: int = 6, seed: int = 0
) -> SyntheticHome:
    """Gaussian blobs per valve, plus the valve's line indicators and neutral rule evidence."""
    rng = np.random.RandomState(seed)
    spec = small_home()
    rows, truth, labeled = [], [], []
    for valve in spec.valves:
        center = rng.normal(0, 3, n_features)
        lines = [float("hot" in valve.lines), float("cold" in valve.lines)]
        for i in range(n_per_valve):
            rows.append([*lines, *np.ones(len(Category)), *(center + rng.normal(0, 1, n_features))])
            truth.append(valve.id)
            labeled.append(i < n_labeled_per_valve)
    truth_arr = np.array(truth, dtype=object)
    y = np.where(np.array(labeled), truth_arr, None)
    return SyntheticHome(spec, np.array(rows), truth_arr, y)
