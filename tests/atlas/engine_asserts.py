"""Assertions the engine tests share."""

from __future__ import annotations

import numpy as np


def assert_same_state(got: dict, expected: dict) -> None:
    """Two ``CalibrationEngine.snapshot()`` dicts hold the same state (arrays compared exactly)."""
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value)
        elif key == "projection":
            for k in ("components", "mean", "pca_components"):
                np.testing.assert_array_equal(got[key][k], value[k])
            assert got[key]["params"] == value["params"]
        else:
            assert got[key] == value, key
