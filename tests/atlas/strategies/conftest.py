"""Fixtures for strategy tests (the synthetic home itself lives in synthetic_home.py)."""

from __future__ import annotations

import pytest
from synthetic_home import SyntheticHome, synthetic_home

from atlas.classifier import HierarchicalClassifier


@pytest.fixture
def home() -> SyntheticHome:
    return synthetic_home()


@pytest.fixture
def fitted(home: SyntheticHome) -> HierarchicalClassifier:
    return HierarchicalClassifier.for_home(home.spec, random_state=0).fit(home.X, home.y)
