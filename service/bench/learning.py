"""Classifier accuracy vs number of labels for each label-selection strategy (offline).

One simulated home, through the real pipeline pieces: simulate, round-trip the wire encoding,
pair (:func:`atlas.pairing.pair_events`), rule decisions as category evidence
(:mod:`rules`), codebook codes (:class:`codebook.Codebook` fitted on week 1), features
(:func:`atlas.features.use_features`), the hierarchical classifier, and a strategy choosing
``--batch`` answerable uses every other day from day 8. The homeowner answers every request
correctly here (the calibration benchmark models no-answers and mistakes). Week 1 gives the
seed protocol's guided labels. After each round, true accuracy is measured on every use of the
run at valve, fixture and category level.

    atlas bench learning --preset two_bath_house --days 28 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sklearn.decomposition import PCA

from atlas.classifier import HierarchicalClassifier
from atlas.domain import LEVELS, Category, Handle
from atlas.features import rule_evidence, transient_table, use_codes, use_features
from atlas.homespec import HomeSpec
from atlas.pairing import pair_events
from atlas.strategies import STRATEGIES, answerable, make_strategy
from atlas.uses import UseStatus, WaterUse
from codebook import Codebook
from rules import RuleClassifier, RuleConfig, build_views
from service.bench.pairing import simulate


@dataclass(frozen=True)
class PreparedHome:
    """A home's uses as feature rows, with the truth (valve per use) kept aside."""

    spec: HomeSpec
    uses: list[WaterUse]
    X: np.ndarray
    truth: np.ndarray  # valve id per use (majority over its events)
    start: datetime


def prepare(preset: str, days: int, seed: int, n_atoms: int, n_code_dims: int) -> PreparedHome:
    """Simulate, pair, run the rules and the codebook, and build the feature matrix."""
    home = simulate(preset, days, seed)
    pairing = pair_events(home.events)
    uses = pairing.uses
    views = build_views(uses, pairing.features)
    decisions = RuleClassifier(RuleConfig.from_home_spec(home.spec)).classify(views)
    start = min(e.t for e in home.events)
    week1 = [e for e in home.events if e.t < start + timedelta(days=7)]
    codebook = Codebook(n_atoms=n_atoms, physical_features=False, random_state=seed)
    codebook.fit([e.samples for e in week1])
    event_codes = dict(
        zip(
            [e.event_id for e in home.events],
            codebook.transform([e.samples for e in home.events]),
            strict=True,
        )
    )
    codes = use_codes(uses, event_codes, codebook.n_features_out_)
    codes = PCA(n_components=n_code_dims, random_state=seed).fit_transform(codes)
    X = use_features(
        uses,
        transient_table(home.events, pairing.features),
        codes=codes,
        evidence=rule_evidence(decisions),
        timezone=home.spec.model.timezone,
    )
    truth = np.array(
        [
            Counter(sorted(home.truth[e]["valve"] for e in u.event_ids)).most_common(1)[0][0]
            for u in uses
        ],
        dtype=object,
    )
    return PreparedHome(home.spec, uses, X, truth, start)


def guided_labels(home: PreparedHome) -> dict[int, str]:
    """Week-1 guided examples of the seed protocol (Table 8-2), first matching use of each.

    Showers 1 (any position), dishwasher 1, washing machine 1, each toilet 2, each two-handle
    faucet hot + cold, each single-handle faucet hot + cold + mixed (twice in the kitchen).
    """
    wanted: list[str] = []
    for f in home.spec.fixtures:
        names = [v.id for v in f.valves]
        if f.category in (Category.SHOWER, Category.DISHWASHER, Category.WASHING_MACHINE):
            wanted.append(f"{f.id}/*")
        elif f.category == Category.TOILET:
            wanted += names * 2
        elif f.handle == Handle.TWO_HANDLE:
            wanted += names
        elif f.handle == Handle.SINGLE_HANDLE:
            wanted += names * (2 if f.category == Category.KITCHEN_FAUCET else 1)
    week1_end = home.start + timedelta(days=7)
    clean = set(answerable(home.uses, week1_end, max_age=timedelta(days=7)).tolist())
    labels: dict[int, str] = {}
    for want in wanted:
        for i, use in enumerate(home.uses):
            valve = str(home.truth[i])
            match = valve.startswith(want[:-1]) if want.endswith("*") else valve == want
            if match and i in clean and i not in labels and use.t < week1_end:
                labels[i] = valve
                break
    return labels


def accuracy(clf: HierarchicalClassifier, home: PreparedHome) -> dict[str, float]:
    """True accuracy at every level over all uses of the run."""
    h = home.spec.hierarchy
    out = {}
    for level in LEVELS:
        proba, names = clf.predict_level_proba(home.X, level)
        predicted = np.asarray(names, dtype=object)[proba.argmax(axis=1)]
        truth = np.array([h.label_at(v, level) for v in home.truth], dtype=object)
        out[level] = float(np.mean(predicted == truth))
    return out


def run_strategy(
    home: PreparedHome, name: str, seed: int, days: int, batch: int, **params: object
) -> list[dict[str, object]]:
    """Guided week 1, then ``batch`` requests every other day; accuracy after each round."""
    labels = guided_labels(home)
    t_use = np.array([u.t for u in home.uses])
    strategy = make_strategy(name, random_state=seed, **params)
    curve = []
    fit_s = []
    fallbacks = 0
    for day in range(8, days + 1, 2):
        now = home.start + timedelta(days=day - 1, hours=20)
        seen = np.flatnonzero(t_use <= now)
        y = np.full(home.X.shape[0], None, dtype=object)
        for i, v in labels.items():
            y[i] = v
        clf = HierarchicalClassifier.for_home(home.spec, random_state=seed)
        t0 = time.perf_counter()
        clf.fit(home.X[seen], y[seen])
        fit_s.append(time.perf_counter() - t0)
        curve.append({"day": day, "labels": len(labels), "true": accuracy(clf, home)})
        asked = {home.uses[i].use_id for i in labels}
        cand_all = answerable(home.uses, now, asked=asked)
        position = {int(i): p for p, i in enumerate(seen)}
        cand = np.array([position[int(i)] for i in cand_all if int(i) in position], dtype=int)
        if cand.size == 0:
            continue
        picks = strategy.query(
            home.X[seen], y[seen], clf, candidates=cand, batch_size=min(batch, cand.size)
        )
        fallbacks += int(getattr(strategy, "fell_back_", False))
        for p in picks:
            labels[int(seen[p])] = str(home.truth[seen[p]])  # a perfect homeowner
    y = np.full(home.X.shape[0], None, dtype=object)
    for i, v in labels.items():
        y[i] = v
    clf = HierarchicalClassifier.for_home(home.spec, random_state=seed).fit(home.X, y)
    curve.append({"day": days, "labels": len(labels), "true": accuracy(clf, home)})
    curve[-1]["median_fit_s"] = float(np.median(fit_s))
    curve[-1]["rounds_fell_back"] = fallbacks
    return curve


def fit_timing(
    spec: HomeSpec, n_labeled: int, n_unlabeled: int, seed: int, repeats: int = 5
) -> list[float]:
    """Seconds per fit on blobs in the home's hierarchy and feature layout (50 columns).

    Each valve gets a Gaussian cluster in the 40 non-structural columns; lines and neutral
    evidence fill the structural ones, so masking and spreading do their full work.
    """
    from atlas.features import EVIDENCE_COLUMNS

    rng = np.random.RandomState(seed)
    valves = spec.valves
    n = n_labeled + n_unlabeled
    which = rng.randint(len(valves), size=n)
    centers = rng.normal(0, 3, (len(valves), 40))
    X = np.hstack(
        [
            np.array([["hot" in v.lines, "cold" in v.lines] for v in valves], float)[which],
            np.ones((n, EVIDENCE_COLUMNS[1] - EVIDENCE_COLUMNS[0])),
            centers[which] + rng.normal(0, 1, (n, 40)),
        ]
    )
    y = np.array([valves[i].id for i in which], dtype=object)
    y[n_labeled:] = None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        HierarchicalClassifier.for_home(spec, random_state=seed).fit(X, y)
        times.append(time.perf_counter() - t0)
    return times


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="two_bath_house", help="simulator preset")
    parser.add_argument("--days", type=int, default=28, help="days simulated")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1], help="simulation seeds")
    parser.add_argument("--batch", type=int, default=3, help="requests per round")
    parser.add_argument("--atoms", type=int, default=16, help="codebook atoms")
    parser.add_argument("--code-dims", type=int, default=12, help="PCA dims of the codes")
    parser.add_argument(
        "--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES)
    )
    parser.add_argument(
        "--atlas-diversity", type=float, default=0.5, help="AtlasSampling diversity_weight"
    )
    parser.add_argument(
        "--fit-timing",
        nargs=2,
        type=int,
        metavar=("N_LABELED", "N_UNLABELED"),
        help="only time the classifier's fit on synthetic uses of the preset's hierarchy",
    )
    parser.add_argument("--json", default=None, help="write the curves to this JSON file")


def run(args: argparse.Namespace) -> int:
    if args.fit_timing:
        from simulator.presets import load_preset

        times = fit_timing(load_preset(args.preset), *args.fit_timing, seed=args.seeds[0])
        print(
            f"fit seconds: min {min(times):.3f}, median {np.median(times):.3f} ({len(times)} fits)"
        )
        return 0
    results: dict[str, dict[int, list]] = {name: {} for name in args.strategies}
    for seed in args.seeds:
        t0 = time.perf_counter()
        home = prepare(args.preset, args.days, seed, args.atoms, args.code_dims)
        print(
            f"seed {seed}: {len(home.uses)} uses, {home.X.shape[1]} features, "
            f"{sum(u.status == UseStatus.PAIRED for u in home.uses)} paired, "
            f"prepared in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        for name in args.strategies:
            t0 = time.perf_counter()
            params = {"diversity_weight": args.atlas_diversity} if name == "atlas" else {}
            curve = run_strategy(home, name, seed, args.days, args.batch, **params)
            results[name][seed] = curve
            print(
                f"  {name}: {time.perf_counter() - t0:.1f} s, median fit "
                f"{curve[-1]['median_fit_s']:.3f} s, rounds on fallback "
                f"{curve[-1]['rounds_fell_back']}",
                file=sys.stderr,
            )
    print(f"{'strategy':<10} {'day':>4} {'labels':>6} {'valve':>6} {'fixture':>7} {'category':>8}")
    for name, by_seed in results.items():
        curves = list(by_seed.values())
        for step in range(len(curves[0])):
            rows = [c[step] for c in curves]
            mean = {lv: np.mean([r["true"][lv] for r in rows]) for lv in LEVELS}
            print(
                f"{name:<10} {rows[0]['day']:>4} {np.mean([r['labels'] for r in rows]):>6.1f} "
                f"{mean['valve']:>6.3f} {mean['fixture']:>7.3f} {mean['category']:>8.3f}"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"preset": args.preset, "seeds": args.seeds, "curves": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
