"""The rule classifier on crafted uses: each rule fires where it should and nowhere else."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from atlas.transient import TransientFeatures
from atlas.uses import UseStatus, WaterUse
from rules import RULES, RuleClassifier, RuleConfig, UseView, build_views
from rules.config import ALL_CATEGORIES
from rules.table import Rule

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
SOLENOID, HAND, FLOAT = 0.005, 0.25, 1.0  # close rise times (s)
#: The hammer a close of each rise time makes (kPa): solenoids spike, hands and floats barely.
SURGE = {SOLENOID: 60.0, HAND: 6.0, FLOAT: 1.0}


def feats(kind: str, rise_s: float, step_kpa: float = 5.0, ring_hz: float = 30.0):
    sign = 1.0 if kind == "close" else -1.0
    return TransientFeatures(
        step_kpa=sign * step_kpa,
        kind=kind,
        baseline_kpa=400.0,
        surge_kpa=sign * SURGE.get(rise_s, 6.0),
        ring_hz=ring_hz,
        decay_per_s=10.0,
        rise_time_s=rise_s,
        onset_s=0.25,
        noise_kpa=0.05,
    )


def use(
    name: str,
    lines: tuple[str, ...],
    start_s: float,
    duration_s: float,
    close_rise_s: float,
    drop_kpa: float = 5.0,
    ring_hz: float = 30.0,
) -> UseView:
    record = WaterUse(
        use_id=f"u-{name}",
        home_id="h1",
        lines=lines,
        t_open=T0 + timedelta(seconds=start_s),
        t_close=T0 + timedelta(seconds=start_s + duration_s),
        status=UseStatus.PAIRED,
        open_event_ids=tuple(f"{name}-o-{ln}" for ln in lines),
        close_event_ids=tuple(f"{name}-c-{ln}" for ln in lines),
        drop_kpa=dict.fromkeys(lines, drop_kpa / len(lines)),
    )
    return UseView(
        record,
        tuple(feats("open", 0.05, ring_hz=ring_hz) for _ in lines),
        tuple(feats("close", close_rise_s, ring_hz=ring_hz) for _ in lines),
        {f"{name}-{kind}-{ln}": ln for kind in ("o", "c") for ln in lines},
    )


def fills(lines_per_fill: list[tuple[str, ...]], gap_s: float = 900.0) -> list[UseView]:
    """An appliance cycle: solenoid fills of 90 s every ``gap_s``."""
    return [
        use(f"fill{i}", lines, i * gap_s, 90.0, SOLENOID) for i, lines in enumerate(lines_per_fill)
    ]


def calibrated(precision: float = 0.95) -> tuple[Rule, ...]:
    """The rule table with every rule's precision set, so tests do not depend on calibration."""
    return tuple(replace(rule, precision=precision) for rule in RULES)


def classify(views: list[UseView], config: RuleConfig | None = None, precision: float = 0.95):
    return RuleClassifier(config, rules=calibrated(precision)).classify(views)


def test_washing_machine_cycle_with_cold_fills() -> None:
    decisions = classify(fills([("hot", "cold"), ("cold",), ("cold",), ("cold",)]))
    assert [d.category for d in decisions] == ["washing_machine"] * 4
    assert all(d.fired[0] == "washing_machine_cycle" for d in decisions)


def test_dishwasher_cycle_is_hot_only() -> None:
    decisions = classify(fills([("hot",)] * 4, gap_s=1200))
    assert [d.category for d in decisions] == ["dishwasher"] * 4
    assert decisions[0].fired[0] == "dishwasher_cycle"


def test_lone_solenoid_fill_is_not_an_appliance_cycle() -> None:
    (decision,) = classify([use("x", ("hot",), 0, 90, SOLENOID)])
    assert decision.category is None
    assert decision.fired == ()


def test_open_ended_use_has_no_duration_to_judge() -> None:
    view = use("s", ("hot", "cold"), 0, 480, HAND)
    record = replace(view.use, t_close=None, status=UseStatus.OPEN_ENDED, close_event_ids=())
    (decision,) = classify([UseView(record, view.open_features, ())])
    assert decision.category is None
    assert decision.explanation == "no rule fired: lines hot+cold, status open_ended"


def test_hand_closed_draw_with_small_hammer_is_not_a_solenoid() -> None:
    view = use("x", ("hot",), 0, 90, SOLENOID)
    weak = tuple(replace(f, surge_kpa=10.0) for f in view.close_features)  # < 15 kPa
    views = [UseView(view.use, view.open_features, weak), *fills([("hot",)] * 2)[1:]]
    assert classify(views)[0].category is None


def test_fills_far_apart_are_separate_cycles() -> None:
    views = [use("a", ("hot",), 0, 90, SOLENOID), use("b", ("hot",), 6 * 3600, 90, SOLENOID)]
    assert [d.category for d in classify(views)] == [None, None]


def test_hand_closed_draws_do_not_make_an_appliance_cycle() -> None:
    views = [use(f"f{i}", ("hot",), i * 600, 60, HAND) for i in range(4)]
    assert all(d.category != "dishwasher" for d in classify(views))


NO_TUB = RuleConfig(categories=ALL_CATEGORIES - {"bathtub"})


def test_shower_is_a_long_mixed_hand_closed_draw() -> None:
    (decision,) = classify([use("s", ("hot", "cold"), 0, 480, HAND)], NO_TUB)
    assert decision.category == "shower"
    assert decision.fired == ("shower_long_mixed_draw",)
    assert "the home has no mixing bathtub" in decision.explanation


def toilets(n: int = 3, drop_kpa: float = 7.0) -> list[UseView]:
    """Toilet refills late in the day: the home's flow reference."""
    return [use(f"t{i}", ("cold",), 50_000 + 600 * i, 60, FLOAT, drop_kpa) for i in range(n)]


@pytest.mark.parametrize(("drop_kpa", "expected"), [(2.5, "shower"), (9.5, "bathtub")])
def test_shower_and_bathtub_mixers_are_told_apart_by_flow(drop_kpa, expected) -> None:
    # toilets drop 7 kPa at 9 L/min; boundary 0.75 * 7 * (7.5 * 15) / 81 = 7.3 kPa
    views = [use("m", ("hot", "cold"), 0, 480, HAND, drop_kpa), *toilets()]
    decision = classify(views)[0]
    assert decision.category == expected
    assert "from the toilet refills" in decision.explanation


def test_mixed_draw_without_flow_reference_abstains() -> None:
    (decision,) = classify([use("m", ("hot", "cold"), 0, 480, HAND)])
    assert decision.category is None
    assert decision.fired == ()


def test_mixers_are_told_apart_by_pipe_ring_before_flow() -> None:
    config = RuleConfig(
        ring_hz={
            "shower/hot": (28.0,),
            "shower/cold": (32.0,),
            "bathtub/hot": (5.5,),
            "bathtub/cold": (6.3,),
        }
    )
    views = [use("m", ("hot", "cold"), 0, 480, HAND, drop_kpa=9.5, ring_hz=5.6), *toilets()]
    decision = classify(views, config)[0]
    assert decision.category == "bathtub"
    assert "rings fit the bathtub pipe runs" in decision.explanation


@pytest.mark.parametrize(
    ("lines", "duration_s", "rise_s"),
    [
        (("hot", "cold"), 60, HAND),  # too short
        (("hot",), 480, HAND),  # hot only
        (("hot", "cold"), 480, SOLENOID),  # a solenoid closed it
        (("hot", "cold"), 4 * 3600, HAND),  # far too long
    ],
)
def test_shower_rule_does_not_fire_outside_its_conditions(lines, duration_s, rise_s) -> None:
    (decision,) = classify([use("s", lines, 0, duration_s, rise_s)])
    assert "shower_long_mixed_draw" not in decision.fired


def test_toilet_is_a_cold_refill_with_a_slow_close() -> None:
    (decision,) = classify([use("t", ("cold",), 0, 70, FLOAT)])
    assert decision.category == "toilet"
    assert decision.fired == ("toilet_float_refill",)


@pytest.mark.parametrize(
    ("lines", "duration_s", "rise_s"),
    [(("cold",), 70, HAND), (("hot",), 70, FLOAT), (("cold",), 600, FLOAT), (("cold",), 5, FLOAT)],
)
def test_toilet_rule_does_not_fire_outside_its_conditions(lines, duration_s, rise_s) -> None:
    (decision,) = classify([use("t", lines, 0, duration_s, rise_s)])
    assert "toilet_float_refill" not in decision.fired


def test_short_draw_narrows_to_faucets_but_abstains_between_two() -> None:
    (decision,) = classify([use("f", ("cold",), 0, 15, HAND)])
    assert decision.category is None
    assert set(decision.candidates) == {"kitchen_faucet", "bathroom_faucet"}
    assert decision.explanation.startswith("unknown between")


def test_short_draw_is_decided_in_a_home_with_one_faucet_category() -> None:
    config = RuleConfig(categories=frozenset({"kitchen_faucet", "toilet", "shower"}))
    (decision,) = classify([use("f", ("cold",), 0, 15, HAND)], config)
    assert decision.category == "kitchen_faucet"


def test_low_precision_rule_abstains_with_its_reason() -> None:
    (decision,) = classify([use("s", ("hot", "cold"), 0, 480, HAND)], NO_TUB, precision=0.5)
    assert decision.category is None
    assert decision.fired == ("shower_long_mixed_draw",)
    assert "below min_precision" in decision.explanation
    assert decision.confidence == 0.5


def test_nothing_fired_is_unknown_with_a_description() -> None:
    (decision,) = classify([use("x", ("cold",), 0, 900, HAND)])
    assert decision == replace(decision, category=None, confidence=0.0, fired=())
    assert decision.explanation.startswith("no rule fired: lines cold")


def test_explanation_names_the_measured_values_and_thresholds() -> None:
    (decision,) = classify([use("t", ("cold",), 0, 70, FLOAT)])
    assert "toilet_float_refill" in decision.explanation
    assert "close rise 1.000 s >= 0.500 s" in decision.explanation
    assert "duration 70 s within [30, 240] s" in decision.explanation


def test_confidence_is_the_winning_rules_precision() -> None:
    (decision,) = classify([use("t", ("cold",), 0, 70, FLOAT)], precision=0.93)
    assert decision.confidence == pytest.approx(0.93)


def test_home_without_dishwasher_calls_a_hot_cycle_a_washing_machine() -> None:
    config = RuleConfig(categories=frozenset({"washing_machine", "shower", "toilet"}))
    decisions = classify(fills([("hot",)] * 3), config)
    assert [d.category for d in decisions] == ["washing_machine"] * 3
    assert "dishwasher_cycle" not in decisions[0].fired
    assert decisions[0].fired[0] == "hot_cycle_without_dishwasher"


def test_unmeasured_rule_abstains_by_default() -> None:
    config = RuleConfig(categories=frozenset({"washing_machine", "shower", "toilet"}))
    decisions = RuleClassifier(config).classify(fills([("hot",)] * 3))
    assert [d.category for d in decisions] == [None] * 3
    assert "below min_precision" in decisions[0].explanation


def test_fill_whose_ring_fits_a_faucet_is_not_a_washing_machine() -> None:
    config = RuleConfig(ring_hz={"washing_machine/cold": (100.0,), "kitchen_faucet/cold": (30.0,)})
    decisions = classify(fills([("cold",)] * 3), config)
    assert all(d.category is None for d in decisions)
    assert "washing_machine_cycle" not in decisions[0].fired


def test_home_without_washing_machine_never_says_washing_machine() -> None:
    config = RuleConfig(categories=frozenset({"dishwasher", "shower", "toilet"}))
    decisions = classify(fills([("hot", "cold"), ("cold",), ("cold",)]), config)
    assert all(d.category != "washing_machine" for d in decisions)


def test_disabled_rule_never_fires() -> None:
    config = RuleConfig(disabled_rules=frozenset({"toilet_float_refill"}))
    (decision,) = classify([use("t", ("cold",), 0, 70, FLOAT)], config)
    assert decision.category is None and decision.fired == ()


def test_config_from_home_spec_keeps_only_present_categories() -> None:
    from atlas.homespec import parse_home_spec

    spec = parse_home_spec(
        {
            "home_id": "h1",
            "name": "flat",
            "residents": 1,
            "static_pressure_kpa": 400,
            "sensors": {"hot": {"sensor_id": "hot"}, "cold": {"sensor_id": "cold"}},
            "fixtures": [
                {
                    "id": "wc",
                    "name": "toilet",
                    "category": "toilet",
                    "handle": "fill_valve",
                    "runs": {"cold": {"material": "pex", "length_m": 5}},
                    "closure_time_s": 1.6,
                },
                {
                    "id": "wm",
                    "name": "washer",
                    "category": "washing_machine",
                    "handle": "solenoid_pair",
                    "runs": {
                        "cold": {"material": "pex", "length_m": 5},
                        "hot": {"material": "pex", "length_m": 5},
                    },
                    "closure_time_s": 0.04,
                },
            ],
        }
    )
    config = RuleConfig.from_home_spec(spec)
    assert config.categories == {"toilet", "washing_machine"}
    assert config.mixing_categories == frozenset()  # the washer's solenoids are single-line
    assert config.flow_lpm["toilet"] == pytest.approx(9.0)  # the category default
    assert config.ring_hz["toilet/cold"] == pytest.approx((300.0 / 20,))  # PEX a/4L, 5 m
    assert RuleConfig.from_home_spec(spec, toilet_max_s=300).toilet_max_s == 300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"categories": frozenset({"sauna"})}, "unknown categories"),
        ({"shower_min_s": 0}, "shower_min_s=0"),
        ({"min_precision": 1.5}, "min_precision=1.5"),
        ({"toilet_min_s": 300}, "toilet_min_s=300"),
        ({"solenoid_max_rise_s": 0.9}, "solenoid_max_rise_s=0.9"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        RuleConfig(**kwargs)


def test_build_views_aligns_features_with_event_ids() -> None:
    view = use("s", ("hot", "cold"), 0, 480, HAND)
    features = dict(zip(view.use.open_event_ids, view.open_features, strict=True)) | dict(
        zip(view.use.close_event_ids, view.close_features, strict=True)
    )
    (built,) = build_views([view.use], features, view.event_lines)
    assert built == view and built.event_lines == view.event_lines
    with pytest.raises(KeyError, match="s-c-cold"):
        build_views([view.use], {k: v for k, v in features.items() if k != "s-c-cold"})


def test_view_refuses_misaligned_features() -> None:
    view = use("s", ("hot", "cold"), 0, 480, HAND)
    with pytest.raises(ValueError, match="close_features has 1 items"):
        UseView(view.use, view.open_features, view.close_features[:1])


def test_every_rule_in_the_table_has_a_reason_and_known_conditions() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(rule.reason and rule.conditions and rule.categories for rule in RULES)
    with pytest.raises(ValueError, match="unknown condition"):
        Rule("bad", ("no_such_condition",), ("toilet",), 0.9, "because")
