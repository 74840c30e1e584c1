"""``atlas serve`` sets its interpreter up for latency from its settings (docs/service.md)."""

from __future__ import annotations

import gc
import sys

import pytest

from service.gcpauses import FULL_COLLECTION_EVERY
from service.runtime.serve import configure_interpreter
from service.settings import SettingsError, load_settings


def test_switch_interval_and_collector_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("ATLAS_SWITCH_INTERVAL_MS", "0.25")
    settings = load_settings()
    switch, threshold = sys.getswitchinterval(), gc.get_threshold()
    try:
        configure_interpreter(settings)
        assert sys.getswitchinterval() == pytest.approx(0.00025)
        assert gc.get_threshold()[2] == FULL_COLLECTION_EVERY
        assert gc.get_freeze_count() > 10_000  # start-up's objects
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        sys.setswitchinterval(switch)


def test_the_default_switch_interval_is_a_tenth_of_a_millisecond():
    assert load_settings().switch_interval_ms == 0.1


@pytest.mark.parametrize("value", ["0", "-1", "101"])
def test_a_switch_interval_out_of_range_is_refused(monkeypatch, value):
    monkeypatch.setenv("ATLAS_SWITCH_INTERVAL_MS", value)
    with pytest.raises(SettingsError, match="switch_interval_ms"):
        load_settings()
