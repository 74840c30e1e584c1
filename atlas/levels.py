"""Which level of detail the homeowner sees: a policy with goals, bounds and hysteresis.

The ladder is ``rule_categories`` (week 1: only washing machine, dishwasher and shower, which
the rule classifier recognises reliably) -> ``category`` -> ``fixture`` (lumped where needed,
see :func:`lump_fixtures`) -> ``valve``. A level is shown only when the accuracy at that level
*and* at every coarser level meets its goal (defaults from the seed protocol, Table 8-2).

By default the policy compares the one-sided *lower bound* with the goal, not the point
estimate: a point estimate of 100% from five labels is noise, and showing "kitchen sink, hot"
while the true valve accuracy is 60% is the failure the product must avoid (the benchmark's
false-promotion rate). ``use="point"`` exists for comparison.

Hysteresis: promote as soon as the next level's goals are met; demote only after the current
level's goals have failed by more than ``margin`` on ``demote_after`` consecutive evaluations.
A noisy estimate near a goal therefore does not make the display flap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from atlas.domain import Category, Fixture
from atlas.estimate import AccuracyEstimate

DISPLAY_LEVELS: tuple[str, ...] = ("rule_categories", "category", "fixture", "valve")

#: Categories the rule classifier is confident about; the only ones shown in week 1.
RULE_CONFIDENT: frozenset[Category] = frozenset(
    {Category.WASHING_MACHINE, Category.DISHWASHER, Category.SHOWER}
)

#: Seed protocol goals: to show a level, every listed level must reach its accuracy.
DEFAULT_GOALS: dict[str, dict[str, float]] = {
    "category": {"category": 0.85},
    "fixture": {"fixture": 0.82, "category": 0.87},
    "valve": {"valve": 0.80, "fixture": 0.87, "category": 0.92},
}


@dataclass(frozen=True)
class LevelPolicy:
    """Parameters of the display-level policy.

    Parameters
    ----------
    goals : mapping, default=DEFAULT_GOALS
        For each display level, the accuracy each estimation level must reach.
    use : {"lower", "point"}, default="lower"
        Which number of the estimate is compared with the goals.
    margin : float, default=0.05
        Demotion needs the value to fall below ``goal - margin``. With 90% bounds and the
        day-one prior, 0.03 demoted a third of the homes shown category back to the rules for a
        few days in week 2-3 as their first sampled labels arrived; 0.05 halves that at 0.3
        points more false promotion (``atlas bench decision-rules``, docs/estimation.md).
    demote_after : int, default=2
        ...on this many consecutive evaluations.
    first_full_day : int, default=8
        Days before it (week 1) show only the rule-confident categories.
    """

    goals: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: DEFAULT_GOALS)
    use: str = "lower"
    margin: float = 0.05
    demote_after: int = 2
    first_full_day: int = 8

    def __post_init__(self) -> None:
        if self.use not in ("lower", "point"):
            raise ValueError(f"use={self.use!r} should be 'lower' or 'point'.")
        if not 0.0 <= self.margin < 1.0:
            raise ValueError(f"margin={self.margin!r} should be in [0, 1).")
        if self.demote_after < 1:
            raise ValueError(f"demote_after={self.demote_after!r} should be >= 1.")
        unknown = set(self.goals) - set(DISPLAY_LEVELS[1:])
        if unknown:
            raise ValueError(f"goals has unknown display level(s) {sorted(unknown)}.")


@dataclass(frozen=True)
class LevelState:
    """What the policy remembers between evaluations."""

    level: str = "rule_categories"
    failures: int = 0  # consecutive evaluations with the current level's goals failed by margin


@dataclass(frozen=True)
class GoalCheck:
    """One goal compared with one estimate: the building block of a decision's reason."""

    display_level: str
    level: str
    goal: float
    value: float | None  # None: no estimate at that level
    n_labels: int
    method: str

    @property
    def met(self) -> bool:
        return self.value is not None and self.value >= self.goal


@dataclass(frozen=True)
class LevelDecision:
    """The level to show, the set of categories shown (None = all), the new state and why."""

    level: str
    shown_categories: frozenset[Category] | None
    state: LevelState
    reason: str
    checks: tuple[GoalCheck, ...]


def _checks(
    policy: LevelPolicy, display_level: str, estimates: Mapping[str, AccuracyEstimate]
) -> tuple[GoalCheck, ...]:
    out = []
    for level, goal in policy.goals.get(display_level, {}).items():
        est = estimates.get(level)
        value = None if est is None else (est.lower if policy.use == "lower" else est.point)
        out.append(
            GoalCheck(
                display_level,
                level,
                goal,
                value,
                0 if est is None else est.n_labels,
                "none" if est is None else est.method,
            )
        )
    return tuple(out)


def _describe(check: GoalCheck, use: str) -> str:
    value = "no estimate" if check.value is None else f"{use} {check.value:.1%}"
    verdict = ">=" if check.met else "<"
    return (
        f"{check.level} {value} {verdict} goal {check.goal:.0%} "
        f"({check.n_labels} labels, {check.method})"
    )


def decide_level(
    estimates: Mapping[str, AccuracyEstimate],
    state: LevelState,
    *,
    day: int,
    policy: LevelPolicy | None = None,
) -> LevelDecision:
    """One evaluation of the display policy.

    Parameters
    ----------
    estimates : mapping level -> AccuracyEstimate
        Current estimates at "category", "fixture" and "valve" (missing = nothing certified).
    state : LevelState
        Returned by the previous evaluation (``LevelState()`` at installation).
    day : int
        Day number since installation, 1-based (:func:`atlas.timetable.day_number`).
    policy : LevelPolicy or None
        Defaults to ``LevelPolicy()``.
    """
    policy = policy or LevelPolicy()
    if day < 1:
        raise ValueError(f"day={day} should be >= 1 (day 1 is the installation day).")
    if day < policy.first_full_day:
        new = LevelState("rule_categories", 0)
        reason = f"week 1 (day {day} < {policy.first_full_day}): rule-confident categories only"
        return LevelDecision(new.level, RULE_CONFIDENT, new, reason, ())

    current = DISPLAY_LEVELS.index(state.level)
    # Promotion: climb while the next level's goals (raw, no margin) are met.
    target = current
    checks: tuple[GoalCheck, ...] = ()
    while target + 1 < len(DISPLAY_LEVELS):
        nxt = _checks(policy, DISPLAY_LEVELS[target + 1], estimates)
        if not all(c.met for c in nxt):
            checks = checks or nxt
            break
        target += 1
        checks = nxt
    if target > current:
        level = DISPLAY_LEVELS[target]
        reason = f"promoted to {level}: " + "; ".join(_describe(c, policy.use) for c in checks)
        return _decision(level, LevelState(level, 0), reason, checks)

    # Hold or demote: the current level fails only below goal - margin.
    held = _checks(policy, state.level, estimates)
    failing = [c for c in held if c.value is None or c.value < c.goal - policy.margin]
    if not failing:
        reason = f"kept {state.level}: " + "; ".join(_describe(c, policy.use) for c in held)
        if not held:
            reason = f"kept {state.level}: no goals for it"
        return _decision(state.level, LevelState(state.level, 0), reason, held)
    failures = state.failures + 1
    text = "; ".join(_describe(c, policy.use) for c in failing)
    if failures < policy.demote_after:
        reason = (
            f"kept {state.level} (failure {failures}/{policy.demote_after}, margin "
            f"{policy.margin:.0%}): {text}"
        )
        return _decision(state.level, LevelState(state.level, failures), reason, held)
    level = _highest_holding(policy, estimates, below=current)
    reason = f"demoted {state.level} -> {level} after {failures} failed evaluations: {text}"
    return _decision(level, LevelState(level, 0), reason, held)


def level_allowed_by(
    accuracy: Mapping[str, float | None], *, day: int, policy: LevelPolicy | None = None
) -> str:
    """The finest display level whose goals, and every coarser level's, ``accuracy`` meets.

    What :func:`decide_level` would show on ``day`` if it knew the accuracy exactly (no bound,
    no hysteresis): the benchmarks and the demo compare the level shown with it, given the TRUE
    accuracy. Week 1 is ``rule_categories``; a missing or NaN accuracy meets no goal.

    >>> level_allowed_by({"category": 0.91, "fixture": 0.90, "valve": 0.90}, day=8)
    'fixture'
    """
    policy = policy or LevelPolicy()
    allowed = DISPLAY_LEVELS[0]
    if day < policy.first_full_day:
        return allowed
    for display in DISPLAY_LEVELS[1:]:
        goals = policy.goals.get(display, {}).items()
        if not all(_meets(accuracy.get(level), goal) for level, goal in goals):
            break
        allowed = display
    return allowed


def _meets(value: float | None, goal: float) -> bool:
    return value is not None and not np.isnan(value) and value >= goal


def _highest_holding(
    policy: LevelPolicy, estimates: Mapping[str, AccuracyEstimate], below: int
) -> str:
    """The highest level under ``below`` whose goals hold within the margin."""
    for idx in range(below - 1, 0, -1):
        checks = _checks(policy, DISPLAY_LEVELS[idx], estimates)
        if all(c.value is not None and c.value >= c.goal - policy.margin for c in checks):
            return DISPLAY_LEVELS[idx]
    return DISPLAY_LEVELS[0]


def _decision(
    level: str, state: LevelState, reason: str, checks: tuple[GoalCheck, ...]
) -> LevelDecision:
    shown = RULE_CONFIDENT if level == "rule_categories" else None
    return LevelDecision(level, shown, state, reason, checks)


def confusion_from_probabilities(proba: np.ndarray) -> np.ndarray:
    """Expected fixture confusion ``C[i, j] = P(predicted j | true i)`` from probabilities.

    Without labels the truth is unknown, so each use counts as true fixture ``i`` with its
    predicted probability ``proba[:, i]`` (a calibrated model's belief) and as predicted
    ``argmax``. Works on unlabelled uses, i.e. on all of them.
    """
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"proba should have shape (n_samples, n_fixtures), got {p.shape}.")
    predicted = np.eye(p.shape[1])[p.argmax(axis=1)]
    counts = p.T @ predicted
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def lump_fixtures(
    confusion: np.ndarray,
    fixtures: Sequence[Fixture],
    *,
    threshold: float = 0.2,
) -> list[tuple[Fixture, ...]]:
    """Group fixtures of one category that the model confuses into lumps.

    Two fixtures of the same category are joined when either is predicted as the other at
    least ``threshold`` of the time; groups are the connected components. Fixtures of different
    categories are never lumped (the category level would then contradict itself).

    Returns
    -------
    list of tuples of Fixture
        Every fixture exactly once, in input order; singletons for fixtures told apart.
    """
    c = np.asarray(confusion, dtype=float)
    n = len(fixtures)
    if c.shape != (n, n):
        raise ValueError(f"confusion should have shape ({n}, {n}) for {n} fixtures, got {c.shape}.")
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            same = fixtures[i].category == fixtures[j].category
            if same and max(c[i, j], c[j, i]) >= threshold:
                parent[root(j)] = root(i)
    groups: dict[int, list[Fixture]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(fixtures[i])
    return [tuple(g) for g in groups.values()]


#: Prefix of a lump's label: ``"lump:" + "+".join(fixture ids)``.
LUMP_PREFIX = "lump:"


def lump_id(fixture_ids: Sequence[str]) -> str:
    """The label of a lump, e.g. ``"lump:wc_down+wc_up"`` (ids in the order given)."""
    return LUMP_PREFIX + "+".join(fixture_ids)


def lump_members(label: str) -> tuple[str, ...] | None:
    """The fixture ids of a lump label (None: ``label`` is not a lump)."""
    if not label.startswith(LUMP_PREFIX):
        return None
    return tuple(label[len(LUMP_PREFIX) :].split("+"))


_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def lump_label(lump: Sequence[Fixture]) -> str:
    """Homeowner text for a lump: "Upstairs toilet", "one of the two upstairs toilets".

    >>> from atlas.domain import Category, Fixture, Handle
    >>> wc = [Fixture(f"wc{i}", f"Toilet {i}", Category.TOILET, Handle.FILL_VALVE, "upstairs")
    ...       for i in (1, 2)]
    >>> lump_label(wc)
    'one of the two upstairs toilets'
    """
    if not lump:
        raise ValueError("lump should hold at least one fixture, got none.")
    if len(lump) == 1:
        return lump[0].name
    count = _NUMBER_WORDS.get(len(lump), str(len(lump)))
    noun = str(lump[0].category).replace("_", " ")
    plural = noun + ("es" if noun.endswith(("sh", "ch")) else "s")
    locations = {f.location for f in lump}
    if len(locations) == 1 and lump[0].location:
        return f"one of the {count} {lump[0].location} {plural}"
    return "one of: " + ", ".join(f.name for f in lump)
