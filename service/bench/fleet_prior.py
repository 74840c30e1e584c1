"""Leave-one-home-out check of the fleet's accuracy prior on replayed homes.

Each home of a calibration run (``atlas bench calibration``) recorded, per day, its own
effective counts per level (``own_counts``, before any prior) and its trailing-7-day true
accuracy. For each home, the fleet prior is fitted from the *other* homes of its preset
(:class:`atlas.fleet.FleetAccuracyPrior`, their counts at the end of weeks 2-4, exactly what
:meth:`atlas.fleet.LocalHome.accuracy_counts` shares), and the home's bounds and display levels
are re-decided day by day under each prior (:func:`atlas.estimate.bound_from_counts`,
:func:`atlas.levels.decide_level`). Reported per prior and level: the bound's coverage of the
truth, the mean lower bound at days 15 / 22 / 29, false promotion, and the promotion lag.

Offline: the labels are those the run drew, so a display decided differently here would have
asked for slightly different labels in the service (the rounds ask 4, 3 or 2 questions by the
level shown). The ``day_one`` rows re-decide what the run itself did (the engine's default), a
check that this replay matches the engine.

    atlas bench calibration --presets apartment --seeds $(seq 101 120) --strategies margin \\
        --out /tmp/loho/apartment          # and the same for two_bath_house, three_bath_house
    atlas bench fleet-prior --details /tmp/loho/*/calibration_details.json --out /tmp/loho/prior
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from atlas.day_one import layout_key, load_day_one_priors
from atlas.domain import LEVELS
from atlas.engine import EngineConfig
from atlas.estimate import AccuracyEstimate, Prior, bound_from_counts
from atlas.fleet import AccuracyCount, FleetAccuracyPrior, FleetConfig
from atlas.levels import LevelPolicy, LevelState, decide_level
from service.bench._promotion import promotion_summary, promotion_table
from service.bench.calibration import (
    bound_coverage,
    coverage_share,
    false_promotions,
    runs_from_details,
)
from simulator.presets import load_preset

#: The priors compared: none, the day-one table, the fleet's (LOHO) as configured, the same
#: without its discrepancy (the homes' measurements taken at face value), the fleet's where it
#: has one else the day-one table (what the engine does with a fleet).
PRIORS: tuple[str, ...] = (
    "alone",
    "day_one",
    "fleet",
    "fleet_no_discrepancy",
    "fleet_then_day_one",
)
WEEKS = (2, 3, 4)
REPORT_ROWS = (14, 21, 28)  # the rows whose decisions are shown on days 15, 22, 29


def shared_counts(days: Sequence[Mapping]) -> list[AccuracyCount]:
    """What a home shares with the fleet: its own counts at the end of weeks 2-4."""
    by_day = {d["day"]: d for d in days}
    out = []
    for week in WEEKS:
        row = by_day.get(7 * week)
        for level in LEVELS if row else ():
            x, n = row["own_counts"][level]
            if n > 0:
                out.append(AccuracyCount(level, week, min(x, n), n))
    return out


def redecide(
    days: Sequence[Mapping],
    prior_of,
    config: EngineConfig,
    policy: LevelPolicy,
) -> list[dict]:
    """The home's daily rows with ``lower`` and ``level`` re-decided under ``prior_of(lv, day)``."""
    state = LevelState()
    out = []
    for d in days:
        estimates = {}
        for lv in LEVELS:
            x, n = d["own_counts"][lv]
            point, lower, prior, _ = bound_from_counts(
                x,
                n,
                method=config.estimate_method,
                confidence=config.confidence,
                prior=prior_of(lv, d["day"]),
                prior_check=config.prior_check,
            )
            estimates[lv] = AccuracyEstimate(
                lv, point, lower, 0, 0, n, config.estimate_method, config.confidence, prior
            )
        decision = decide_level(estimates, state, day=d["day"], policy=policy)
        state = decision.state
        lowers = {lv: estimates[lv].lower for lv in LEVELS}
        out.append({**d, "level": decision.level, "lower": lowers})
    return out


def prior_lookup(name: str, layout: str, fleets: Mapping[str, FleetAccuracyPrior], config):
    """``(level, day) -> prior or None`` for one of :data:`PRIORS`."""
    table = load_day_one_priors()

    def day_one(level: str, day: int) -> Prior | None:
        return table.prior(layout, level, day, config.day_one_discrepancy_sd)

    def from_fleet(key: str):
        fleet = fleets.get(key)
        return lambda lv, day: (
            None if fleet is None else fleet.prior(lv, (day - 1) // 7 + 1, layout)
        )

    return {
        "alone": lambda level, day: None,
        "day_one": day_one,
        "fleet": from_fleet("fleet"),
        "fleet_no_discrepancy": from_fleet("fleet_no_discrepancy"),
        "fleet_then_day_one": lambda lv, day: from_fleet("fleet")(lv, day) or day_one(lv, day),
    }[name]


def leave_one_out(
    runs: Sequence[Mapping], layout_of: Mapping[str, str], discrepancy_sd: float
) -> dict[str, list]:
    """Per prior, each home's re-decided daily rows (fleet: the other homes of its preset)."""
    config, policy = EngineConfig(), LevelPolicy()
    shared = {(r["preset"], r["seed"]): shared_counts(r["days"]) for r in runs}
    out: dict[str, list] = {name: [] for name in PRIORS}
    for r in runs:
        others = {
            f"{p}-{s}": c for (p, s), c in shared.items() if p == r["preset"] and s != r["seed"]
        }
        layout = layout_of[r["preset"]]
        layouts = dict.fromkeys(others, layout)
        fleets = {
            name: FleetAccuracyPrior(others, layouts=layouts, discrepancy_sd=sd)
            for name, sd in (("fleet", discrepancy_sd), ("fleet_no_discrepancy", 0.0))
            if others
        }
        for name in PRIORS:
            prior_of = prior_lookup(name, layout, fleets, config)
            out[name].append(redecide(r["days"], prior_of, config, policy))
    return out


def summarize(redecided: Mapping[str, list]) -> dict:
    out = {}
    for name, homes in redecided.items():
        counts = [bound_coverage(days) for days in homes]
        with_bound = {lv: sum(c[lv]["days"] for c in counts) for lv in LEVELS}
        fp = [false_promotions(days) for days in homes]
        out[name] = {
            "coverage": coverage_share(homes),
            "home_days_with_bound": with_bound,
            "mean_lower": {
                lv: {
                    str(day + 1): float(np.mean([_row(days, day)["lower"][lv] for days in homes]))
                    for day in REPORT_ROWS
                }
                for lv in LEVELS
            },
            "false_promotion": {lv: float(np.mean([f[lv] for f in fp])) for lv in LEVELS},
            "promotion": promotion_summary(homes),
        }
    return out


def _row(days: Sequence[Mapping], day: int) -> Mapping:
    return next((d for d in days if d["day"] == day), days[-1])


def markdown(summary: Mapping, n_homes: int) -> str:
    lines = [
        f"{n_homes} homes, leave-one-home-out within each preset",
        "",
        "| prior | level | coverage (home-days with a bound) | mean lower bound d15 / d22 / d29 "
        "| false promotion |",
        "|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        for lv in LEVELS:
            cov = s["coverage"][lv]
            cov_text = "-" if np.isnan(cov) else f"{cov:.1%}"
            lows = " / ".join(f"{v:.3f}" for v in s["mean_lower"][lv].values())
            lines.append(
                f"| {name} | {lv} | {cov_text} "
                f"({s['home_days_with_bound'][lv]}) | {lows} | {s['false_promotion'][lv]:.1%} |"
            )
    lines += ["", promotion_table({n: s["promotion"] for n, s in summary.items()})]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--details",
        nargs="+",
        type=Path,
        required=True,
        metavar="DETAILS_JSON",
        help="calibration_details.json files of `atlas bench calibration` runs (run one per "
        "preset, with many seeds: the fleet of a home is the other homes of its preset)",
    )
    parser.add_argument(
        "--discrepancy-sd",
        type=float,
        default=FleetConfig().accuracy_discrepancy_sd,
        help="the fleet prior's discrepancy (FleetConfig.accuracy_discrepancy_sd)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/fleet-prior"))
    parser.add_argument("--json", type=Path, default=None, help="write the summary JSON here")


def run(args: argparse.Namespace) -> int:
    runs = runs_from_details(args.details)
    missing = [f"{r['preset']} s{r['seed']}" for r in runs if "own_counts" not in r["days"][0]]
    if missing:
        print(
            f"{len(missing)} home(s) lack own_counts (recorded since this bench exists): "
            f"{missing[:3]}...; rerun atlas bench calibration",
            file=sys.stderr,
        )
        return 2
    layout_of = {
        p: layout_key(load_preset(p).hierarchy.category_of_fixture)
        for p in {r["preset"] for r in runs}
    }
    summary = summarize(leave_one_out(runs, layout_of, args.discrepancy_sd))
    text = markdown(summary, len(runs))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet_prior.md").write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
