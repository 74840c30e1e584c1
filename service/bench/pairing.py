"""Pairing accuracy against simulator ground truth (fraction of true uses grouped exactly).

Simulates a preset home, passes every event through the published encoding (as the intake
receives it), pairs them with :func:`atlas.pairing.pair_events` and compares each true use (the
events sharing ``truth.use_id``) with the predicted uses. A true use counts as correct only when
one predicted use holds exactly its events. Failures are broken down by category and by whether
another use overlapped on the same line.

    atlas bench pairing --preset two_bath_house --days 28 --seed 1

``--live`` pairs as the service does instead: events are stored in SQLite in the order they
arrive (each once its window is captured, at ``t`` + window length) and the service's
:class:`service.intake.pairing_step.Pairer` re-pairs after every event, storing only the uses
that have settled; what is still open at the end is paired as a final file would be. It measures
what storing uses early (for a short classification latency) costs in pairing accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from atlas.events import Event, decode_event, encode_event
from atlas.homespec import HomeSpec
from atlas.pairing import PairingResult, pair_events
from atlas.uses import WaterUse
from service.intake.pipeline import IngestPipeline
from service.storage.engine import make_engine, upgrade
from service.storage.events import EventRow, insert_events
from service.storage.homes import upsert_home
from service.storage.uses import load_uses
from simulator.generate import generate_run
from simulator.presets import load_preset


@dataclass(frozen=True)
class SimulatedHome:
    """A simulated run as the service would see it, with the truth kept aside."""

    spec: HomeSpec
    events: list[Event]
    truth: dict[str, dict]  # event id -> truth dict


def simulate(preset: str, days: int, seed: int, variation: float = 1.0) -> SimulatedHome:
    """Generate a run and round-trip every event through the wire encoding.

    ``variation`` scales the simulator's plumbing spread (:func:`simulator.generate.generate_run`).
    """
    spec = load_preset(preset)
    sim_events = generate_run(spec, days=days, seed=seed, variation=variation)
    events = [decode_event(encode_event(s.event)) for s in sim_events]
    truth = {s.event.event_id: dict(s.truth) for s in sim_events}
    return SimulatedHome(spec, events, truth)


def true_uses(truth: dict[str, dict]) -> dict[str, frozenset[str]]:
    """Event ids of each true use, by ``truth.use_id``."""
    groups: dict[str, set[str]] = defaultdict(set)
    for event_id, t in truth.items():
        groups[t["use_id"]].add(event_id)
    return {use_id: frozenset(ids) for use_id, ids in groups.items()}


def _failure_kind(true_ids: frozenset[str], predicted: dict[str, WaterUse]) -> str:
    """Why a true use was not recovered: split over several uses, merged with others, or both."""
    holders = {predicted[e].use_id: predicted[e] for e in true_ids if e in predicted}
    if len(holders) > 1:
        return "split"
    (use,) = holders.values()
    return "merged" if set(use.event_ids) > true_ids else "other"


@dataclass(frozen=True)
class PairingScore:
    n_true: int
    n_correct: int
    by_category: dict[str, tuple[int, int]]  # category -> (n_true, n_correct)
    overlap: tuple[int, int]  # true uses that overlapped another: (n, n_correct)
    failures: Counter  # (category, kind) -> count
    statuses: Counter  # predicted use status -> count

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_true if self.n_true else float("nan")


def score_pairing(result: PairingResult, truth: dict[str, dict]) -> PairingScore:
    """Compare predicted uses with the truth's use ids."""
    predicted_groups = {frozenset(u.event_ids) for u in result.uses}
    holder = {e: u for u in result.uses for e in u.event_ids}
    by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    overlap = [0, 0]
    failures: Counter = Counter()
    n_correct = 0
    for ids in true_uses(truth).values():
        first = truth[next(iter(ids))]
        category = first["category"]
        overlapped = any(truth[e].get("overlap") for e in ids)
        ok = ids in predicted_groups
        n_correct += ok
        by_category[category][0] += 1
        by_category[category][1] += ok
        if overlapped:
            overlap[0] += 1
            overlap[1] += ok
        if not ok:
            failures[(category, _failure_kind(ids, holder))] += 1
    return PairingScore(
        n_true=sum(v[0] for v in by_category.values()),
        n_correct=n_correct,
        by_category={k: (v[0], v[1]) for k, v in sorted(by_category.items())},
        overlap=(overlap[0], overlap[1]),
        failures=failures,
        statuses=Counter(str(u.status) for u in result.uses),
    )


def pair_live(home: SimulatedHome) -> PairingResult:
    """The uses the service stores when the events arrive one by one (see the module doc)."""

    def arrival(event: Event) -> datetime:
        return event.t + timedelta(seconds=len(event.samples) / event.sample_rate_hz)

    with tempfile.TemporaryDirectory(prefix="atlas-pairing-") as workdir:
        db = make_engine(f"sqlite:///{workdir}/atlas.db")
        try:
            upgrade(db)
            with db.begin() as conn:
                upsert_home(conn, home.spec, now=min(e.t for e in home.events))
            ingest = IngestPipeline(db, clock=None)
            for event in sorted(home.events, key=arrival):
                with db.begin() as conn:
                    insert_events(conn, [EventRow(event)], datetime.now(UTC))
                ingest.pair({event.home_id})
            ingest.pair({home.spec.home_id}, final=True)
            with db.connect() as conn:
                stored = load_uses(conn, home.spec.home_id)
        finally:
            db.dispose()
    return PairingResult(stored, [], {}, {})


def _report(score: PairingScore, elapsed_s: float, n_events: int) -> str:
    lines = [
        f"events {n_events}, true uses {score.n_true}, correctly paired {score.n_correct}: "
        f"accuracy {score.accuracy:.4f}",
        f"overlapping true uses {score.overlap[0]}, correct {score.overlap[1]}",
        "predicted use statuses: "
        + ", ".join(f"{k} {v}" for k, v in sorted(score.statuses.items())),
        f"pairing time {elapsed_s:.1f} s",
        "",
        f"{'category':<18}{'true uses':>10}{'correct':>9}{'accuracy':>10}  failures",
    ]
    for category, (n, ok) in score.by_category.items():
        kinds = ", ".join(
            f"{kind} {count}"
            for (cat, kind), count in sorted(score.failures.items())
            if cat == category
        )
        lines.append(f"{category:<18}{n:>10}{ok:>9}{ok / n:>10.3f}  {kinds}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="two_bath_house", help="simulator preset name")
    parser.add_argument("--days", type=int, default=28, help="days to simulate")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument(
        "--open-timeout-s", type=float, default=3600.0, help="open timeout passed to pairing"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="pair in arrival order through the service's Pairer and SQLite (slower)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    print(f"simulating {args.preset}, {args.days} days, seed {args.seed}...", file=sys.stderr)
    home = simulate(args.preset, args.days, args.seed)
    start = time.perf_counter()
    if args.live:
        result = pair_live(home)
    else:
        result = pair_events(home.events, open_timeout_s=args.open_timeout_s)
    elapsed = time.perf_counter() - start
    score = score_pairing(result, home.truth)
    if args.json:
        print(
            json.dumps(
                {
                    "preset": args.preset,
                    "days": args.days,
                    "seed": args.seed,
                    "events": len(home.events),
                    "true_uses": score.n_true,
                    "correct": score.n_correct,
                    "accuracy": score.accuracy,
                    "by_category": score.by_category,
                    "overlap": score.overlap,
                    "failures": {f"{c}/{k}": n for (c, k), n in sorted(score.failures.items())},
                },
                indent=2,
            )
        )
    else:
        print(_report(score, elapsed, len(home.events)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
