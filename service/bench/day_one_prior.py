"""Fit the day-one accuracy prior (:mod:`atlas.day_one`) on simulated homes of each layout class.

Each preset's homes (seeds disjoint from the benchmarks' 1-5) are replayed through the
calibration protocol of ``atlas bench calibration`` without any prior, and their trailing-7-day
TRUE accuracy per level and day is fitted by the method of moments (:func:`fit_moments`).

    atlas bench day-one-prior --jobs 2 --write         # regenerates atlas/data/day_one_priors.json
    atlas bench day-one-prior --presets apartment --seeds 101 102 --out /tmp/prior.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from importlib import resources
from pathlib import Path

from atlas.day_one import TABLE_FILE, DayOnePriors, fit_moments, layout_key
from atlas.domain import LEVELS
from atlas.engine import EngineConfig
from service.bench.calibration import prepare_home, replay
from simulator.homeowner import Homeowner
from simulator.presets import PRESETS, load_preset

FIRST_DAY = 8
DEFAULT_SEEDS = tuple(range(101, 111))


def home_accuracies(preset: str, seed: int, days: int) -> list[dict[str, float]]:
    """Per day (index 0 = day 1): the trailing-7-day true accuracy per level, no prior used."""
    home = prepare_home(preset, seed, days)
    config = replace(EngineConfig(), day_one_prior=False)
    daily, _ = replay(home, "atlas", days, Homeowner(seed=0), config=config)
    return [dict(d["window"]) for d in daily]


def fit_table(
    runs: dict[str, list[list[dict[str, float]]]], *, min_sd: float, first_day: int = FIRST_DAY
) -> DayOnePriors:
    """``runs``: per layout key, each home's daily accuracies; one prior per level and day."""
    table: dict = defaultdict(dict)
    for layout, homes in runs.items():
        n_days = min(len(h) for h in homes)
        for level in LEVELS:
            table[layout][level] = {
                day: fit_moments([h[day - 1][level] for h in homes], min_sd=min_sd)
                for day in range(first_day, n_days + 1)
            }
    return DayOnePriors(table)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--min-sd", type=float, default=0.02, help="floor of the spread")
    parser.add_argument("--jobs", type=int, default=1, help="homes replayed in parallel")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--out", type=Path, default=None, help="write the table here")
    out.add_argument(
        "--write", action="store_true", help=f"replace the shipped atlas/data/{TABLE_FILE}"
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if len(args.seeds) < 2:
        print("--seeds: a prior needs at least 2 homes per preset", file=sys.stderr)
        return 2
    jobs = [(p, s) for p in args.presets for s in args.seeds]
    runs: dict[str, list] = defaultdict(list)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(home_accuracies, p, s, args.days) for p, s in jobs]
        for (preset, _), fut in tqdm(
            zip(jobs, futures, strict=True), total=len(jobs), desc="day-one prior", file=sys.stderr
        ):
            runs[layout_key(load_preset(preset).hierarchy.category_of_fixture)].append(fut.result())
    table = fit_table(runs, min_sd=args.min_sd)
    text = json.dumps(table.to_dict(), indent=1) + "\n"
    path = args.out
    if args.write:
        path = Path(str(resources.files("atlas.data").joinpath(TABLE_FILE)))
    if path is not None:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    for layout in table.layouts:
        for level in LEVELS:
            m = [table.moments(layout, level, d) for d in (8, 15, 22, args.days)]
            cells = ", ".join(f"{p.mean:.3f} (n={p.strength:.0f})" for p in m if p)
            print(f"{layout} {level}: days 8/15/22/{args.days} mean (strength) {cells}")
    return 0
