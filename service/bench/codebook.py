"""Codebook quality (valve accuracy from few labels) and encoding speed, on simulated homes.

Accuracy: a preset home is simulated per seed and every event goes through the wire encoding
(as the intake receives it). The codebook is fitted, without labels, on every window of the run
(the waves a home saves). For k labeled uses per valve (drawn at random, ``--draws`` times per
seed) a logistic regression (standardised features) is trained on the transient events of the
labeled uses, one row per event with its valve as the class, and each other use is classified by
summing its events' log-probabilities (open and close, on each line it touched): the accuracy
reported is per use. Per-event accuracy is printed too. Feature sets: codebook (codes +
physical), codebook codes only, raw waveform (baseline removed, block-averaged to
``--raw-hz``), physical features only (:mod:`atlas.transient`).

Speed: transients encoded per second by ``Codebook.transform`` on one core (BLAS/OpenMP limited
to one thread with threadpoolctl), in batches of ``--batch`` windows of the run (1.75 s at
1 kHz), best of ``--repeats`` passes after a warm-up, with and without the physical features,
beside the physical features alone (per window and batched) and scikit-learn's
``SparseCoder(transform_algorithm="omp")`` on the same patches. Each rate is given by the wall
clock and by the process's CPU time: on a shared machine other work slows the wall clock, while
one thread's CPU time mostly does not (it still pays for shared caches).

    atlas bench codebook --preset two_bath_house --days 28 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import SparseCoder
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from atlas.events import decode_event, encode_event
from atlas.transient import FEATURE_NAMES, feature_matrix, transient_features
from codebook import Codebook
from simulator.generate import PRE_S, generate_run
from simulator.presets import load_preset


@dataclass(frozen=True)
class Run:
    """One simulated run: windows, per-event valve and use, at the run's sample rate."""

    windows: list[np.ndarray]
    valves: np.ndarray
    use_ids: np.ndarray
    sample_rate_hz: int


def simulate(preset: str, days: int, seed: int) -> Run:
    sim = generate_run(load_preset(preset), days=days, seed=seed)
    events = [decode_event(encode_event(s.event)) for s in sim]
    rates = {e.sample_rate_hz for e in events}
    if len(rates) != 1:
        raise ValueError(f"run has several sample rates {sorted(rates)}; expected one.")
    return Run(
        windows=[e.samples.astype(np.float64) for e in events],
        valves=np.array([s.truth["valve"] for s in sim]),
        use_ids=np.array([s.truth["use_id"] for s in sim]),
        sample_rate_hz=rates.pop(),
    )


def raw_features(windows: list[np.ndarray], rate: int, raw_hz: int) -> np.ndarray:
    """Baseline-removed windows (kPa), block-averaged from ``rate`` down to ``raw_hz``."""
    block = max(1, rate // raw_hz)
    pre = round(PRE_S * rate)
    rows = []
    for x in windows:
        x = x - np.median(x[:pre])
        n = x.size // block * block
        rows.append(x[:n].reshape(-1, block).mean(axis=1))
    return np.stack(rows)


def physical_features(windows: list[np.ndarray], rate: int) -> np.ndarray:
    return feature_matrix(windows, rate, PRE_S)


def physical_features_per_window(windows: list[np.ndarray], rate: int) -> np.ndarray:
    """The same values one window at a time (the path before batching), for the speed table."""
    return np.stack([transient_features(x, rate, PRE_S).as_vector() for x in windows])


def few_label_accuracy(
    features: np.ndarray, run: Run, k: int, rng: np.random.Generator, min_uses: int
) -> tuple[float, float, int]:
    """(per-use accuracy, per-event accuracy, n test uses) with ``k`` labeled uses per valve."""
    uses_of: dict[str, list[str]] = defaultdict(list)
    for use_id, valve in dict(zip(run.use_ids, run.valves, strict=True)).items():
        uses_of[valve].append(use_id)
    train_uses: set[str] = set()
    test_uses: set[str] = set()
    for valve in sorted(uses_of):
        uses = sorted(uses_of[valve])
        if len(uses) < min_uses:
            continue
        picked = set(rng.choice(uses, k, replace=False))
        train_uses |= picked
        test_uses |= set(uses) - picked
    train = np.isin(run.use_ids, list(train_uses))
    test = np.isin(run.use_ids, list(test_uses))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    model.fit(features[train], run.valves[train])
    # clipped: a zero probability on one event must not make a use's sum -inf for every class
    log_proba = np.log(np.clip(model.predict_proba(features[test]), 1e-12, None))
    classes = model.classes_
    event_acc = float(np.mean(classes[np.argmax(log_proba, axis=1)] == run.valves[test]))
    by_use: dict[str, np.ndarray] = {}
    for use_id, row in zip(run.use_ids[test], log_proba, strict=True):
        by_use[use_id] = by_use.get(use_id, 0.0) + row
    truth = dict(zip(run.use_ids, run.valves, strict=True))
    hits = [classes[np.argmax(score)] == truth[u] for u, score in by_use.items()]
    return float(np.mean(hits)), event_acc, len(hits)


def accuracy_table(args: argparse.Namespace) -> None:
    results: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    names: list[str] = []
    n_test: list[int] = []
    for seed in args.seeds:
        run = simulate(args.preset, args.days, seed)
        rate = run.sample_rate_hz
        physical = physical_features(run.windows, rate)
        sets: dict[str, np.ndarray] = {}
        for method in args.atom_methods:
            codebook = Codebook(
                n_atoms=args.n_atoms,
                atom_length=args.atom_length,
                sample_rate_hz=rate,
                atom_method=method,
                physical_features=False,
                random_state=seed,
            )
            started = time.perf_counter()
            codebook.fit(run.windows)
            fit_s = time.perf_counter() - started
            codes = codebook.transform(run.windows)
            print(
                f"seed {seed}: {len(run.windows)} events; {method} codebook {codebook.version_} "
                f"fitted in {fit_s:.1f} s; codes {np.mean(codes == 0):.1%} zeros",
                file=sys.stderr,
            )
            sets[f"codebook {method} (codes + physical)"] = np.hstack([codes, physical])
            sets[f"codebook {method} codes only"] = codes
        sets[f"raw waveform ({args.raw_hz} Hz)"] = raw_features(run.windows, rate, args.raw_hz)
        sets["physical features only"] = physical
        names = list(sets)
        for k in args.labels:
            for draw in range(args.draws):
                for name, features in sets.items():
                    rng = np.random.default_rng([seed, k, draw])  # same labeled uses per set
                    use_acc, event_acc, n = few_label_accuracy(features, run, k, rng, args.min_uses)
                    results[(name, k)].append((use_acc, event_acc))
                    n_test.append(n)
    header = " | ".join(f"{k} label{'s' if k > 1 else ''}" for k in args.labels)
    print(f"\nPer-use valve accuracy, mean ± sd over {len(args.seeds)} seeds x {args.draws} draws")
    print(f"(per-event accuracy in brackets); test uses per draw {min(n_test)}-{max(n_test)}\n")
    print(f"| features | {header} |")
    print("|---" * (len(args.labels) + 1) + "|")
    for name in names:
        cells = []
        for k in args.labels:
            scores = np.array(results[(name, k)])
            cells.append(
                f"{scores[:, 0].mean():.1%} ± {scores[:, 0].std():.1%} ({scores[:, 1].mean():.1%})"
            )
        print(f"| {name} | " + " | ".join(cells) + " |")


def _best_rate(fn, n_items: int, repeats: int) -> str:
    """``"wall /s | CPU /s"``: items per second, best of ``repeats`` passes after a warm-up."""
    fn()  # warm-up
    walls, cpus = zip(*(_timed(fn) for _ in range(repeats)), strict=True)
    return f"{n_items / min(walls):,.0f} /s | {n_items / min(cpus):,.0f} /s"


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def speed_table(args: argparse.Namespace) -> None:
    run = simulate(args.preset, args.days, args.seeds[0])
    rate = run.sample_rate_hz
    windows = [run.windows[i % len(run.windows)] for i in range(args.speed_windows)]
    batches = [windows[i : i + args.batch] for i in range(0, len(windows), args.batch)]
    with threadpool_limits(limits=1):
        for method in args.atom_methods:
            codebook = Codebook(
                n_atoms=args.n_atoms,
                atom_length=args.atom_length,
                sample_rate_hz=rate,
                atom_method=method,
                random_state=args.seeds[0],
            ).fit(run.windows)
            codes_only = Codebook(**{**codebook.get_params(), "physical_features": False})
            codes_only.components_ = codebook.components_
            for label, cb in (("codes + physical", codebook), ("codes only", codes_only)):
                per_s = _best_rate(
                    lambda cb=cb: [cb.transform(b) for b in batches], len(windows), args.repeats
                )
                print(
                    f"| {method} | {label} | {len(windows)} windows of {windows[0].size} samples, "
                    f"batches of {args.batch} | {per_s} |"
                )
        for label, features in (
            ("atlas.transient features alone, per window", physical_features_per_window),
            ("atlas.transient features alone, batched", physical_features),
        ):
            per_s = _best_rate(
                lambda f=features: [f(b, rate) for b in batches], len(windows), args.repeats
            )
            print(f"| - | {label} | {len(windows)} windows, batches of {args.batch} | {per_s} |")
        n_sk = min(200, len(windows))
        stacked = np.stack(windows[:n_sk])
        patches = codebook._normalised_patches(stacked).reshape(-1, codebook.atom_length)
        coder = SparseCoder(
            dictionary=codebook.components_,
            transform_algorithm="omp",
            transform_n_nonzero_coefs=codebook.n_nonzero_coefs,
        )
        sk_rate = _best_rate(lambda: coder.transform(patches), n_sk, 1)
        print(
            f"| - | scikit-learn SparseCoder(omp) on the same patches, no pooling | "
            f"{n_sk} windows | {sk_rate} |"
        )
    print(f"\nPhysical feature columns: {', '.join(FEATURE_NAMES)}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="two_bath_house")
    parser.add_argument("--days", type=int, default=28, help="simulated days per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--labels", type=int, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--draws", type=int, default=5, help="label draws per seed and k")
    parser.add_argument(
        "--min-uses", type=int, default=8, help="valves with fewer uses are left out"
    )
    parser.add_argument(
        "--atom-methods", nargs="+", default=["medoids"], choices=["dictionary", "medoids"]
    )
    parser.add_argument("--n-atoms", type=int, default=64)
    parser.add_argument("--atom-length", type=int, default=64)
    parser.add_argument("--raw-hz", type=int, default=100, help="raw baseline resolution")
    parser.add_argument("--speed-windows", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500, help="windows per transform call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")


def run(args: argparse.Namespace) -> int:
    if max(args.labels) >= args.min_uses:
        raise SystemExit(
            f"--min-uses={args.min_uses} should exceed the largest --labels={max(args.labels)} "
            "so every valve keeps test uses."
        )
    if not args.skip_accuracy:
        accuracy_table(args)
    if not args.skip_speed:
        print(
            "\n| atoms | features | workload | encoded (wall) | encoded (CPU) |"
            "\n|---|---|---|---|---|"
        )
        speed_table(args)
    return 0
