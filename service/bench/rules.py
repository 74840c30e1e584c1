"""Rule classifier precision and coverage per category against simulator ground truth.

For every preset and seed: simulate, round-trip the events through the wire encoding, pair them
(:func:`atlas.pairing.pair_events`), classify the uses with the rules configured from the home
spec, and compare with the truth. Per category:

* precision: of the uses the rules called that category, the fraction whose true category it is
  (a predicted use's truth is the category of most of its events);
* coverage: of the true uses of that category, the fraction whose predicted use got that
  category (a true use maps to the predicted use holding its first event).

``faucet (either)`` scores the faucet rule's narrowing to "kitchen or bathroom faucet".
``--calibrate`` prints each rule's own precision (before abstention), the figures that go into
``rules/table.py``; calibrate on seeds other than the evaluation seeds.

    atlas bench rules                      # 3 presets x 7 days x seeds 1-5
    atlas bench rules --calibrate --seeds 11 12 13
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from atlas.pairing import pair_events
from rules import RuleClassifier, RuleConfig, build_views
from service.bench.pairing import simulate

PRESETS = ("apartment", "two_bath_house", "three_bath_house")
FAUCET_GROUP = "faucet (either)"
FAUCETS = frozenset({"kitchen_faucet", "bathroom_faucet"})


@dataclass
class Tally:
    """Counts for one category across runs."""

    true_uses: int = 0
    covered: int = 0
    predicted: int = 0
    correct: int = 0

    def add(self, other: Tally) -> None:
        self.true_uses += other.true_uses
        self.covered += other.covered
        self.predicted += other.predicted
        self.correct += other.correct


@dataclass
class RunResult:
    tallies: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    rule_hits: Counter = field(default_factory=Counter)  # rule -> uses it won
    rule_correct: Counter = field(default_factory=Counter)  # rule -> of those, truly its category
    confusions: Counter = field(default_factory=Counter)  # (predicted, true) -> count
    n_uses: int = 0


def _majority(categories: list[str]) -> str:
    counts = Counter(categories)
    return max(sorted(counts), key=counts.__getitem__)


def evaluate_run(
    preset: str, days: int, seed: int, calibrate: bool = False, overrides: dict | None = None
) -> RunResult:
    """Simulate one home, pair, classify and tally against the truth.

    ``calibrate`` sets ``min_precision`` to 0, so every rule decides and its precision shows.
    """
    home = simulate(preset, days, seed)
    pairing = pair_events(home.events)
    views = build_views(pairing.uses, pairing.features, pairing.lines)
    settings = dict(overrides or {})
    if calibrate:
        settings["min_precision"] = 0.0
    config = RuleConfig.from_home_spec(home.spec, **settings)
    decisions = RuleClassifier(config).classify(views)
    truth = home.truth
    out = RunResult(n_uses=len(views))
    decided_of: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for view, decision in zip(views, decisions, strict=True):
        true_category = _majority([truth[e]["category"] for e in view.use.event_ids])
        for event_id in view.use.event_ids:
            decided_of[event_id] = (decision.category, decision.candidates)
        if decision.fired:
            rule = decision.fired[0]
            out.rule_hits[rule] += 1
            out.rule_correct[rule] += true_category in decision.candidates
        if decision.category is not None:
            out.tallies[decision.category].predicted += 1
            out.tallies[decision.category].correct += decision.category == true_category
            out.confusions[(decision.category, true_category)] += 1
        elif set(decision.candidates) == FAUCETS:
            out.tallies[FAUCET_GROUP].predicted += 1
            out.tallies[FAUCET_GROUP].correct += true_category in FAUCETS
    first_event: dict[str, str] = {}
    for event_id in sorted(truth, key=lambda e: (truth[e]["action"] != "open", e)):
        first_event.setdefault(truth[event_id]["use_id"], event_id)
    for event_id in first_event.values():
        category = truth[event_id]["category"]
        decided, candidates = decided_of[event_id]
        out.tallies[category].true_uses += 1
        out.tallies[category].covered += decided == category
        if category in FAUCETS:
            out.tallies[FAUCET_GROUP].true_uses += 1
            out.tallies[FAUCET_GROUP].covered += decided in FAUCETS or set(candidates) == FAUCETS
    return out


def _evaluate(job: tuple[str, int, int, bool, dict]) -> RunResult:
    return evaluate_run(*job)


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f}" if den else "-"


def table(result: RunResult) -> str:
    """A Markdown table of precision and coverage per category."""
    rows = [
        "| category | true uses | predicted | precision | coverage |",
        "|---|---:|---:|---:|---:|",
    ]
    for category in sorted(result.tallies, key=lambda c: (c == FAUCET_GROUP, c)):
        t = result.tallies[category]
        rows.append(
            f"| {category} | {t.true_uses} | {t.predicted} | {_ratio(t.correct, t.predicted)} "
            f"| {_ratio(t.covered, t.true_uses)} |"
        )
    return "\n".join(rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), help="preset names")
    parser.add_argument("--days", type=int, default=7, help="days per run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5], help="seeds")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="no abstention (min_precision 0): measure each rule's precision for rules/table.py",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        metavar="NAME=VALUE",
        help="override numeric RuleConfig thresholds, e.g. --set mixed_drop_factor=0.75",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    overrides = {}
    for item in args.set or []:
        name, _, value = item.partition("=")
        overrides[name] = float(value)
    jobs = [(p, args.days, s, args.calibrate, overrides) for p in args.presets for s in args.seeds]
    print(f"{len(jobs)} runs ({args.days} days each)...", file=sys.stderr)
    total = RunResult()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for part in pool.map(_evaluate, jobs):
            for category, tally in part.tallies.items():
                total.tallies[category].add(tally)
            total.rule_hits.update(part.rule_hits)
            total.rule_correct.update(part.rule_correct)
            total.confusions.update(part.confusions)
            total.n_uses += part.n_uses
    if args.json:
        print(
            json.dumps(
                {
                    "presets": args.presets,
                    "days": args.days,
                    "seeds": args.seeds,
                    "categories": {c: vars(t) for c, t in sorted(total.tallies.items())},
                    "rules": {
                        r: {"won": n, "correct": total.rule_correct[r]}
                        for r, n in sorted(total.rule_hits.items())
                    },
                },
                indent=2,
            )
        )
        return 0
    print(f"presets {', '.join(args.presets)}; {args.days} days; seeds {args.seeds}")
    print(f"predicted uses classified: {total.n_uses}\n")
    print(table(total))
    print("\nrule | won | precision (before abstention)")
    for rule, n in sorted(total.rule_hits.items()):
        print(f"{rule} | {n} | {_ratio(total.rule_correct[rule], n)}")
    wrong = [(k, n) for k, n in total.confusions.most_common() if k[0] != k[1]]
    if wrong:
        print("\nmistakes (predicted <- true: count): ", end="")
        print(", ".join(f"{p} <- {t}: {n}" for (p, t), n in wrong[:12]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
