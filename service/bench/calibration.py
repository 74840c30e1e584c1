"""28-day calibration protocol per label-selection strategy, through atlas.engine (Table 8-2).

Simulated homes (presets x seeds) are replayed through :class:`atlas.engine.CalibrationEngine`
in simulated time: the events are round-tripped through the wire encoding and paired
(:func:`atlas.pairing.pair_events`); uses are ingested as they complete; in week 1 the
simulated homeowner does the guided checklist (announces the first true use of each checklist
item's valves 20 s before it starts, matched by :func:`atlas.checklist.match_announcement`);
from day 8 the engine draws label requests at the day's last timetable slot and the
:class:`simulator.homeowner.Homeowner` answers them (20% never, 30% late, 10% wrong, 5% not
sure: the simulator's defaults), answers after expiry are lost. Each night the engine updates
its estimates and display level, and the run measures true accuracy against the simulator's
ground truth.

    atlas bench calibration --quick --json /tmp/cal.json
    atlas bench calibration --seeds 1 2 3 4 5 --out bench-out/calibration

Definitions (docs/benchmarks.md): week-N true accuracy = the end-of-week model on every use of
that week; a home-day (days 8-28) is a false promotion of level L when the display level is L
or finer while the model's true accuracy over the trailing 7 days fails one of L's goals.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from atlas.checklist import Announcement, build_checklist
from atlas.domain import LEVELS
from atlas.engine import NOT_SURE, CalibrationEngine, EngineConfig
from atlas.events import Event
from atlas.fleet import FleetPrior
from atlas.homespec import HomeSpec
from atlas.levels import DEFAULT_GOALS, DISPLAY_LEVELS
from atlas.pairing import pair_events
from atlas.strategies import STRATEGIES
from atlas.strategies.candidates import answerable
from atlas.transient import TransientFeatures
from atlas.uses import WaterUse
from service.bench._conditions import (
    add_condition_arguments,
    describe_conditions,
    engine_config_from_args,
    homeowner_from_args,
)
from service.bench._promotion import (
    home_promotion,
    plot_promotion,
    promotion_summary,
    promotion_table,
)
from service.bench.pairing import simulate
from simulator.homeowner import NOT_SURE as HOMEOWNER_NOT_SURE
from simulator.homeowner import Homeowner
from simulator.presets import PRESETS

ANNOUNCE_LEAD_S = 20.0  # the homeowner taps "I'm about to do it" this long before the use
WINDOW_DAYS = 7  # trailing window of the false-promotion test
OUTSIDE_REFERENCE = "skactiveml"

assert NOT_SURE == HOMEOWNER_NOT_SURE, "engine and simulated homeowner must share 'not sure'"


@dataclass(frozen=True)
class ReplayHome:
    """One simulated home as the service would receive it, with the ground truth aside."""

    preset: str
    seed: int
    spec: HomeSpec
    installed_at: datetime
    events: list[Event]
    uses: list[WaterUse]  # paired, sorted by completion time
    done_at: list[datetime]  # completion time of each use (close, or open for open-ended)
    features: dict[str, TransientFeatures]
    truth: dict[str, str]  # use id -> true valve (majority over its events)
    announcements: list[Announcement]  # week-1 guided checklist


def prepare_home(preset: str, seed: int, days: int, variation: float = 1.0) -> ReplayHome:
    """Simulate, pair, and derive the true valve per use and the week-1 announcements.

    ``variation`` scales the plumbing spread (1.3: the stress condition of docs/benchmarks.md).
    """
    sim = simulate(preset, days, seed, variation)
    pairing = pair_events(sim.events)
    tz = ZoneInfo(sim.spec.model.timezone)
    start_local = min(e.t for e in sim.events).astimezone(tz)
    installed_at = datetime.combine(start_local.date(), time(0), tz)
    done = [u.t_close or u.t for u in pairing.uses]
    order = sorted(range(len(pairing.uses)), key=lambda i: (done[i], pairing.uses[i].use_id))
    uses = [pairing.uses[i] for i in order]
    truth = {
        u.use_id: Counter(sorted(sim.truth[e]["valve"] for e in u.event_ids)).most_common(1)[0][0]
        for u in uses
    }
    return ReplayHome(
        preset,
        seed,
        sim.spec,
        installed_at,
        sim.events,
        uses,
        [done[i] for i in order],
        pairing.features,
        truth,
        _guided_announcements(sim.spec, sim.truth, sim.events, installed_at),
    )


def _guided_announcements(
    spec: HomeSpec, truth: dict[str, dict], events: list[Event], installed_at: datetime
) -> list[Announcement]:
    """The first true uses of each checklist item's valves in week 1, announced beforehand."""
    week1_end = installed_at + timedelta(days=7)
    opened: dict[str, datetime] = {}
    valve_of: dict[str, str] = {}
    for e in events:
        t = truth[e.event_id]
        if t["action"] == "open" and e.t < week1_end:
            uid = t["use_id"]
            opened[uid] = min(opened.get(uid, e.t), e.t)
            valve_of[uid] = t["valve"]
    true_uses = sorted(opened, key=lambda u: (opened[u], u))
    taken: set[str] = set()
    out = []
    for item in build_checklist(spec.fixtures):
        if item.optional:
            continue
        found = [u for u in true_uses if valve_of[u] in item.valve_ids and u not in taken]
        for uid in found[: item.count]:
            taken.add(uid)
            valve = spec.valve(valve_of[uid])
            name = valve.name if len(item.valve_ids) == 1 else None
            at = opened[uid] - timedelta(seconds=ANNOUNCE_LEAD_S)
            out.append(Announcement(item.fixture_id, name, at))
    return sorted(out, key=lambda a: a.at)


def _accuracy(pred: dict[str, str], truth: dict[str, str], ids: Sequence[str]) -> float:
    if not ids:
        return float("nan")
    return float(np.mean([pred.get(u) == truth[u] for u in ids]))


def _truth_at(spec: HomeSpec, home: ReplayHome, level: str) -> dict[str, str]:
    h = spec.hierarchy
    return {u: h.label_at(v, level) for u, v in home.truth.items()}


def run_home(
    home: ReplayHome,
    strategy: str,
    days: int,
    homeowner: Homeowner,
    config: EngineConfig | None = None,
) -> dict:
    """Replay one home through the engine with one strategy; per-day measurements."""
    daily, _ = replay(home, strategy, days, homeowner, config=config)
    return {"preset": home.preset, "seed": home.seed, "strategy": strategy, "days": daily}


def replay(
    home: ReplayHome,
    strategy: str,
    days: int,
    homeowner: Homeowner,
    *,
    fleet: FleetPrior | None = None,
    refit_codebook: bool = True,
    config: EngineConfig | None = None,
) -> tuple[list[dict], CalibrationEngine]:
    """The calibration protocol in simulated time: per-day measurements and the final engine.

    ``fleet`` starts the home from what earlier homes taught (``atlas bench fleet-transfer``);
    with a fleet codebook, ``refit_codebook=False`` keeps it instead of fitting the home's own.
    ``config``: the engine's settings (default ``EngineConfig()``); the strategy and the random
    state are the run's.
    """
    spec = home.spec
    factory = None
    if strategy == OUTSIDE_REFERENCE:  # scikit-activeml, imported only when asked for
        from service.bench._skactiveml import make_reference as factory
    engine = CalibrationEngine(
        spec,
        home.installed_at,
        replace(
            config or EngineConfig(),
            strategy="random" if factory else strategy,
            random_state=home.seed,
        ),
        strategy_factory=factory,
        fleet=None if fleet is None else fleet.for_home(spec),
    )
    by_event = {e.event_id: e for e in home.events}
    truth_lv = {lv: _truth_at(spec, home, lv) for lv in LEVELS}
    categories = {f: str(c) for f, c in spec.hierarchy.category_of_fixture.items()}
    for a in home.announcements:
        engine.announce(a, home.installed_at)
    next_use = 0
    answers: list[tuple[datetime, str, str | None]] = []  # (arrival, request id, choice)
    daily: list[dict] = []

    def ingest_until(t: datetime) -> None:
        nonlocal next_use
        batch = []
        while next_use < len(home.uses) and home.done_at[next_use] <= t:
            batch.append(home.uses[next_use])
            next_use += 1
        if batch:
            evs = [by_event[eid] for u in batch for eid in u.event_ids]
            engine.ingest(batch, evs, t, features=home.features)

    for day in range(1, days + 1):
        day_start = home.installed_at + timedelta(days=day - 1)
        day_end = home.installed_at + timedelta(days=day)
        slot = engine.round_time(day_start + timedelta(hours=12))
        if slot is not None and day_start <= slot < day_end:
            ingest_until(slot)
            for t, rid, choice in _pop_until(answers, slot):
                engine.record_answer(rid, choice, t)
            plan = engine.plan_round(slot)
            for req in plan.requests:
                use_truth = {
                    "use_id": req.use_id,
                    "valve": home.truth[req.use_id],
                    "fixture": truth_lv["fixture"][req.use_id],
                    "category": truth_lv["category"][req.use_id],
                }
                ans = homeowner.answer(use_truth, req.choices, categories)
                if ans.answered:
                    heapq.heappush(
                        answers, (slot + timedelta(seconds=ans.delay_s), req.request_id, ans.choice)
                    )
        for t, rid, choice in _pop_until(answers, day_end):
            ingest_until(t)
            engine.record_answer(rid, choice, t)
        ingest_until(day_end)
        own_codebook_allowed = fleet is None or fleet.initial_projection is None or refit_codebook
        if own_codebook_allowed and engine.codebook_due(day_end):
            seen = {eid for u in home.uses[:next_use] for eid in u.event_ids}
            engine.fit_codebook(
                [e for e in home.events if e.event_id in seen and e.t < day_end], day_end
            )
        report = engine.daily_update(day_end - timedelta(seconds=1))
        daily.append(_measure(engine, home, truth_lv, report, day, day_start, day_end))
    return daily, engine


def _pop_until(heap: list, t: datetime) -> list:
    out = []
    while heap and heap[0][0] <= t:
        out.append(heapq.heappop(heap))
    return out


def _measure(
    engine: CalibrationEngine,
    home: ReplayHome,
    truth_lv: dict[str, dict[str, str]],
    report: object,
    day: int,
    day_start: datetime,
    day_end: datetime,
) -> dict:
    """True accuracy of the model now, on this day, the trailing window and this week."""
    week_start = home.installed_at + timedelta(days=7 * ((day - 1) // 7))
    window_start = max(home.installed_at, day_end - timedelta(days=WINDOW_DAYS))
    spans = {"today": day_start, "window": window_start, "week": week_start}
    ids = {
        name: [u.use_id for u in home.uses if start <= u.t < day_end]
        for name, start in spans.items()
    }
    out: dict = {"day": day, "level": engine.level, "model_version": engine.model_version}
    preds = {lv: engine.predictions(lv) for lv in LEVELS}
    for lv in LEVELS:
        for name, use_ids in ids.items():
            out.setdefault(name, {})[lv] = _accuracy(preds[lv], truth_lv[lv], use_ids)
    # a use still running at day's end is not yet in
    window_ids = [u for u in ids["window"] if u in preds["valve"]]
    window_cls = engine.classify(window_ids) if window_ids else []
    top = {c.use_id: c.confidence for c in window_cls}
    out["askable"] = _askable_split(home, preds, top, truth_lv, window_ids, day_end)
    out["confidence"] = _mean_confidence(top, window_ids)  # the model's own, on the window
    est = report.estimates  # type: ignore[attr-defined]
    out["estimated"] = {lv: est[lv].point for lv in LEVELS}
    out["lower"] = {lv: est[lv].lower for lv in LEVELS}
    out["n_scored"] = {lv: est[lv].n_labels for lv in LEVELS}
    # the home's own effective counts, before any prior: what a fleet prior is checked against
    out["own_counts"] = {lv: [est[lv].successes, est[lv].n_effective] for lv in LEVELS}
    out["labels"] = len(engine.labels)
    out["labels_by_source"] = dict(report.n_labels)  # type: ignore[attr-defined]
    out["requests"] = len(engine.requests)
    return out


def _mean_confidence(top: dict[str, dict[str, float]], use_ids: Sequence[str]) -> dict:
    """Per level, the model's mean top probability on ``use_ids`` (NaN: none, or no model)."""
    rows = [top[u] for u in use_ids]
    return {
        lv: float(np.mean([t[lv] for t in rows])) if rows and rows[0] else float("nan")
        for lv in LEVELS
    }


def _askable_split(
    home: ReplayHome,
    preds: dict[str, dict[str, str]],
    top: dict[str, dict[str, float]],
    truth_lv: dict[str, dict[str, str]],
    window_ids: Sequence[str],
    day_end: datetime,
) -> dict:
    """The window's share of uses of the kind a homeowner can be asked about (paired, overlapping
    no other use), and the true accuracy and the model's mean top probability on them and on
    the rest.

    Labels only ever come from the first kind while the display claims all uses: where the two
    differ, a label-based estimate is biased however it was sampled (docs/estimation.md).
    """
    seen = home.uses[: bisect_right(home.done_at, day_end)]
    kind = answerable(seen, day_end, max_age=day_end - home.installed_at + timedelta(days=1))
    askable = {seen[i].use_id for i in kind}
    split = {
        "askable": [u for u in window_ids if u in askable],
        "other": [u for u in window_ids if u not in askable],
    }
    out: dict = {"share": len(split["askable"]) / len(window_ids) if window_ids else float("nan")}
    out["confidence"] = {}
    for name, use_ids in split.items():
        out[name] = {lv: _accuracy(preds[lv], truth_lv[lv], use_ids) for lv in LEVELS}
        out["confidence"][name] = _mean_confidence(top, use_ids)
    return out


def askable_summary(days_per_home: Sequence[Sequence[dict]], first_day: int = 8) -> dict:
    """Mean over home-days (from ``first_day``) of the askable share, of the trailing-7-day
    true accuracy on askable uses, on the others and on all, and of the model's confidence on
    the askable and the other uses (:func:`_askable_split`)."""
    rows = [d for days in days_per_home for d in days if d["day"] >= first_day]
    accuracy = {
        "askable": [d["askable"]["askable"] for d in rows],
        "other": [d["askable"]["other"] for d in rows],
        "all": [d["window"] for d in rows],
        "confidence_askable": [d["askable"]["confidence"]["askable"] for d in rows],
        "confidence_other": [d["askable"]["confidence"]["other"] for d in rows],
    }
    return {
        "share": float(np.nanmean([d["askable"]["share"] for d in rows])),
        **{
            name: {lv: float(np.nanmean([r[lv] for r in per_day])) for lv in LEVELS}
            for name, per_day in accuracy.items()
        },
    }


def false_promotions(days: list[dict], first_day: int = 8) -> dict[str, float]:
    """Share of home-days (from ``first_day``) showing level L or finer while failing L's goals."""
    out = {}
    rows = [d for d in days if d["day"] >= first_day]
    for level in LEVELS:
        rank = DISPLAY_LEVELS.index(level)
        bad = 0
        for d in rows:
            shown = DISPLAY_LEVELS.index(d["level"]) >= rank
            fails = any(d["window"][lv] < goal for lv, goal in DEFAULT_GOALS[level].items())
            bad += shown and fails
        out[level] = bad / len(rows) if rows else float("nan")
    return out


def bound_coverage(days: list[dict], first_day: int = 8) -> dict[str, dict[str, int]]:
    """Per level: home-days (from ``first_day``) with a non-zero lower bound, and how many of
    them had the trailing-7-day true accuracy at or above it (the bound's coverage)."""
    rows = [d for d in days if d["day"] >= first_day]
    out = {}
    for lv in LEVELS:
        bounded = [d for d in rows if d["lower"][lv] > 0 and not np.isnan(d["window"][lv])]
        out[lv] = {
            "days": len(bounded),
            "covered": sum(d["window"][lv] >= d["lower"][lv] for d in bounded),
        }
    return out


def coverage_share(days_per_home: Sequence[Sequence[dict]]) -> dict[str, float]:
    """Per level, over homes: the share of bounded home-days covered (:func:`bound_coverage`)."""
    counts = [bound_coverage(list(days)) for days in days_per_home]
    out = {}
    for lv in LEVELS:
        n = sum(c[lv]["days"] for c in counts)
        out[lv] = sum(c[lv]["covered"] for c in counts) / n if n else float("nan")
    return out


def weekly_rows(days: list[dict]) -> list[dict]:
    """End-of-week rows (days 7, 14, 21, 28) of one home's run."""
    return [
        {
            "week": d["day"] // 7,
            "labels": d["labels"],
            "true": dict(d["week"]),
            "estimated": dict(d["estimated"]),
            "lower": dict(d["lower"]),
            "n_scored": dict(d["n_scored"]),
            "level": d["level"],
        }
        for d in days
        if d["day"] % 7 == 0
    ]


def _json_level(level: str) -> str:
    """The JSON contract has no "rule_categories": it is the category level, 3 categories."""
    return "category" if level == "rule_categories" else level


def summarize(runs: list[dict]) -> dict:
    """Means over homes per strategy: the contract JSON and the per-home details."""
    by_strategy: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        by_strategy[r["strategy"]].append(r)
    contract: dict = {"strategies": {}}
    details: dict = {"strategies": {}}
    for name, homes in by_strategy.items():
        weeks_per_home = [weekly_rows(h["days"]) for h in homes]
        n_weeks = min(len(w) for w in weeks_per_home)
        weeks, detail_weeks = [], []
        for i in range(n_weeks):
            rows = [w[i] for w in weeks_per_home]
            mean = {
                key: {lv: float(np.nanmean([r[key][lv] for r in rows])) for lv in LEVELS}
                for key in ("true", "estimated", "lower", "n_scored")
            }
            levels = Counter(r["level"] for r in rows)
            top = max(levels.values())
            level = min((lv for lv, c in levels.items() if c == top), key=DISPLAY_LEVELS.index)
            labels = float(np.mean([r["labels"] for r in rows]))
            weeks.append(
                {
                    "week": rows[0]["week"],
                    "labels": labels,
                    "true": mean["true"],
                    "estimated": mean["estimated"],
                    "level": _json_level(level),
                }
            )
            detail_weeks.append(
                {
                    **weeks[-1],
                    "lower": mean["lower"],
                    "n_scored": mean["n_scored"],
                    "levels": dict(levels),
                }
            )
        fp = [false_promotions(h["days"]) for h in homes]
        false_promotion = {lv: float(np.mean([f[lv] for f in fp])) for lv in LEVELS}
        promotion = promotion_summary([h["days"] for h in homes])
        coverage = coverage_share([h["days"] for h in homes])
        contract["strategies"][name] = {
            "weeks": weeks,
            "false_promotion": false_promotion,
            "promotion": promotion,
            "coverage": coverage,
        }
        details["strategies"][name] = {
            "weeks": detail_weeks,
            "false_promotion": false_promotion,
            "promotion": promotion,
            "coverage": coverage,
            "askable": askable_summary([h["days"] for h in homes]),
            "askable_by_preset": {
                preset: askable_summary([h["days"] for h in homes if h["preset"] == preset])
                for preset in sorted({h["preset"] for h in homes})
            },
            "homes": [
                {
                    "preset": h["preset"],
                    "seed": h["seed"],
                    "weeks": weekly_rows(h["days"]),
                    "false_promotion": false_promotions(h["days"]),
                    "promotion": home_promotion(h["days"]),
                    "days": h["days"],
                }
                for h in homes
            ],
        }
    return {"contract": contract, "details": details}


def table(name: str, summary: dict) -> str:
    """A Table 8-2-style markdown table of one strategy."""
    s = summary["details"]["strategies"][name]
    lines = [
        f"### {name}",
        "",
        "| week | labels | true valve | true fixture | true category | est. valve (>= lower) "
        "| est. fixture (>= lower) | est. category (>= lower) | level shown (homes) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in s["weeks"]:
        est = " | ".join(  # week 1 has no sampled label: no estimate, not an estimate of 0
            f"{w['estimated'][lv]:.1%} (>= {w['lower'][lv]:.1%}, n {w['n_scored'][lv]:.0f})"
            if w["n_scored"][lv]
            else "- (n 0)"
            for lv in ("valve", "fixture", "category")
        )
        levels = ", ".join(f"{lv} {c}" for lv, c in sorted(w["levels"].items()))
        lines.append(
            f"| {w['week']} | {w['labels']:.1f} | {w['true']['valve']:.1%} | "
            f"{w['true']['fixture']:.1%} | {w['true']['category']:.1%} | {est} | {levels} |"
        )
    fp, cov, ask = s["false_promotion"], s["coverage"], s["askable"]
    lines += [
        "",
        "False promotions (share of home-days 8-28): "
        + ", ".join(f"{lv} {fp[lv]:.1%}" for lv in LEVELS),
        "Lower-bound coverage (home-days 8-28 with a bound): "
        + ", ".join(f"{lv} {cov[lv]:.1%}" for lv in LEVELS),
        f"Uses one can be asked about (paired, overlapping none): {ask['share']:.1%} of the "
        "trailing 7 days; their true accuracy / the others' / all uses': "
        + ", ".join(
            f"{lv} {ask['askable'][lv]:.1%} / {ask['other'][lv]:.1%} / {ask['all'][lv]:.1%}"
            for lv in LEVELS
        )
        + "; the model's mean top probability on them / on the others: "
        + ", ".join(
            f"{lv} {ask['confidence_askable'][lv]:.1%} / {ask['confidence_other'][lv]:.1%}"
            for lv in LEVELS
        ),
        "",
        promotion_table({name: s["promotion"]}),
        "",
    ]
    return "\n".join(lines)


def plot_curves(summary: dict, out: Path) -> list[Path]:
    """Mean daily true accuracy (solid) and estimated lower bound (dotted) per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for lv in LEVELS:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, s in summary["details"]["strategies"].items():
            days = [d["day"] for d in s["homes"][0]["days"]]
            true = np.nanmean([[d["window"][lv] for d in h["days"]] for h in s["homes"]], axis=0)
            lower = np.mean([[d["lower"][lv] for d in h["days"]] for h in s["homes"]], axis=0)
            (line,) = ax.plot(days, true, label=f"{name} true (7-day)")
            ax.plot(days, lower, ":", color=line.get_color(), label=f"{name} est. lower bound")
        for display, goals in DEFAULT_GOALS.items():
            if lv in goals:
                ax.axhline(goals[lv], color="grey", lw=0.5)
                ax.text(days[0], goals[lv], f" goal to show {display}", fontsize=7, va="bottom")
        ax.set(xlabel="day", ylabel=f"{lv} accuracy", ylim=(0, 1), title=f"{lv} level")
        ax.legend(fontsize=7, loc="lower right")
        path = out / f"learning_{lv}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--seed", type=int, default=None, help="one seed (overrides --seeds)")
    parser.add_argument("--days", type=int, default=28, help="simulated days")
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=[*STRATEGIES, OUTSIDE_REFERENCE],
        choices=[*STRATEGIES, OUTSIDE_REFERENCE],
    )
    parser.add_argument(
        "--quick", action="store_true", help="one preset (two_bath_house), one seed, 28 days"
    )
    parser.add_argument("--homeowner-seed", type=int, default=0, help="simulated homeowner seed")
    add_condition_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-out/calibration"))
    parser.add_argument("--json", type=Path, default=None, help="write the contract JSON here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="DETAILS_JSON",
        help="only re-summarize the calibration_details.json of earlier (e.g. parallel) runs",
    )


def runs_from_details(paths: Sequence[Path]) -> list[dict]:
    """The per-home runs stored in calibration_details.json files (for ``--merge``)."""
    runs = []
    for path in paths:
        details = json.loads(path.read_text(encoding="utf-8"))
        for name, s in details["strategies"].items():
            runs += [
                {"preset": h["preset"], "seed": h["seed"], "strategy": name, "days": h["days"]}
                for h in s["homes"]
            ]
    return runs


def write_outputs(runs: list[dict], args: argparse.Namespace, header: str) -> None:
    summary = summarize(runs)
    strategies = list(summary["details"]["strategies"])
    args.out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(table(name, summary) for name in strategies)
    (args.out / "calibration.md").write_text(header + text, encoding="utf-8")
    (args.out / "calibration_details.json").write_text(
        json.dumps(summary["details"], indent=1), encoding="utf-8"
    )
    plots = plot_curves(summary, args.out)
    plots += plot_promotion(
        {n: [h["days"] for h in s["homes"]] for n, s in summary["details"]["strategies"].items()},
        args.out,
    )
    if args.json:
        args.json.write_text(json.dumps(summary["contract"], indent=1), encoding="utf-8")
    print(header + text)
    print(f"wrote {args.out / 'calibration.md'}, details JSON and {len(plots)} plots")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.merge:
        runs = runs_from_details(args.merge)
        homes = sorted({(r["preset"], r["seed"]) for r in runs})
        write_outputs(runs, args, f"merged {len(homes)} homes: {homes}\n\n")
        return 0
    presets = ["two_bath_house"] if args.quick else args.presets
    seeds = [args.seed] if args.seed is not None else args.seeds
    if args.quick:
        seeds = seeds[:1]
    strategies = args.strategies
    homeowner = homeowner_from_args(args)
    config = engine_config_from_args(args)
    runs = []
    bar = tqdm(
        total=len(presets) * len(seeds) * len(strategies),
        file=sys.stderr,
        disable=args.no_progress,
        desc="calibration",
    )
    for preset in presets:
        for seed in seeds:
            home = prepare_home(preset, seed, args.days, args.variation)
            for name in strategies:
                bar.set_postfix_str(f"{preset} seed {seed} {name}")
                runs.append(run_home(home, name, args.days, homeowner, config))
                bar.update()
    bar.close()
    header = f"presets {presets}, seeds {seeds}, {args.days} days; {describe_conditions(args)}\n\n"
    write_outputs(runs, args, header)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
