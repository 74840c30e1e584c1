"""Coverage and bias of the accuracy estimator on synthetic homes with known accuracy.

Each synthetic home runs ``--rounds`` label-request rounds; every round has a fresh pool of
``--pool`` answerable uses, each correct with probability ``accuracy``, and a strategy scores
them: ``errors`` prefers the uses the model gets wrong (what active learning does), ``correct``
prefers the ones it gets right (the case that would inflate a naive estimate), ``uniform`` has
no preference. :func:`atlas.sampling.draw_batch` draws ``--batch`` of them (one uniform audit
item, logged inclusion probabilities) and :func:`atlas.estimate.estimate_accuracy` estimates
the accuracy. The truth is the realised share of correct uses over all pools. Reported per
(method, accuracy, strategy): coverage of the one-sided lower bound (nominal ``--confidence``),
mean point estimate, mean lower bound, mean truth, and the naive (unweighted) estimate's bias.

    atlas bench estimator --homes 2000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.estimate import METHODS, ScoredLabel, estimate_accuracy, naive_accuracy
from atlas.sampling import draw_batch

PREFERENCES: tuple[str, ...] = ("errors", "correct", "uniform")
_PRED = {"category": "a"}
_RIGHT = {"category": "a"}
_WRONG = {"category": "b"}


@dataclass(frozen=True)
class Design:
    """The synthetic label-request process of one home."""

    rounds: int = 10
    pool: int = 30
    batch: int = 3
    preference_strength: float = 2.0  # score bonus of a preferred use, in noise units


def simulate_home(
    rng: np.random.Generator, accuracy: float, preference: str, design: Design
) -> tuple[list[ScoredLabel], float]:
    """Scored category labels of one home and its realised accuracy over all pools."""
    if preference not in PREFERENCES:
        raise ValueError(f"preference={preference!r} should be one of {PREFERENCES}.")
    labels, n_correct = [], 0
    for r in range(design.rounds):
        correct = rng.random(design.pool) < accuracy
        n_correct += int(correct.sum())
        wanted = {"errors": ~correct, "correct": correct, "uniform": np.zeros(design.pool, bool)}
        scores = design.preference_strength * wanted[preference] + rng.normal(size=design.pool)
        batch = draw_batch(scores, design.batch, rng)
        for i, p, audit in zip(batch.indices, batch.inclusion_prob, batch.is_audit, strict=True):
            truth = _RIGHT if correct[i] else _WRONG
            labels.append(
                ScoredLabel(f"{r}-{i}", "category", _PRED, truth, 1, float(p), bool(audit))
            )
    return labels, n_correct / (design.pool * design.rounds)


def measure(
    method: str,
    accuracy: float,
    preference: str,
    n_homes: int,
    seed: int,
    design: Design,
    confidence: float,
) -> dict[str, float]:
    """Coverage, mean estimate, mean bound, mean truth and naive bias over ``n_homes``."""
    rng = np.random.default_rng([seed, int(accuracy * 1000), PREFERENCES.index(preference)])
    covered, points, lowers, truths, naive = [], [], [], [], []
    for _ in range(n_homes):
        labels, truth = simulate_home(rng, accuracy, preference, design)
        est = estimate_accuracy(labels, "category", method=method, confidence=confidence)
        covered.append(est.lower <= truth)
        points.append(est.point)
        lowers.append(est.lower)
        truths.append(truth)
        naive.append(naive_accuracy(labels, "category"))
    return {
        "coverage": float(np.mean(covered)),
        "mean_estimate": float(np.mean(points)),
        "mean_lower": float(np.mean(lowers)),
        "mean_truth": float(np.mean(truths)),
        "estimate_bias": float(np.mean(points) - np.mean(truths)),
        "naive_bias": float(np.mean(naive) - np.mean(truths)),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--homes", type=int, default=2000, help="synthetic homes per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accuracies", nargs="+", type=float, default=[0.6, 0.85, 0.95])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--preferences", nargs="+", default=list(PREFERENCES), choices=PREFERENCES)
    parser.add_argument("--rounds", type=int, default=Design.rounds)
    parser.add_argument("--pool", type=int, default=Design.pool)
    parser.add_argument("--batch", type=int, default=Design.batch)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")


def run(args: argparse.Namespace) -> int:
    design = Design(args.rounds, args.pool, args.batch)
    print(
        f"{args.homes} homes per cell, {design.rounds} rounds x {design.batch} labels from "
        f"pools of {design.pool}, confidence {args.confidence}, seed {args.seed}"
    )
    print(
        f"{'method':<10} {'acc':>5} {'prefers':<8} {'coverage':>8} {'estimate':>8} "
        f"{'lower':>6} {'truth':>6} {'bias':>7} {'naive bias':>10}"
    )
    results = []
    for method in args.methods:
        for acc in args.accuracies:
            for pref in args.preferences:
                m = measure(method, acc, pref, args.homes, args.seed, design, args.confidence)
                results.append({"method": method, "accuracy": acc, "preference": pref, **m})
                print(
                    f"{method:<10} {acc:>5.2f} {pref:<8} {m['coverage']:>8.3f} "
                    f"{m['mean_estimate']:>8.3f} {m['mean_lower']:>6.3f} {m['mean_truth']:>6.3f} "
                    f"{m['estimate_bias']:>+7.3f} {m['naive_bias']:>+10.3f}"
                )
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
