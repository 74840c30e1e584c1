"""The display's decision rule is the operator's setting, with the engine's defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atlas.engine import EngineConfig
from atlas.timetable import TimetablePolicy
from service.runtime.service import engine_config_from
from service.settings import Settings


def test_default_settings_give_the_engines_own_defaults():
    config = engine_config_from(Settings(), TimetablePolicy())
    assert config == EngineConfig(timetable=TimetablePolicy())


def test_an_operator_can_switch_the_day_one_prior_off_and_change_the_confidence():
    settings = Settings(day_one_prior=False, estimate_confidence=0.95, day_one_discrepancy_sd=0.1)
    config = engine_config_from(settings, TimetablePolicy())
    assert (config.day_one_prior, config.confidence, config.day_one_discrepancy_sd) == (
        False,
        0.95,
        0.1,
    )


@pytest.mark.parametrize(
    ("name", "value"), [("estimate_confidence", 1.0), ("day_one_discrepancy_sd", -0.01)]
)
def test_out_of_range_rule_settings_are_refused(name, value):
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
