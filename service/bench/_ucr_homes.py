"""MiniRocket features on the simulated homes, in the protocol of ``atlas bench codebook``.

Do MiniRocket-style features beat the codebook at 2-3 labels per valve on the simulated homes?
This runs the few-label valve protocol of :mod:`service.bench.codebook`
(its simulation, label draws and per-use scoring, unchanged) on five feature sets: the default
codebook (codes + physical, as in docs/codebook.md), the generic codebook
(``Codebook.generic()``) + physical, MiniRocket alone, MiniRocket + the physical features, and
the physical features alone. MiniRocket and the codebooks are fitted without labels on every
window of the run. ``atlas bench codebook-ucr --homes``.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from codebook import Codebook
from service.bench import _ucr
from service.bench.codebook import few_label_accuracy, physical_features, simulate


def _equal_length(windows: list[np.ndarray]) -> np.ndarray:
    """Windows as one (n, 1, length) panel: shorter ones padded with their last value."""
    length = max(x.size for x in windows)
    return np.stack([np.pad(x, (0, length - x.size), mode="edge") for x in windows])[:, None, :]


def homes_table(
    preset: str,
    days: int,
    seeds: Sequence[int],
    labels: Sequence[int],
    draws: int,
    min_uses: int = 8,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[str]:
    """Per-use valve accuracy (mean ± sd over seeds x draws) per feature set and ``k``."""
    rocket = _ucr.require("sktime.transformations.panel.rocket").MiniRocket
    results: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    names: list[str] = []
    for seed in seeds:
        run = simulate(preset, days, seed)
        physical = physical_features(run.windows, run.sample_rate_hz)
        started = time.perf_counter()
        codes = Codebook(
            sample_rate_hz=run.sample_rate_hz, physical_features=False, random_state=seed
        ).fit(run.windows)
        codes = codes.transform(run.windows)
        codebook_s = time.perf_counter() - started
        started = time.perf_counter()
        generic = Codebook.generic(random_state=seed).fit(run.windows).transform(run.windows)
        generic_s = time.perf_counter() - started
        started = time.perf_counter()
        panel = _equal_length(run.windows)
        mini = np.asarray(rocket(random_state=seed, n_jobs=1).fit_transform(panel), dtype=float)
        log(
            f"seed {seed}: {len(run.windows)} events; fit + transform: codebook {codebook_s:.1f}"
            f" s, generic codebook {generic_s:.1f} s, MiniRocket ({mini.shape[1]} features) "
            f"{time.perf_counter() - started:.1f} s"
        )
        sets = {
            "codebook medoids (codes + physical)": np.hstack([codes, physical]),
            "generic codebook (codes + level + physical)": np.hstack([generic, physical]),
            "MiniRocket": mini,
            "MiniRocket + physical": np.hstack([mini, physical]),
            "physical features only": physical,
        }
        names = list(sets)
        for k in labels:
            for draw in range(draws):
                for name, features in sets.items():
                    rng = np.random.default_rng([seed, k, draw])  # as atlas bench codebook
                    use_acc, event_acc, _ = few_label_accuracy(features, run, k, rng, min_uses)
                    results[(name, k)].append((use_acc, event_acc))
            log(f"seed {seed}: {k} labels done")
    header = " | ".join(f"{k} label{'s' if k > 1 else ''}" for k in labels)
    lines = [
        f"Per-use valve accuracy, {preset}, {days} days, mean ± sd over {len(seeds)} seeds x "
        f"{draws} draws (per-event accuracy in brackets)",
        "",
        f"| features | {header} |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for name in names:
        cells = []
        for k in labels:
            scores = np.array(results[(name, k)])
            cells.append(
                f"{scores[:, 0].mean():.1%} ± {scores[:, 0].std():.1%} ({scores[:, 1].mean():.1%})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
