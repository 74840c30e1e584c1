"""Water use in litres (atlas.volume) and leak alerts (atlas.alerts) against simulator truth.

Volume, per preset and seed: simulate ``--days`` days, round-trip every event through the wire
encoding, pair (:func:`atlas.pairing.pair_events`, as the service does), and estimate each use's
litres from its pressure drops and duration. Each predicted use is grouped by the *true* label
of its open event (so the figures measure pairing + the volume estimator, not the classifier),
and with ``--rules`` also by the rule classifier's category. Weekly litres per category and per
fixture are compared with the simulator's true litres (the flow of each use integrated over its
ramps) for three models:

* ``spec``: the defaults the home spec implies (no calibration);
* ``bucket``: after the installer's measurement at one fixture: 5 L drawn into a bucket at the
  kitchen tap (cold, fully open), simulated in the same home (same hidden plumbing) and read at
  the bucket's 0.1 L mark;
* ``meter``: each week after the previous week's water-meter total (weeks 2 on);
* ``spec_x2`` / ``bucket_x2``: a mis-specified home (every default resistance twice the true
  one), before and after the bucket. The simulator draws its hidden plumbing around the very
  values the spec defaults assume, so ``spec`` is unbiased there; a real spec can be far off.

A group's relative error counts when its true weekly total is at least ``MIN_WEEKLY_LITRES``.

Alerts: the same homes (normal households) give false alerts per home-month; homes with an
injected leaking toilet flapper or a valve left running (the first garden hose; the bathtub's
cold tap where there is none) from a seed-drawn time on day 2 give the detection delay.
``running`` alerts are replayed as a live service raises them (:func:`live_running_alerts`).

    atlas bench usage --quick --json /tmp/usage.json
    atlas bench usage --rules --json bench-out/usage.json      # 3 presets x seeds 1-5, 28 days

Constants of the estimator were set on seeds 101-110, not on the evaluation seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from atlas.alerts import (
    FLAPPER,
    KINDS,
    NIGHT,
    RUNNING,
    Alert,
    AlertSettings,
    ObservedUse,
    flapper_alerts,
    night_alerts,
    running_alerts,
)
from atlas.events import Event, decode_event, encode_event
from atlas.homespec import HomeSpec
from atlas.pairing import DEFAULT_SIMULTANEOUS_S, PairingResult, pair_events
from atlas.volume import (
    FlowModel,
    UseDrop,
    calibrate_known_volume,
    calibrate_meter,
    default_flow_model,
    estimate_volumes,
    total_litres,
)
from simulator.generate import generate_run, render_uses
from simulator.presets import load_preset
from simulator.usage import Faults, LeakingFlapper, LeftRunning, PlannedUse

PRESETS = ("apartment", "two_bath_house", "three_bath_house")
MODELS = ("spec", "bucket", "meter", "spec_x2", "bucket_x2")
#: The mis-specified condition: every default resistance twice the simulated home's (pipe runs
#: or assumptions far off), to show what the installer's measurement buys.
MISSPECIFIED = 2.0
MIN_WEEKLY_LITRES = 10.0
BUCKET_LITRES = 5.0
BUCKET_VALVE = "kitchen-sink/cold"
UNDECIDED = "undecided"
FAUCETS = "faucet (either)"
#: Acceptance targets (docs/usage.md): mean weekly error after calibration at one fixture.
TARGETS = {"category": 0.10, "fixture": 0.15}
FLAPPER_TARGET_H = 24.0


@dataclass(frozen=True)
class SimHome:
    """A simulated run as the service receives it, with the truth aside."""

    preset: str
    seed: int
    spec: HomeSpec
    events: list[Event]
    truth: dict[str, dict]  # event id -> truth
    start: datetime  # local midnight the run starts


def simulate_home(preset: str, seed: int, days: int, faults: Faults | None = None) -> SimHome:
    """Generate a run (optionally with faults) and round-trip it through the wire encoding."""
    spec = load_preset(preset)
    sims = generate_run(spec, days=days, seed=seed, faults=faults)
    events = [decode_event(encode_event(s.event)) for s in sims]
    start = datetime.combine(
        min(e.t for e in events).astimezone(ZoneInfo(spec.model.timezone)).date(),
        time(0),
        ZoneInfo(spec.model.timezone),
    )
    return SimHome(preset, seed, spec, events, {s.event.event_id: s.truth for s in sims}, start)


def bucket_measurement(spec: HomeSpec, seed: int) -> tuple[UseDrop, float]:
    """The installer's calibration: ``BUCKET_LITRES`` at the kitchen tap, cold, fully open.

    Rendered with the run's seed, so the hidden plumbing is the home's own; the measured volume
    is the true one read at a 0.1 L bucket mark.
    """
    valve = spec.valve(BUCKET_VALVE)
    duration = BUCKET_LITRES / valve.flow_lpm * 60.0
    use = PlannedUse("u000000", valve.id, 60.0, duration, 1.0, 0.0, 0.5, 0.4, -1, "bucket")
    sims = render_uses(spec, [use], seed=seed, id_prefix=f"{spec.home_id}.bucket")
    events = [decode_event(encode_event(s.event)) for s in sims]
    pairing = pair_events(events)
    (paired,) = pairing.uses
    drop = UseDrop.from_use(paired, valve.id, features=pairing.features, event_lines=pairing.lines)
    return drop, round(sims[0].truth["litres"], 1)


def _true_uses(home: SimHome) -> dict[str, dict]:
    """use id -> {t, litres, category, fixture} of every true use (t: its first event)."""
    out: dict[str, dict] = {}
    for event in home.events:
        t = home.truth[event.event_id]
        first = out.setdefault(t["use_id"], {**t, "t": event.t})
        first["t"] = min(first["t"], event.t)
    return out


def _label(home: SimHome, use_event_ids: Sequence[str]) -> dict:
    """The truth of a predicted use's first event (its open; an orphan's close)."""
    return home.truth[use_event_ids[0]]


def _rule_categories(home: SimHome, pairing: PairingResult) -> dict[str, tuple[str, tuple]]:
    """use id -> (rule category or UNDECIDED, candidate categories)."""
    from rules import RuleClassifier, RuleConfig, build_views

    views = build_views(pairing.uses, pairing.features, pairing.lines)
    decisions = RuleClassifier(RuleConfig.from_home_spec(home.spec)).classify(views)
    return {
        v.use.use_id: (
            d.category
            or (
                FAUCETS if set(d.candidates) == {"kitchen_faucet", "bathroom_faucet"} else UNDECIDED
            ),
            tuple(d.candidates),
        )
        for v, d in zip(views, decisions, strict=True)
    }


def _rules_group(category: str) -> str:
    return FAUCETS if category in ("kitchen_faucet", "bathroom_faucet") else category


def _week(t: datetime, start: datetime) -> int:
    return int((t - start).total_seconds() // (7 * 86400))


def _errors(est: dict[str, tuple[float, float]], truth: dict[str, float]) -> list[dict]:
    rows = []
    for group, true in sorted(truth.items()):
        litres, sigma = est.get(group, (0.0, 0.0))
        rows.append(
            {
                "group": group,
                "true": round(true, 2),
                "est": round(litres, 2),
                "sigma": round(sigma, 2),
                "rel_err": round(litres / true - 1.0, 4) if true > 0 else None,
            }
        )
    return rows


def volume_home(preset: str, seed: int, days: int, rules: bool) -> dict:
    """Weekly litres per category and fixture of one home, per model and labelling."""
    home = simulate_home(preset, seed, days)
    spec = home.spec
    pairing = pair_events(home.events)
    truth_uses = _true_uses(home)
    valves_of_category: dict[str, list[str]] = defaultdict(list)
    for valve in spec.valves:
        valves_of_category[str(spec.fixture(valve.fixture_id).category)].append(valve.id)
    labels = {u.use_id: _label(home, u.event_ids) for u in pairing.uses}
    labellings: dict[str, list[UseDrop]] = {}
    true_drops = [
        UseDrop.from_use(
            u, labels[u.use_id]["valve"], features=pairing.features, event_lines=pairing.lines
        )
        for u in pairing.uses
    ]
    labellings["true"] = true_drops
    rule_of: dict[str, tuple[str, tuple]] = {}
    if rules:
        rule_of = _rule_categories(home, pairing)
        labellings["rules"] = [
            UseDrop.from_use(
                u,
                None,
                [
                    v
                    for c in (rule_of[u.use_id][1] or (rule_of[u.use_id][0],))
                    for v in valves_of_category.get(c, [])
                ],
                features=pairing.features,
                event_lines=pairing.lines,
            )
            for u in pairing.uses
        ]
    default = default_flow_model(spec)
    bucket_drop, bucket_litres = bucket_measurement(spec, seed)
    wrong = default.scaled(MISSPECIFIED, "spec")
    models: dict[str, FlowModel] = {
        "spec": default,
        "bucket": calibrate_known_volume(default, [bucket_drop], bucket_litres),
        "spec_x2": wrong,
        "bucket_x2": calibrate_known_volume(wrong, [bucket_drop], bucket_litres),
    }
    n_weeks = days // 7
    week_of_use = {u.use_id: _week(u.t, home.start) for u in pairing.uses}
    true_week: dict[int, dict[str, dict[str, float]]] = defaultdict(
        lambda: {"category": defaultdict(float), "fixture": defaultdict(float)}
    )
    for t in truth_uses.values():
        w = _week(t["t"], home.start)
        true_week[w]["category"][t["category"]] += t["litres"]
        true_week[w]["fixture"][t["fixture"]] += t["litres"]
    weekly_true_total = {w: sum(v["category"].values()) for w, v in true_week.items()}

    out: dict = {"preset": preset, "seed": seed, "days": days, "weeks": []}
    out["bucket"] = {
        "valve": BUCKET_VALVE,
        "litres": bucket_litres,
        "estimated_before": round(estimate_volumes([bucket_drop], default)[0].litres, 3),
        "main_k": [round(default.main_k, 5), round(models["bucket"].main_k, 5)],
    }
    estimates = {
        (name, lab): estimate_volumes(drops, model)
        for name, model in models.items()
        for lab, drops in labellings.items()
    }
    for week in range(n_weeks):
        row: dict = {"week": week + 1, "models": {}}
        for name in MODELS:
            for lab, drops in labellings.items():
                if name == "meter":
                    if week == 0:
                        continue
                    previous = [d for d in drops if week_of_use[d.use_id] == week - 1]
                    model = calibrate_meter(default, previous, weekly_true_total[week - 1])
                    est = estimate_volumes(drops, model)
                else:
                    est = estimates[(name, lab)]
                this = [e for e in est if week_of_use[e.use_id] == week]
                by: dict[str, dict[str, str]] = {"category": {}, "fixture": {}}
                for e in this:
                    if lab == "true":
                        by["category"][e.use_id] = labels[e.use_id]["category"]
                        by["fixture"][e.use_id] = labels[e.use_id]["fixture"]
                    else:
                        by["category"][e.use_id] = rule_of[e.use_id][0]
                truth = {level: dict(true_week[week][level]) for level in by}
                if lab == "rules":  # the rules only narrow a short draw to "a faucet"
                    truth["category"] = defaultdict(float)
                    for category, litres in true_week[week]["category"].items():
                        truth["category"][_rules_group(category)] += litres
                result = {
                    level: _errors(total_litres(this, groups), dict(truth[level]))
                    for level, groups in by.items()
                    if groups
                }
                if lab == "rules":
                    undecided = total_litres(this, by["category"]).get(UNDECIDED, (0.0, 0.0))
                    result["undecided_litres"] = round(undecided[0], 1)
                total_est = float(np.nansum([e.litres for e in this]))
                result["total"] = {
                    "true": round(weekly_true_total[week], 1),
                    "est": round(total_est, 1),
                    "rel_err": round(total_est / weekly_true_total[week] - 1.0, 4),
                }
                row["models"][f"{name}/{lab}"] = result
        out["weeks"].append(row)
    return out


def _fault_start(seed: int, kind: str) -> float:
    """Seconds since the run start at which the fault begins: day 2, a seed-drawn hour."""
    rng = np.random.default_rng([seed, 22, 1 if kind == FLAPPER else 2])
    hour = rng.uniform(0.0, 24.0) if kind == FLAPPER else rng.uniform(8.0, 20.0)
    return 86400.0 + hour * 3600.0


def _left_running_valve(spec: HomeSpec) -> str:
    for category in ("outdoor_hose", "bathtub"):
        for fixture in spec.fixtures:
            if str(fixture.category) == category:
                names = {v.name: v.id for v in fixture.valves}
                return names.get("cold", fixture.valves[0].id)
    return spec.valves[0].id


def _observed(
    home: SimHome, pairing: PairingResult, labelling: str, rules: dict[str, tuple[str, tuple]]
) -> list[ObservedUse]:
    model = default_flow_model(home.spec)
    drops, obs = [], []
    for u in pairing.uses:
        label = _label(home, u.event_ids)
        if labelling == "true":
            category, fixture, valve = label["category"], label["fixture"], label["valve"]
        else:
            category, fixture, valve = rules[u.use_id][0], None, None
            category = None if category == UNDECIDED else category
        drops.append(
            UseDrop.from_use(u, valve, features=pairing.features, event_lines=pairing.lines)
        )
        obs.append((u, category, fixture))
    est = estimate_volumes(drops, model)
    return [
        ObservedUse.from_use(u, category, fixture, e.litres)
        for (u, category, fixture), e in zip(obs, est, strict=True)
    ]


def alert_home(
    preset: str, seed: int, days: int, fault: str | None, rules: bool, settings: dict
) -> dict:
    """Alerts of one home: a normal one (``fault`` None) or one with a fault from day 2."""
    spec = load_preset(preset)
    faults = None
    fault_start_s = None
    detail: dict = {}
    if fault == FLAPPER:
        rng = np.random.default_rng([seed, 22, 3])
        fault_start_s = _fault_start(seed, FLAPPER)
        leak = LeakingFlapper(
            start_s=fault_start_s,
            interval_min=float(rng.uniform(10.0, 60.0)),
            refill_l=float(rng.uniform(0.5, 1.2)),
        )
        faults = Faults(flapper=leak)
        detail = {"interval_min": round(leak.interval_min, 1), "refill_l": round(leak.refill_l, 2)}
    elif fault == RUNNING:
        fault_start_s = _fault_start(seed, RUNNING)
        valve = _left_running_valve(spec)
        faults = Faults(left_running=LeftRunning(fault_start_s, 4 * 3600.0, valve))
        detail = {"valve": valve, "hours": 4.0}
    home = simulate_home(preset, seed, days, faults)
    pairing = pair_events(home.events)
    alert_settings = AlertSettings(timezone=spec.model.timezone, **settings)
    rule_of = _rule_categories(home, pairing) if rules else {}
    out: dict = {"preset": preset, "seed": seed, "days": days, "fault": fault, **detail}
    for labelling in ("true", "rules") if rules else ("true",):
        observed = _observed(home, pairing, labelling, rule_of)
        alerts = flapper_alerts(observed, alert_settings)
        alerts += night_alerts(observed, alert_settings, since=home.start)
        alerts += live_running_alerts(home, observed, alert_settings, labelling == "true")
        alerts.sort(key=lambda a: a.at)
        result: dict = {"alerts": [[a.kind, a.at.isoformat(timespec="seconds")] for a in alerts]}
        if fault is None:
            result["false"] = {k: sum(a.kind == k for a in alerts) for k in KINDS}
        else:
            assert fault_start_s is not None
            begun = home.start + timedelta(seconds=fault_start_s)
            hits = [a for a in alerts if a.kind == fault and a.at >= begun - timedelta(minutes=1)]
            delay = (hits[0].at - begun).total_seconds() / 3600.0 if hits else None
            result["delay_h"] = None if delay is None else round(delay, 3)
            result["other_alerts"] = sum(
                a.kind != fault and not (a.kind == NIGHT and fault == RUNNING) for a in alerts
            )
        out[labelling] = result
    return out


def _actions(events: Sequence[Event]) -> list[list[Event]]:
    """Pending open events grouped into actions: both lines of a mixing valve within 0.1 s
    (:data:`atlas.pairing.DEFAULT_SIMULTANEOUS_S`)."""
    groups: list[list[Event]] = []
    for event in sorted(events, key=lambda e: e.t):
        last = groups[-1] if groups else None
        if (
            last is not None
            and (event.t - last[0].t).total_seconds() <= DEFAULT_SIMULTANEOUS_S
            and event.line not in {e.line for e in last}
        ):
            last.append(event)
        else:
            groups.append([event])
    return groups


def live_running_alerts(
    home: SimHome, observed: list[ObservedUse], settings: AlertSettings, labelled: bool
) -> list[Alert]:
    """``running`` alerts as a live service raises them.

    Offline, pairing sees every event; live, it sees only those that have arrived. Water left
    running can later be mis-paired with a close it inflated (the running flow adds to every
    recovery on its line), which hindsight would count against it. So each candidate (a use
    lasting ``unmatched_slack_min`` or more, or never closed) is replayed: the events that had
    arrived by the time it would alert are paired with ``now`` then, pending opens become
    unclosed uses, and :func:`atlas.alerts.running_alerts` decides with that ``now``.
    ``labelled``: categories from the truth (else none; only per-category limits use them).
    """
    slack = timedelta(minutes=settings.unmatched_slack_min)
    candidates = sorted(
        {
            u.t_open + settings.max_run(u.category)
            for u in observed
            if u.t_open is not None and (u.t_close is None or u.t_close - u.t_open >= slack)
        }
    )
    lookback = timedelta(hours=6)
    alerts: dict[str, Alert] = {}
    for now in candidates:
        arrived = [
            e
            for e in home.events
            if now - lookback <= e.t and e.t + timedelta(seconds=e.duration_s) <= now
        ]
        result = pair_events(arrived, now=now)
        uses = [
            ObservedUse.from_use(
                u,
                _label(home, u.event_ids)["category"] if labelled else None,
                _label(home, u.event_ids)["fixture"] if labelled else None,
            )
            for u in result.uses
        ]
        for group in _actions(result.pending):
            first = group[0]
            uses.append(
                ObservedUse(
                    f"u-{first.event_id}",
                    first.t,
                    None,
                    tuple(sorted({e.line for e in group}, key=("hot", "cold").index)),
                    home.truth[first.event_id]["category"] if labelled else None,
                    home.truth[first.event_id]["fixture"] if labelled else None,
                )
            )
        for alert in running_alerts(uses, settings, now):
            if abs((alert.at - now).total_seconds()) <= 1.0:  # raised at this moment
                alerts.setdefault(alert.at.isoformat(), alert)
    return sorted(alerts.values(), key=lambda a: a.at)


def _volume_job(job: tuple) -> dict:
    return volume_home(*job)


def _alert_job(job: tuple) -> dict:
    return alert_home(*job)


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(values)), 4) if values else None


def summarize_volume(homes: list[dict]) -> dict:
    """Mean |relative error| of weekly totals per model/labelling and level, and per group."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    signed: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    covered: dict[str, list[bool]] = defaultdict(list)
    for home in homes:
        for week in home["weeks"]:
            for key, result in week["models"].items():
                acc[key]["total"].append(abs(result["total"]["rel_err"]))
                for level in ("category", "fixture"):
                    for row in result.get(level, []):
                        if row["true"] < MIN_WEEKLY_LITRES or row["rel_err"] is None:
                            continue
                        acc[key][level].append(abs(row["rel_err"]))
                        signed[key][f"{level}:{row['group']}"].append(row["rel_err"])
                        if level == "category" and key.endswith("/true"):
                            covered[key].append(abs(row["est"] - row["true"]) <= 2 * row["sigma"])
    out = {}
    for key in sorted(acc):
        out[key] = {
            "mean_abs_err": {level: _mean(v) for level, v in acc[key].items()},
            "n": {level: len(v) for level, v in acc[key].items()},
            "by_group": {
                g: {"mean_err": _mean(v), "mean_abs_err": _mean([abs(x) for x in v])}
                for g, v in sorted(signed[key].items())
            },
        }
        if covered.get(key):
            out[key]["within_2_sigma"] = round(float(np.mean(covered[key])), 3)
    return out


def summarize_alerts(homes: list[dict]) -> dict:
    out: dict = {}
    labellings = sorted({k for h in homes for k in ("true", "rules") if k in h})
    for lab in labellings:
        normal = [h for h in homes if h["fault"] is None and lab in h]
        months = sum(h["days"] for h in normal) / 30.0
        false = {k: sum(h[lab]["false"][k] for h in normal) for k in KINDS}
        entry: dict = {
            "normal_home_months": round(months, 2),
            "false_alerts": false,
            "false_per_home_month": round(sum(false.values()) / months, 3) if months else None,
            "worst_home_per_month": max(
                (sum(h[lab]["false"].values()) / (h["days"] / 30.0) for h in normal), default=None
            ),
            # the target, home by home: no more alerts than the months it was watched (a 28-day
            # run counts as one month)
            "homes_over_one_per_month": sum(
                sum(h[lab]["false"].values()) > max(1, round(h["days"] / 30.0)) for h in normal
            ),
        }
        for fault in (FLAPPER, RUNNING):
            runs = [h for h in homes if h["fault"] == fault and lab in h]
            delays = [h[lab]["delay_h"] for h in runs]
            found = [d for d in delays if d is not None]
            entry[fault] = {
                "homes": len(runs),
                "detected": len(found),
                "delay_h_median": round(float(np.median(found)), 3) if found else None,
                "delay_h_max": round(max(found), 3) if found else None,
                "other_alerts": sum(h[lab]["other_alerts"] for h in runs),
            }
        out[lab] = entry
    return out


def _targets(volume: dict, alerts: dict, settings: AlertSettings) -> dict:
    bucket = volume.get("bucket/true", {}).get("mean_abs_err", {})
    spec = volume.get("spec/true", {}).get("mean_abs_err", {})
    true_alerts = alerts.get("true", {})
    flapper = true_alerts.get(FLAPPER, {})
    running = true_alerts.get(RUNNING, {})
    out = {
        "category_within_10pct_after_bucket": _met(bucket.get("category"), TARGETS["category"]),
        "fixture_within_15pct_after_bucket": _met(bucket.get("fixture"), TARGETS["fixture"]),
        "uncalibrated": {"category": spec.get("category"), "fixture": spec.get("fixture")},
        "flapper_within_24h": bool(
            flapper.get("homes")
            and flapper.get("detected") == flapper.get("homes")
            and flapper["delay_h_max"] <= FLAPPER_TARGET_H
        ),
        "running_within_threshold": bool(
            running.get("homes")
            and running.get("detected") == running.get("homes")
            and running["delay_h_max"] <= settings.max_run_min / 60.0 + 1e-6
        ),
        "at_most_one_false_alert_per_home_month": bool(
            true_alerts.get("false_per_home_month") is not None
            and true_alerts["false_per_home_month"] <= 1.0
            and true_alerts["homes_over_one_per_month"] == 0
        ),
    }
    return out


def _met(value: float | None, target: float) -> dict:
    return {"value": value, "target": target, "met": value is not None and value <= target}


def report(result: dict) -> str:
    lines = ["# atlas bench usage", ""]
    lines.append("| model / labels | total | category | fixture | n (cat, fix) | 2-sigma |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for key, s in result["volume"].items():
        m = s["mean_abs_err"]
        lines.append(
            f"| {key} | {_pct(m.get('total'))} | {_pct(m.get('category'))} | "
            f"{_pct(m.get('fixture'))} | {s['n'].get('category', 0)}, {s['n'].get('fixture', 0)} "
            f"| {s.get('within_2_sigma', '-')} |"
        )
    lines += ["", "mean signed error per category (bucket/true):"]
    for group, v in result["volume"].get("bucket/true", {}).get("by_group", {}).items():
        if group.startswith("category:"):
            lines.append(
                f"  {group[9:]:<18} {_pct(v['mean_err'])} (|err| {_pct(v['mean_abs_err'])})"
            )
    for lab, a in result["alerts"].items():
        lines += ["", f"alerts ({lab} labels):"]
        lines.append(
            f"  normal homes: {sum(a['false_alerts'].values())} false alerts in "
            f"{a['normal_home_months']} home-months ({a['false_per_home_month']}/home-month, "
            f"homes above one a month {a['homes_over_one_per_month']}): {a['false_alerts']}"
        )
        for fault in (FLAPPER, RUNNING):
            f = a[fault]
            lines.append(
                f"  {fault}: detected {f['detected']}/{f['homes']}, delay median "
                f"{f['delay_h_median']} h, max {f['delay_h_max']} h, other alerts "
                f"{f['other_alerts']}"
            )
    lines += ["", "targets: " + json.dumps(result["targets"])]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=28, help="simulated days of normal homes")
    parser.add_argument(
        "--fault-days", type=int, default=4, help="simulated days of homes with a fault"
    )
    parser.add_argument(
        "--rules", action="store_true", help="also group and alert by the rules' categories"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--quick", action="store_true", help="one preset (two_bath_house), seed 1, 7 + 3 days"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    presets, seeds, days, fault_days = args.presets, args.seeds, args.days, args.fault_days
    if args.quick:
        presets, seeds, days, fault_days = ["two_bath_house"], [1], 7, 3
    settings = AlertSettings()
    setting_overrides: dict = {}
    volume_jobs = [(p, s, days, args.rules) for p in presets for s in seeds]
    alert_jobs = [
        (p, s, fault_days, fault, args.rules, setting_overrides)
        for p in presets
        for s in seeds
        for fault in (FLAPPER, RUNNING)
    ]
    alert_jobs += [
        (p, s, days, None, args.rules, setting_overrides) for p in presets for s in seeds
    ]

    def progress(text: str) -> None:
        if not args.no_progress:
            print(text, file=sys.stderr, flush=True)

    progress(f"{len(volume_jobs)} homes x {days} days, {len(alert_jobs)} alert runs...")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        volume_homes = []
        for home in pool.map(_volume_job, volume_jobs):
            volume_homes.append(home)
            progress(f"volume {home['preset']} seed {home['seed']} done")
        alert_homes = []
        for home in pool.map(_alert_job, alert_jobs):
            alert_homes.append(home)
            progress(f"alerts {home['preset']} seed {home['seed']} {home['fault'] or 'normal'}")
    volume = summarize_volume(volume_homes)
    alerts = summarize_alerts(alert_homes)
    result = {
        "presets": presets,
        "seeds": seeds,
        "days": days,
        "fault_days": fault_days,
        "min_weekly_litres": MIN_WEEKLY_LITRES,
        "settings": asdict(settings),
        "volume": volume,
        "alerts": alerts,
        "targets": _targets(volume, alerts, settings),
        "homes": {"volume": volume_homes, "alerts": alert_homes},
    }
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
