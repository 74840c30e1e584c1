"""Fleet transfer: K homes calibrated one after another, each from the fleet of the earlier ones.

For every held-out preset (leave-one-preset-out: the new home's layout was never seen), a fleet
of ``--fleet-size`` homes of the *other* presets (seeds from ``--fleet-seed``, plumbing
variation cycling 1.0 / 0.7 / 1.3) is calibrated in sequence through
:class:`atlas.engine.CalibrationEngine`, home i with ``fleet=build_fleet(homes < i)``. Then the
new homes (held-out preset, ``--seeds``) are calibrated once per ``--variants`` entry
(:data:`VARIANTS`): ``none`` (no fleet), ``fleet`` (fleet codebook kept, category evidence,
accuracy prior), ``fleet_refit`` (the same, but the home refits its own codebook at day 7 and
weekly, as without a fleet), ``fleet_checklist`` (plus stand-in examples and the shorter guided
checklist), ``fleet_checklist_noprior`` (without the accuracy prior), and the one-example
controls ``none_single`` and ``fleet_checklist_single``. The protocol and homeowner are those of
``atlas bench calibration``.

    atlas bench fleet-transfer --quick --json /tmp/fleet.json
    atlas bench fleet-transfer --held-out apartment --fleet-size 10 --seeds 1 2 3 4 5 \
        --out bench-out/fleet/apartment
    atlas bench fleet-transfer --merge a/fleet_details.json b/fleet_details.json --out merged

Reported (docs/fleet.md): labels needed until the trailing-7-day true accuracy first reaches
each goal, week-by-week true accuracy, false-promotion rate, for home 1 vs home K and for the
same new homes with vs without the fleet.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from atlas.checklist import ChecklistItem, build_checklist
from atlas.domain import LEVELS
from atlas.engine import CalibrationEngine, EngineConfig
from atlas.fleet import FleetConfig, FleetPrior, LocalHome, build_fleet
from atlas.levels import DISPLAY_LEVELS
from atlas.strategies import STRATEGIES
from service.bench._conditions import (
    add_condition_arguments,
    engine_config_from_args,
    homeowner_from_args,
)
from service.bench._promotion import plot_promotion, promotion_summary, promotion_table
from service.bench.calibration import (
    ReplayHome,
    bound_coverage,
    false_promotions,
    prepare_home,
    replay,
    weekly_rows,
)
from simulator.homeowner import Homeowner
from simulator.presets import PRESETS


@dataclass(frozen=True)
class Variant:
    """How a new home is calibrated: with or without the fleet, and which guided checklist.

    ``checklist``: "full" (:func:`atlas.checklist.build_checklist`), "fleet" (the items the
    fleet's stand-ins do not cover, :meth:`atlas.fleet.FleetPrior.checklist`); ``single``
    asks one example per remaining item (a control: does the checklist length alone matter?);
    ``accuracy``: the fleet's accuracy prior (a Beta mixture) in the estimates (applied only
    when earlier homes share the new home's layout, i.e. with ``--fleet-presets`` naming its
    preset).
    """

    fleet: bool
    standins: bool = False
    checklist: str = "full"
    single: bool = False
    refit: bool = True
    accuracy: bool = True
    baselines: tuple[str, ...] = ("none",)


VARIANTS: dict[str, Variant] = {
    "none": Variant(fleet=False, baselines=()),
    "fleet": Variant(fleet=True, refit=False),
    "fleet_refit": Variant(fleet=True),
    "fleet_checklist": Variant(fleet=True, standins=True, checklist="fleet"),
    "fleet_checklist_noprior": Variant(
        fleet=True, standins=True, checklist="fleet", accuracy=False, baselines=("none",)
    ),
    "none_single": Variant(fleet=False, single=True),
    "fleet_checklist_single": Variant(
        fleet=True, standins=True, checklist="fleet", single=True, baselines=("none", "none_single")
    ),
}
DEFAULT_VARIANTS = (
    "none",
    "fleet_refit",
    "fleet_checklist",
    "none_single",
    "fleet_checklist_single",
)
VARIATIONS = (1.0, 0.7, 1.3)
#: The seed's week-4 targets (Table 8-2).
WEEK4_TARGETS: dict[str, float] = {"valve": 0.81, "fixture": 0.89, "category": 0.93}
#: Goals whose labels-to-reach are reported: the first display goal, each week-4 target, and
#: all three week-4 targets on the same day ("the home reaches the targets").
GOALS: tuple[tuple[str, dict[str, float]], ...] = (
    ("category>=0.85", {"category": 0.85}),
    ("category>=0.93", {"category": 0.93}),
    ("fixture>=0.89", {"fixture": 0.89}),
    ("valve>=0.81", {"valve": 0.81}),
    ("week4_targets", WEEK4_TARGETS),
)


def with_checklist(home: ReplayHome, items: Sequence[ChecklistItem]) -> ReplayHome:
    """``home`` whose homeowner does only ``items`` of the guided checklist in week 1.

    The home's announcements are those of the full checklist (the first true uses of each
    item's valves, in order); ``items`` must be items of that checklist with at most their
    count, so keeping the first ``count`` announcements of each kept item is exactly what the
    homeowner would have announced.
    """
    full = {item.item_id: item for item in build_checklist(home.spec.fixtures)}
    quota: dict[tuple[str, str | None], int] = {}
    for item in items:
        if item.item_id not in full or item.count > full[item.item_id].count:
            raise ValueError(f"item {item.item_id!r} is not in the home's full checklist.")
        name = home.spec.valve(item.valve_ids[0]).name if len(item.valve_ids) == 1 else None
        quota[(item.fixture_id, name)] = item.count
    kept = []
    for a in home.announcements:
        key = (a.fixture_id, a.valve_name)
        if quota.get(key, 0) > 0:
            kept.append(a)
            quota[key] -= 1
    return replace(home, announcements=kept)


def variant_home(home: ReplayHome, variant: Variant, fleet: FleetPrior | None) -> ReplayHome:
    """The home with the variant's guided checklist."""
    if variant.checklist == "fleet":
        if fleet is None:
            raise ValueError("the 'fleet' checklist needs a fleet.")
        items = fleet.checklist(home.spec)
    else:
        items = build_checklist(home.spec.fixtures)
    items = [i for i in items if not i.optional]
    if variant.single:
        items = [replace(i, count=1) for i in items]
    return with_checklist(home, items)


def without_standins(fleet: FleetPrior) -> FleetPrior:
    """``fleet`` with stand-ins and the shortened checklist switched off (run 2's transfer)."""
    return replace(fleet, config=replace(fleet.config, use_standins=False))


def run_home(
    home: ReplayHome,
    *,
    strategy: str,
    days: int,
    homeowner: Homeowner,
    fleet: FleetPrior | None,
    refit_codebook: bool,
    config: EngineConfig | None = None,
) -> tuple[dict, CalibrationEngine]:
    """The calibration protocol of ``atlas bench calibration`` with an optional fleet."""
    daily, engine = replay(
        home, strategy, days, homeowner, fleet=fleet, refit_codebook=refit_codebook, config=config
    )
    out = {"preset": home.preset, "seed": home.seed, "days": daily}
    out["guided_asked"] = len(home.announcements)
    return out, engine


def labels_to_goals(days: list[dict]) -> dict[str, dict]:
    """Per goal: labels at the first day the trailing-7-day true accuracy reached it (from
    day 8, when the model has had a week of data), or None with the final label count.

    Also ``shown>=<level>``: labels at the first day the display level was that level or
    finer (what the estimator's lower bound costs; it spends no label of the goals above).
    """
    out = {}
    rows = [d for d in days if d["day"] >= 8]

    def entry(hit: dict | None) -> dict:
        return {
            "labels": None if hit is None else hit["labels"],
            "day": None if hit is None else hit["day"],
            "final_labels": days[-1]["labels"],
        }

    for name, goals in GOALS:
        hit = next((d for d in rows if all(d["window"][lv] >= g for lv, g in goals.items())), None)
        out[name] = entry(hit)
    for level in DISPLAY_LEVELS[1:]:
        rank = DISPLAY_LEVELS.index(level)
        hit = next((d for d in rows if DISPLAY_LEVELS.index(d["level"]) >= rank), None)
        out[f"shown>={level}"] = entry(hit)
    return out


def home_record(run: dict, *, role: str, variant: str, fleet_homes: int, held_out: str) -> dict:
    return {
        **{k: run[k] for k in ("preset", "seed")},
        "role": role,
        "variant": variant,
        "fleet_homes": fleet_homes,
        "held_out": held_out,
        "guided_asked": run.get("guided_asked"),
        "weeks": weekly_rows(run["days"]),
        "false_promotion": false_promotions(run["days"]),
        "coverage": bound_coverage(run["days"]),
        "to_goal": labels_to_goals(run["days"]),
        "days": run["days"],
    }


def run_held_out(args: argparse.Namespace, held_out: str, bar: object) -> list[dict]:
    """Fleet sequence of the other presets (or ``--fleet-presets``), then the held-out
    preset's new homes."""
    homeowner = homeowner_from_args(args)
    engine_config = engine_config_from_args(args)
    others = args.fleet_presets or [p for p in PRESETS if p != held_out]
    config = FleetConfig(random_state=args.fleet_seed)
    local: list[LocalHome] = []
    records = []
    for i in range(args.fleet_size):
        preset, seed = others[i % len(others)], args.fleet_seed + i
        home = prepare_home(preset, seed, args.days, VARIATIONS[i % len(VARIATIONS)])
        # the fleet homes keep run 2's protocol (full checklist, no stand-ins): their labels
        # are what the fleet measures its stand-ins on
        fleet = without_standins(build_fleet(local, config)) if local else None
        bar.set_postfix_str(f"held out {held_out}: fleet home {i + 1} ({preset} s{seed})")
        run, engine = run_home(
            home,
            strategy=args.strategy,
            days=args.days,
            homeowner=homeowner,
            fleet=fleet,
            refit_codebook=False,
            config=engine_config,
        )
        records.append(
            home_record(
                run,
                role=f"fleet_home_{i + 1}",
                variant="none" if fleet is None else "fleet",
                fleet_homes=len(local),
                held_out=held_out,
            )
        )
        local.append(
            LocalHome(
                f"{preset}-s{seed}",
                home.spec,
                home.installed_at,
                home.uses,
                home.events,
                engine.labels,
                home.features,
            )
        )
        bar.update()
    full = build_fleet(local, config)
    trust = full.trust
    trusted = {
        "alone": sorted(f"{c}:{'+'.join(ln)}" for c, ln in (trust.alone_ if trust else ())),
        "grouped": sorted(f"{c}:{'+'.join(ln)}" for c, ln in (trust.grouped_ if trust else ())),
    }
    for seed in args.seeds:
        home = prepare_home(held_out, seed, args.days, args.variation)
        for name in args.variants:
            variant = VARIANTS[name]
            fleet = None
            if variant.fleet:
                fleet = full if variant.standins else without_standins(full)
                if not variant.accuracy:
                    fleet = replace(fleet, config=replace(fleet.config, use_accuracy=False))
            bar.set_postfix_str(f"held out {held_out}: new home s{seed} {name}")
            run, _ = run_home(
                variant_home(home, variant, fleet),
                strategy=args.strategy,
                days=args.days,
                homeowner=homeowner,
                fleet=fleet,
                refit_codebook=variant.refit,
                config=engine_config,
            )
            record = home_record(
                run,
                role="new_home",
                variant=name,
                fleet_homes=0 if fleet is None else fleet.n_homes,
                held_out=held_out,
            )
            if variant.standins:
                record["trusted"] = trusted
            records.append(record)
            bar.update()
    return records


def _mean(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def group_records(records: list[dict]) -> dict[str, list[dict]]:
    """The reported groups: new homes per variant, fleet home 1 and the last fleet home."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if r["role"] == "new_home":
            groups.setdefault(f"new_home/{r['variant']}", []).append(r)
        elif r["role"] == "fleet_home_1":
            groups.setdefault("home_1 (no fleet)", []).append(r)
    last = max(
        (int(r["role"].rsplit("_", 1)[1]) for r in records if r["role"] != "new_home"), default=0
    )
    groups[f"fleet_home_{last} (fleet of {last - 1})"] = [
        r for r in records if r["role"] == f"fleet_home_{last}"
    ]
    return {name: rs for name, rs in groups.items() if rs}


def summarize(records: list[dict]) -> dict:
    """Means per group (:func:`group_records`)."""
    out = {}
    for name, rs in group_records(records).items():
        n_weeks = min(len(r["weeks"]) for r in rs)
        weeks = [
            {
                "week": rs[0]["weeks"][i]["week"],
                "labels": _mean([r["weeks"][i]["labels"] for r in rs]),
                "true": {lv: _mean([r["weeks"][i]["true"][lv] for r in rs]) for lv in LEVELS},
                "lower": {lv: _mean([r["weeks"][i]["lower"][lv] for r in rs]) for lv in LEVELS},
            }
            for i in range(n_weeks)
        ]
        goals = {}
        for key in rs[0]["to_goal"]:
            hits = [r["to_goal"][key] for r in rs]
            goals[key] = {
                "reached": sum(h["labels"] is not None for h in hits),
                "homes": len(hits),
                # censored at the final count when never reached: a lower bound on the need
                "labels_censored_mean": _mean(
                    [h["labels"] if h["labels"] is not None else h["final_labels"] for h in hits]
                ),
            }
        coverage = {}
        for lv in LEVELS:
            n = sum(r["coverage"][lv]["days"] for r in rs if "coverage" in r)
            hit = sum(r["coverage"][lv]["covered"] for r in rs if "coverage" in r)
            coverage[lv] = {"days": n, "share": hit / n if n else float("nan")}
        out[name] = {
            "homes": len(rs),
            "guided": _mean([r["days"][-1]["labels_by_source"].get("guided", 0) for r in rs]),
            "weeks": weeks,
            "to_goal": goals,
            "false_promotion": {lv: _mean([r["false_promotion"][lv] for r in rs]) for lv in LEVELS},
            "coverage": coverage,
            "promotion": promotion_summary([r["days"] for r in rs]),
        }
    out["paired_savings"] = paired_savings(records)
    return out


def paired_savings(records: list[dict]) -> dict:
    """Per goal, variant and baseline: label savings on the same new homes.

    Each variant is compared with its :attr:`Variant.baselines` (the home alone, and for the
    single-example checklist also the home alone with that checklist), over the homes where
    at least one of the two reached the goal (the other censored at its final count):
    ``1 - sum(labels with) / sum(labels of the baseline)``.
    """
    new = {(r["held_out"], r["seed"], r["variant"]): r for r in records if r["role"] == "new_home"}
    out: dict = {}
    present = {v for _, _, v in new}
    for variant in sorted(present):
        spec = VARIANTS.get(variant)
        for base in spec.baselines if spec is not None else ("none",):
            if base not in present or base == variant:
                continue
            for key in next(iter(new.values()))["to_goal"]:
                with_f, without = [], []
                for (held, seed, v), r in new.items():
                    if v != variant or (held, seed, base) not in new:
                        continue
                    a, b = r["to_goal"].get(key), new[(held, seed, base)]["to_goal"].get(key)
                    if a is None or b is None or (a["labels"] is None and b["labels"] is None):
                        continue
                    with_f.append(a["labels"] if a["labels"] is not None else a["final_labels"])
                    without.append(b["labels"] if b["labels"] is not None else b["final_labels"])
                out.setdefault(f"{variant} vs {base}", {})[key] = {
                    "homes": len(with_f),
                    "labels_with": float(np.sum(with_f)) if with_f else None,
                    "labels_without": float(np.sum(without)) if without else None,
                    "saving": 1 - np.sum(with_f) / np.sum(without) if without else None,
                }
    return out


def markdown(summary: dict) -> str:
    lines = [
        "| group | homes | week | labels | true valve | true fixture | true category "
        "| lower category |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        if name == "paired_savings":
            continue
        for w in s["weeks"]:
            t = w["true"]
            lines.append(
                f"| {name} | {s['homes']} | {w['week']} | {w['labels']:.1f} | {t['valve']:.1%} | "
                f"{t['fixture']:.1%} | {t['category']:.1%} | {w['lower']['category']:.1%} |"
            )
    lines += ["", "| group | goal | reached | mean labels (censored) |", "|---|---|---|---|"]
    for name, s in summary.items():
        if name == "paired_savings":
            continue
        for key, g in s["to_goal"].items():
            lines.append(
                f"| {name} | {key} | {g['reached']}/{g['homes']} | "
                f"{g['labels_censored_mean']:.1f} |"
            )
    lines += [
        "",
        "| group | guided labels | false promotion category / fixture / valve "
        "| bound coverage category / fixture / valve (home-days) |",
        "|---|---|---|---|",
    ]
    for name, s in summary.items():
        if name != "paired_savings":
            fp, cov = s["false_promotion"], s["coverage"]
            lines.append(
                f"| {name} | {s['guided']:.1f} | "
                + " / ".join(f"{fp[lv]:.1%}" for lv in LEVELS)
                + " | "
                + " / ".join(f"{cov[lv]['share']:.1%} ({cov[lv]['days']})" for lv in LEVELS)
                + " |"
            )
    lines += [
        "",
        "| variant vs baseline | goal | homes | labels with / baseline | saving |",
        "|---|---|---|---|---|",
    ]
    for variant, goals in summary["paired_savings"].items():
        for key, g in goals.items():
            if g["homes"]:
                lines.append(
                    f"| {variant} | {key} | {g['homes']} | {g['labels_with']:.0f} / "
                    f"{g['labels_without']:.0f} | {g['saving']:.1%} |"
                )
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--held-out", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--fleet-size", type=int, default=10, help="earlier homes (K - 1)")
    parser.add_argument("--fleet-seed", type=int, default=101, help="seed of the first fleet home")
    parser.add_argument(
        "--fleet-presets",
        nargs="+",
        default=None,
        choices=list(PRESETS),
        help="presets of the fleet homes (default: the presets other than the held-out one; "
        "naming the held-out preset is NOT leave-one-preset-out: it measures a same-layout "
        "fleet, where the layout-scoped accuracy prior applies)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--strategy", default="margin", choices=list(STRATEGIES))
    parser.add_argument(
        "--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS)
    )
    parser.add_argument("--homeowner-seed", type=int, default=0)
    add_condition_arguments(parser)
    parser.add_argument(
        "--quick", action="store_true", help="apartment held out, 2 fleet homes, 1 seed, 14 days"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/fleet"))
    parser.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, metavar="DETAILS_JSON")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.quick:
        args.held_out, args.fleet_size, args.seeds, args.days = ["apartment"], 2, [1], 14
        args.variants = ["none", "fleet", "fleet_checklist"]
    if args.fleet_size < 1:
        print(f"--fleet-size={args.fleet_size} should be >= 1", file=sys.stderr)
        return 2
    if args.merge:
        records = [r for p in args.merge for r in json.loads(p.read_text())["records"]]
        for r in records:  # derived from the daily rows, so older detail files get every metric
            r["to_goal"] = labels_to_goals(r["days"])
            r["coverage"] = bound_coverage(r["days"])
            r["false_promotion"] = false_promotions(r["days"])
    else:
        total = len(args.held_out) * (args.fleet_size + len(args.seeds) * len(args.variants))
        bar = tqdm(total=total, file=sys.stderr, disable=args.no_progress, desc="fleet")
        records = [r for held in args.held_out for r in run_held_out(args, held, bar)]
        bar.close()
    summary = summarize(records)
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(summary)
    groups = group_records(records)
    text += "\n\n" + promotion_table({n: summary[n]["promotion"] for n in groups}) + "\n"
    plot_promotion({n: [r["days"] for r in rs] for n, rs in groups.items()}, args.out)
    (args.out / "fleet.md").write_text(text, encoding="utf-8")
    (args.out / "fleet_details.json").write_text(
        json.dumps({"records": records}, indent=1), encoding="utf-8"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
