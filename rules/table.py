"""The rules, as data: an ordered decision list of named conjunctions of conditions.

The first rule whose conditions all hold decides; the rules after it are still evaluated so the
decision can say which others agreed or disagreed. A rule names the categories it points to:
one category is a verdict, several a narrowing ("a faucet, kitchen or bathroom") that becomes a
verdict only in a home with just one of them. ``precision`` is the rule's precision measured by
``atlas bench rules --calibrate --seeds 11 12 13`` (3 presets x 7 days; the evaluation uses seeds
1-5, see ``docs/rules.md``); a rule below the configured ``min_precision`` abstains: it reports
"unknown" and says why. A rule never measured has precision 0.0 and so always abstains.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.conditions import CONDITIONS


@dataclass(frozen=True)
class Rule:
    """One named rule: when every condition holds, the use is of one of ``categories``."""

    name: str
    conditions: tuple[str, ...]
    categories: tuple[str, ...]
    precision: float
    reason: str

    def __post_init__(self) -> None:
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"rule {self.name!r}: unknown condition(s) {unknown}.")
        if not 0 <= self.precision <= 1:
            raise ValueError(f"rule {self.name!r}: precision={self.precision} not in [0, 1].")


RULES: tuple[Rule, ...] = (
    Rule(
        name="washing_machine_cycle",
        conditions=(
            "solenoid_close",
            "fill_length",
            "appliance_cycle",
            "cycle_draws_cold",
            "ring_fits_washing_machine",
        ),
        categories=("washing_machine",),
        precision=0.978,
        reason="several solenoid fills within a couple of hours, some of them cold: only a "
        "washing machine has a cold inlet solenoid and a multi-fill programme",
    ),
    Rule(
        name="dishwasher_cycle",
        conditions=(
            "solenoid_close",
            "fill_length",
            "appliance_cycle",
            "cycle_hot_only",
            "ring_fits_dishwasher",
        ),
        categories=("dishwasher",),
        precision=1.0,
        reason="several short solenoid fills on the hot line only: a dishwasher's single hot "
        "inlet through its wash and rinse phases",
    ),
    Rule(
        name="dishwasher_fill_by_ring",
        conditions=(
            "solenoid_close",
            "fill_length",
            "appliance_cycle",
            "hot_only",
            "ring_prefers_dishwasher",
        ),
        categories=("dishwasher",),
        precision=0.818,
        reason="a hot solenoid fill whose ringing fits the dishwasher's pipe run, not the "
        "washing machine's, when both run in the same hours",
    ),
    Rule(
        name="hot_cycle_without_dishwasher",
        conditions=(
            "solenoid_close",
            "fill_length",
            "appliance_cycle",
            "cycle_hot_only",
            "home_without_dishwasher",
        ),
        categories=("washing_machine",),
        precision=0.0,  # unmeasured: every preset has a dishwasher, so it abstains
        reason="a hot-only solenoid cycle in a home with no dishwasher: a hot wash",
    ),
    Rule(
        name="shower_long_mixed_draw",
        conditions=("manual_close", "both_lines", "shower_length", "mixer_is_shower"),
        categories=("shower",),
        precision=0.918,
        reason="a hand-closed draw of several minutes mixing hot and cold at a shower's flow",
    ),
    Rule(
        name="bathtub_long_mixed_draw",
        conditions=("manual_close", "both_lines", "shower_length", "mixer_is_bathtub"),
        categories=("bathtub",),
        precision=0.929,
        reason="a hand-closed mixed draw of several minutes at a bath spout's higher flow",
    ),
    Rule(
        name="toilet_float_refill",
        conditions=("slow_close", "cold_only", "toilet_length"),
        categories=("toilet",),
        precision=0.986,
        reason="a cold-only refill of a minute or so that shuts slowly as a float rises",
    ),
    Rule(
        name="faucet_short_draw",
        conditions=("manual_close", "short_draw"),
        categories=("kitchen_faucet", "bathroom_faucet"),
        precision=0.985,
        reason="a short hand-closed draw: a faucet",
    ),
)
