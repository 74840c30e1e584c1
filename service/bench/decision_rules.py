"""Estimators and display rules side by side, on the same homes and the same labels.

Each home (presets x seeds) is replayed once through ``atlas bench calibration``'s protocol
with the engine settings of the flags (default: the engine's own); then every rule in
:data:`RULES` re-estimates each day from the labels the home had by then and re-runs
:func:`atlas.levels.decide_level`. Reported per rule:
the lower bound's coverage per level, the mean lower bound at days 15, 22 and 29, the median
lag behind what the truth allows, and the false-promotion rate (docs/estimation.md).

    atlas bench decision-rules --json /tmp/rules.json       # 3 presets x seeds 1-5, ~8 min
    atlas bench decision-rules --presets apartment --seeds 1 2 --p-wrong 0.2

The labels are those the replay's own rule asked for (a finer level asks fewer questions per
round), so that rule's figures are exact (they equal ``atlas bench calibration``'s) and the
others' close.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import numpy as np

from atlas.day_one import DayOnePriors, load_day_one_priors
from atlas.domain import LEVELS
from atlas.engine.records import LabelRecord
from atlas.estimate import AccuracyEstimate, ScoredLabel, estimate_accuracy
from atlas.levels import LevelPolicy, LevelState, decide_level
from service.bench._conditions import (
    add_condition_arguments,
    describe_conditions,
    engine_config_from_args,
    homeowner_from_args,
)
from service.bench._promotion import REPORT_DAYS, promotion_summary
from service.bench.calibration import (
    ReplayHome,
    coverage_share,
    false_promotions,
    prepare_home,
    replay,
)
from simulator.presets import PRESETS


@dataclass(frozen=True)
class Rule:
    """How a day's estimates are made: the bound's confidence and the day-one prior's
    discrepancy (None: no day-one prior). ``true_answers`` scores every label against the
    simulator's truth instead of the homeowner's answer: what a perfect correction of the
    homeowner's slips could give at most."""

    name: str
    confidence: float
    discrepancy_sd: float | None
    prior_check: float | None = 0.05
    true_answers: bool = False
    policy: LevelPolicy = field(default_factory=LevelPolicy)


RULES: tuple[Rule, ...] = (
    Rule("ipw 95%", 0.95, None),
    Rule("ipw 90%", 0.90, None),
    Rule("ipw 80%", 0.80, None),
    Rule("day-one sd 0.03, 95%", 0.95, 0.03),
    Rule("day-one sd 0.05, 95%", 0.95, 0.05),
    Rule("day-one sd 0.03, 90%", 0.90, 0.03),
    Rule("day-one sd 0.05, 90%", 0.90, 0.05),
    Rule("day-one sd 0.05, 90%, unchecked", 0.90, 0.05, None),
    Rule("day-one sd 0.07, 90%", 0.90, 0.07),
    Rule("day-one sd 0.05, 80%", 0.80, 0.05),
    Rule("day-one sd 0.05, 90%, true answers", 0.90, 0.05, true_answers=True),
    Rule("day-one sd 0.05, 90%, demote margin 3 pts", 0.90, 0.05, policy=LevelPolicy(margin=0.03)),
    Rule("day-one sd 0.05, 90%, demote after 4", 0.90, 0.05, policy=LevelPolicy(demote_after=4)),
)


def scored_labels(labels: Sequence[LabelRecord], rule: Rule, home: ReplayHome) -> list[ScoredLabel]:
    """The sampled, scored labels, against the answers or (``rule.true_answers``) the truth."""
    scored = [r.scored for r in labels if r.source == "active" and r.scored is not None]
    if not rule.true_answers:
        return scored
    h = home.spec.hierarchy
    return [
        replace(s, true={lv: h.label_at(home.truth[s.use_id], lv) for lv in s.true}) for s in scored
    ]


def day_estimates(
    scored: Sequence[ScoredLabel],
    rule: Rule,
    table: DayOnePriors,
    layout: str,
    day: int,
) -> dict[str, AccuracyEstimate]:
    """The estimates of ``rule`` from the scored labels known on ``day``."""
    return {
        lv: estimate_accuracy(
            scored,
            lv,
            confidence=rule.confidence,
            prior=None
            if rule.discrepancy_sd is None
            else table.prior(layout, lv, day, rule.discrepancy_sd),
            prior_check=rule.prior_check,
        )
        for lv in LEVELS
    }


def rerun(
    days: Sequence[Mapping],
    labels: Sequence[LabelRecord],
    home: ReplayHome,
    rule: Rule,
    table: DayOnePriors,
    layout: str,
) -> list[dict]:
    """The replay's daily rows with ``rule``'s levels and bounds in place of the recorded ones."""
    state, out = LevelState(), []
    for row in days:
        day = row["day"]
        end = home.installed_at + timedelta(days=day)
        known = scored_labels([r for r in labels if r.at < end], rule, home)
        est = day_estimates(known, rule, table, layout, day)
        decision = decide_level(est, state, day=day, policy=rule.policy)
        state = decision.state
        out.append({**row, "level": decision.level, "lower": {lv: est[lv].lower for lv in LEVELS}})
    return out


def summarize(rows_per_home: Sequence[Sequence[Mapping]]) -> dict:
    """Coverage, mean lower bound at the report days, lag and false promotion of one rule."""
    fp = [false_promotions(list(days)) for days in rows_per_home]
    lower = {
        lv: {
            str(d): float(np.mean([days[d - 2]["lower"][lv] for days in rows_per_home]))
            for d in REPORT_DAYS[1:]
        }
        for lv in LEVELS
    }
    return {
        "coverage": coverage_share(rows_per_home),
        "mean_lower": lower,
        "promotion": promotion_summary(rows_per_home),
        "false_promotion": {lv: float(np.mean([f[lv] for f in fp])) for lv in LEVELS},
    }


def markdown(results: Mapping[str, Mapping]) -> str:
    lines = [
        "| rule | coverage cat / fix / valve | mean lower cat, days 15 / 22 / 29 "
        "| mean lower valve, days 15 / 22 / 29 | median lag cat / fix / valve (days) "
        "| false promotion cat / fix / valve |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cov = " / ".join(f"{r['coverage'][lv]:.1%}" for lv in LEVELS)
        low = {lv: " / ".join(f"{v:.3f}" for v in r["mean_lower"][lv].values()) for lv in LEVELS}
        lag = " / ".join(
            "-" if (m := r["promotion"][lv]["median_lag_days"]) is None else f"{m:g}"
            for lv in LEVELS
        )
        fp = " / ".join(f"{r['false_promotion'][lv]:.1%}" for lv in LEVELS)
        lines.append(f"| {name} | {cov} | {low['category']} | {low['valve']} | {lag} | {fp} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--homeowner-seed", type=int, default=0)
    add_condition_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    table = load_day_one_priors()
    homeowner = homeowner_from_args(args)
    config = engine_config_from_args(args)
    reruns: dict[str, list[list[dict]]] = {rule.name: [] for rule in RULES}
    homes = [(p, s) for p in args.presets for s in args.seeds]
    for preset, seed in tqdm(
        homes, desc="decision rules", file=sys.stderr, disable=args.no_progress
    ):
        home = prepare_home(preset, seed, args.days, args.variation)
        days, engine = replay(home, "atlas", args.days, homeowner, config=config)
        for rule in RULES:
            reruns[rule.name].append(rerun(days, engine.labels, home, rule, table, engine.layout))
    results = {name: summarize(rows) for name, rows in reruns.items()}
    print(f"{len(homes)} homes {homes}; replayed with {describe_conditions(args)}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0
