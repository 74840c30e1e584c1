"""The generic codebook on outside data: UCR datasets against 1-NN and MiniRocket.

The codebook in its generic setting (``codebook.GENERIC_PARAMS``, fitted without labels on the
training split) plus a linear model (standardised features, ridge with a built-in alpha search)
against 1-NN Euclidean (scikit-learn), 1-NN full-window DTW (tslearn) and MiniRocket (sktime,
the same linear model). Datasets: GunPoint, ArrowHead, OSULeaf, ItalyPowerDemand, ACSF1 (read
offline from the sktime wheel) and Trace (tslearn's ``CachedDatasets``, offline), on their
official train/test splits, then the few-label protocol: ``k`` labeled training series per
class (``--draws`` random draws, the same for every method), tested on the official test split.
The codebook setting was chosen on GunPoint and OSULeaf only; the other datasets are held back
(docs/codebook.md). Encode speed: test series encoded per second by the fitted codebook (and by
MiniRocket) on one core, best of ``--repeats`` passes after a warm-up.

``--homes`` instead runs MiniRocket beside the codebook on the simulated homes, in the few-label
valve protocol of ``atlas bench codebook``.

Needs the optional extra: ``pip install 'atlas-water[ucr]'`` (sktime, tslearn).

    OMP_NUM_THREADS=1 atlas bench codebook-ucr
    OMP_NUM_THREADS=1 atlas bench codebook-ucr --datasets GunPoint Trace --methods codebook 1nn-dtw
    OMP_NUM_THREADS=1 atlas bench codebook-ucr --homes --draws 5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np

from codebook import GENERIC_PARAMS
from service.bench import _ucr

LABELS = {
    "codebook": "codebook + linear",
    "1nn-euclidean": "1-NN Euclidean",
    "1nn-dtw": "1-NN DTW",
    "minirocket": "MiniRocket + linear",
}


def tables(
    datasets: Sequence[_ucr.Dataset],
    methods: Sequence[str],
    labels: Sequence[int],
    draws: int,
    seed: int,
    linear: str,
    repeats: int,
    codebook_params: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[str]:
    """The benchmark's markdown tables (accuracy on the official splits with encode speed, then
    the few-label protocol), as lines; progress goes to ``log``."""
    params = dict(codebook_params or {})
    results: list[_ucr.Result] = []
    rates: dict[tuple[str, str], tuple[float, float]] = {}
    for i, data in enumerate(datasets, 1):
        log(
            f"[{i}/{len(datasets)}] {data.name}: {len(data.train)} train / {len(data.test)} test "
            f"series of {data.train[0].size} samples"
        )
        results += _ucr.evaluate(data, methods, labels, draws, params, linear, seed, log)
        for method in {"codebook", "minirocket"} & set(methods):
            rates[(data.name, method)] = _ucr.encode_rate(data, method, params, seed, repeats)
    names = [d.name for d in datasets]
    lines = [
        "Official train/test splits: test accuracy; encode speed = test series per second, "
        "one core (wall | CPU)",
        "",
        "| dataset | role | train / test x length | classes | "
        + " | ".join(LABELS[m] for m in methods)
        + " | codebook encode | MiniRocket encode |",
        "|---" * (len(methods) + 6) + "|",
    ]
    for data in datasets:
        cells = [_cell(results, data.name, m, None) for m in methods]
        speed = [_rate(rates.get((data.name, m))) for m in ("codebook", "minirocket")]
        lines.append(
            f"| {data.name} | {_role(data.name)} | {len(data.train)} / {len(data.test)} x "
            f"{data.train[0].size} | {np.unique(data.y_train).size} | "
            + " | ".join(cells + speed)
            + " |"
        )
    lines += _mean_rows(results, names, methods, None, "| | | |", "| | |")
    if labels:
        lines += [
            "",
            f"Few labels: k labeled training series per class, mean ± sd over {draws} draws, "
            "test accuracy on the official test split",
            "",
            "| dataset | k | " + " | ".join(LABELS[m] for m in methods) + " |",
            "|---" * (len(methods) + 2) + "|",
        ]
        for k in labels:
            for data in datasets:
                cells = [_cell(results, data.name, m, k) for m in methods]
                lines.append(f"| {data.name} | {k} | " + " | ".join(cells) + " |")
            lines += _mean_rows(results, names, methods, k, f"| {k} |", "|")
    seconds = {m: sum(r.seconds for r in results if r.method == m) for m in methods}
    lines += [
        "",
        "Time per method, all datasets and label draws (fit + predict): "
        + ", ".join(f"{LABELS[m]} {s:.1f} s" for m, s in seconds.items()),
    ]
    return lines


def _mean_rows(
    results: list[_ucr.Result],
    names: list[str],
    methods: Sequence[str],
    k: int | None,
    lead: str,
    tail: str,
) -> list[str]:
    """The rows of mean accuracy over the held-back and over the tuning datasets."""
    rows = []
    for role in ("held back", "tuning"):
        chosen = [n for n in names if _role(n) == role]
        if chosen:
            means = " | ".join(_mean_cell(results, chosen, m, k) for m in methods)
            rows.append(f"| **mean, {role}** ({len(chosen)}) {lead} {means} {tail}")
    return rows


def _role(name: str) -> str:
    return "tuning" if name in _ucr.TUNING else "held back"


def _accuracies(results, names, method, k) -> np.ndarray:
    return np.array(
        [r.accuracy for r in results if r.dataset in names and r.method == method and r.k == k]
    )


def _cell(results, name: str, method: str, k: int | None) -> str:
    acc = _accuracies(results, [name], method, k)
    if k is None:
        return f"{acc[0]:.1%}"
    return f"{acc.mean():.1%} ± {acc.std():.1%}"


def _mean_cell(results, names: list[str], method: str, k: int | None) -> str:
    """Mean over datasets of each dataset's (mean over draws) accuracy."""
    per_dataset = [_accuracies(results, [n], method, k).mean() for n in names]
    return f"**{np.mean(per_dataset):.1%}**"


def _rate(rate: tuple[float, float] | None) -> str:
    return "-" if rate is None else f"{rate[0]:,.0f} /s \\| {rate[1]:,.0f} /s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets", nargs="+", default=list(_ucr.DATASETS), choices=_ucr.DATASETS)
    parser.add_argument("--methods", nargs="+", default=list(_ucr.METHODS), choices=_ucr.METHODS)
    parser.add_argument(
        "--labels", type=int, nargs="*", default=[5, 10], help="labeled series per class"
    )
    parser.add_argument("--draws", type=int, default=5, help="label draws per k")
    parser.add_argument("--seed", type=int, default=0, help="codebook/MiniRocket fit and draws")
    parser.add_argument("--linear", default="ridge", choices=_ucr.LINEAR)
    parser.add_argument("--repeats", type=int, default=3, help="timed encode passes")
    homes = parser.add_argument_group(
        "simulated homes (--homes): MiniRocket in the protocol of `atlas bench codebook`"
    )
    homes.add_argument("--homes", action="store_true", help="run this instead of the UCR sets")
    homes.add_argument("--preset", default="two_bath_house")
    homes.add_argument("--days", type=int, default=28)
    homes.add_argument("--home-seeds", type=int, nargs="+", default=[1, 2, 3])
    homes.add_argument("--home-labels", type=int, nargs="+", default=[2, 3])


def run(args: argparse.Namespace) -> int:
    if args.homes:
        from service.bench._ucr_homes import homes_table

        lines = homes_table(args.preset, args.days, args.home_seeds, args.home_labels, args.draws)
        print("\n".join(lines))
        return 0
    needed = {"sktime"} if set(args.datasets) & set(_ucr.SKTIME_LOADERS) else set()
    needed |= {"sktime"} if "minirocket" in args.methods else set()
    needed |= {"tslearn"} if "1nn-dtw" in args.methods or "Trace" in args.datasets else set()
    for module in sorted(needed):
        _ucr.require(module)
    versions = ", ".join(f"{m} {metadata.version(m)}" for m in sorted(needed | {"scikit-learn"}))
    print(f"generic codebook setting: {dict(GENERIC_PARAMS)}; {versions}", file=sys.stderr)
    started = time.perf_counter()
    datasets = [_ucr.load(name) for name in args.datasets]
    lines = tables(
        datasets, args.methods, args.labels, args.draws, args.seed, args.linear, args.repeats
    )
    print("\n".join(lines))
    print(f"\n(total {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0
