"""Stand-in examples: uses of a new home that the fleet can label in place of the homeowner.

WHY: measured with ``atlas bench fleet-transfer`` (docs/fleet.md), the labels a home spends
before its true accuracy reaches the week-4 targets are mostly the week-1 guided checklist
(13-20 of the ~20 labels at day 8): the per-home pipeline reaches the targets at day 8 in most
homes, so a fleet that only sharpens the classifier cannot save much. The checklist exists to
give every valve a first example. For many valves the home's own unlabeled uses already hold
unmistakable examples: a cold-only use that the fleet's category model and the rules call a
toilet, in a home with one toilet, *is* that toilet's fill valve. Which of those picks can be
trusted is what earlier homes can tell: each measured it on its own labels.

Score of use ``u`` for valve ``v`` (category ``c``, line set ``L``)::

    P(c | u) * P(v | c, L, u)

* ``P(c | u)``: the fleet category likelihood times the rules' category evidence, normalised
  over the home's categories (category knowledge: what transfers);
* ``P(v | c, L, u)``: 0 unless ``u`` ran on exactly the lines ``L``; among the home's valves of
  ``c`` on ``L``, the softmax of the spec-physics log-likelihood (ring frequency from the
  home's own pipe lengths; 1 for a valve alone in its group). Fixture identity comes from the
  home's spec, never from the fleet.

A use is a *pick* for ``v`` when ``v`` has its highest score and the score is at least
``threshold``. Trust is per key ``(category, lines)`` (a name-free key that transfers):
every fleet home counts, on its own guided labels and with a fleet model built without it,
how many of its labeled uses were picks for a valve of that key and how many of those were
right (:class:`StandinCounts`, aggregates only); :class:`StandinTrust` decides from the
pooled counts.

For a new home, a valve with a trusted key and no label of its own gets its ``k`` best picks
as training targets (never as scored labels: estimates stay on the homeowner's answers); its
own first label replaces them. The guided checklist then leaves out the items the stand-ins
cover (:func:`fleet_checklist`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from atlas.checklist import ChecklistItem, build_checklist
from atlas.domain import Category, Line
from atlas.estimate import clopper_pearson_lower
from atlas.features import EVIDENCE_COLUMNS, LINE_COLUMNS
from atlas.homespec import HomeSpec

#: A name-free key that transfers between homes: (category, sorted line names).
Key = tuple[str, tuple[str, ...]]

_ORDER = [str(c) for c in Category]


def valve_key(spec: HomeSpec, valve_id: str) -> Key:
    """``(category, lines)`` of one of the home's valves."""
    valve = spec.valve(valve_id)
    category = str(spec.hierarchy.category_of_valve(valve_id))
    return category, tuple(sorted(str(line) for line in valve.lines))


def _row_lines(X: np.ndarray) -> list[tuple[str, ...]]:
    hot = X[:, LINE_COLUMNS[0]] > 0.5
    cold = X[:, LINE_COLUMNS[1]] > 0.5
    names = (str(Line.COLD), str(Line.HOT))  # sorted order, as in valve_key
    return [
        tuple(n for n, on in zip(names, (c, h), strict=True) if on)
        for h, c in zip(hot, cold, strict=True)
    ]


def standin_scores(
    spec: HomeSpec,
    X: np.ndarray,
    physics_columns: tuple[int, int],
    likelihood: np.ndarray,
) -> np.ndarray:
    """Score per use and valve (the hierarchy's order), see the module docstring.

    ``X`` is the home's feature matrix *before* the fleet adjusted its evidence columns
    (:func:`atlas.engine.featurize.build_matrix`), ``likelihood`` the fleet category
    likelihood per use and :class:`Category` (enum order).
    """
    X = np.asarray(X, dtype=float)
    valves = list(spec.hierarchy.valve_ids)
    home_cats = sorted({str(c) for c in spec.hierarchy.category_of_fixture.values()})
    cols = [_ORDER.index(c) for c in home_cats]
    evidence = np.clip(X[:, EVIDENCE_COLUMNS[0] : EVIDENCE_COLUMNS[1]], 1e-6, None)
    joint = (np.asarray(likelihood, dtype=float) * evidence)[:, cols]
    p_cat = joint / joint.sum(axis=1, keepdims=True)
    physics = X[:, physics_columns[0] : physics_columns[1]]
    rows_by_lines: dict[tuple[str, ...], list[int]] = {}
    for i, lines in enumerate(_row_lines(X)):
        rows_by_lines.setdefault(lines, []).append(i)
    groups: dict[Key, list[int]] = {}
    for j, vid in enumerate(valves):
        groups.setdefault(valve_key(spec, vid), []).append(j)
    scores = np.zeros((X.shape[0], len(valves)))
    for (cat, lines), members in groups.items():
        rows = np.asarray(rows_by_lines.get(lines, []), dtype=int)
        if rows.size == 0:
            continue
        loglik = physics[np.ix_(rows, members)]
        within = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        within /= within.sum(axis=1, keepdims=True)
        scores[np.ix_(rows, members)] = p_cat[rows, home_cats.index(cat)][:, None] * within
    return scores


def picks(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Per use, the column of the valve it is a pick for, or -1 (see the module docstring)."""
    best = scores.argmax(axis=1)
    top = scores[np.arange(len(best)), best]
    return np.where(top >= threshold, best, -1)


@dataclass(frozen=True)
class StandinCounts:
    """One home's measured stand-in picks per key (aggregates only).

    ``counts[key] = (picks, category_right, grouped_picks, grouped_right)``: picks for a valve
    of ``key`` among the labeled uses, how many had the right category, and, for keys with
    several valves in that home (two toilets), the picks and how many named the right valve.
    """

    counts: Mapping[Key, tuple[int, int, int, int]]


def _groups(spec: HomeSpec) -> dict[Key, int]:
    sizes: dict[Key, int] = {}
    for vid in spec.hierarchy.valve_ids:
        key = valve_key(spec, vid)
        sizes[key] = sizes.get(key, 0) + 1
    return sizes


def standin_counts(
    spec: HomeSpec,
    scores: np.ndarray,
    labels: Sequence[str | None],
    threshold: float,
) -> StandinCounts:
    """Picks among the rows with a valve-level label (``labels``: valve id or None per row)."""
    valves = list(spec.hierarchy.valve_ids)
    sizes = _groups(spec)
    h = spec.hierarchy
    chosen = picks(scores, threshold)
    out: dict[Key, list[int]] = {}
    for col, label in zip(chosen, labels, strict=True):
        if col < 0 or label is None:
            continue
        key = valve_key(spec, valves[col])
        entry = out.setdefault(key, [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += int(h.category_of_valve(label) == h.category_of_valve(valves[col]))
        if sizes[key] > 1:
            entry[2] += 1
            entry[3] += int(label == valves[col])
    return StandinCounts({k: (v[0], v[1], v[2], v[3]) for k, v in out.items()})


class StandinTrust:
    """Which valves the fleet's stand-in picks can be trusted for, measured on fleet homes.

    A valve alone in its key's group in the new home (its home's only toilet) is trusted when
    the fleet's picks of that key had the right *category* often enough: then the lines and
    the category name the valve. A valve sharing its key (one of two toilets) also needs the
    spec-physics choice among them, so it is trusted on the fleet's grouped picks that named
    the right *valve*. "Often enough": the one-sided Clopper-Pearson lower bound at
    ``confidence`` reaches ``min_precision`` (8 right of 8 at the defaults; 3 of 3 is not).

    Parameters
    ----------
    counts : sequence of StandinCounts
        One per fleet home.
    min_precision : float, default=0.8
    confidence : float, default=0.8
    min_homes : int, default=3
        Homes whose picks the key's count must come from.

    Attributes
    ----------
    pooled_ : dict of key to (picks, category_right, grouped_picks, grouped_right, homes)
    alone_, grouped_ : frozenset of keys
        Keys trusted for a valve alone in its group / sharing it.
    """

    def __init__(
        self,
        counts: Sequence[StandinCounts],
        *,
        min_precision: float = 0.8,
        confidence: float = 0.8,
        min_homes: int = 3,
    ) -> None:
        if not 0 < min_precision <= 1:
            raise ValueError(f"min_precision={min_precision!r} should be in (0, 1].")
        pooled: dict[Key, list[int]] = {}
        for home in counts:
            for key, values in home.counts.items():
                entry = pooled.setdefault(key, [0, 0, 0, 0, 0])
                for i, v in enumerate(values):
                    entry[i] += v
                entry[4] += int(values[0] > 0)
        self.pooled_ = {k: tuple(v) for k, v in sorted(pooled.items())}

        def ok(right: int, n: int, homes: int) -> bool:
            return homes >= min_homes and clopper_pearson_lower(right, n, confidence) >= (
                min_precision
            )

        self.alone_ = frozenset(k for k, v in self.pooled_.items() if ok(v[1], v[0], v[4]))
        self.grouped_ = frozenset(k for k, v in self.pooled_.items() if ok(v[3], v[2], v[4]))

    def to_dict(self) -> dict[str, Any]:
        """The pooled counts and the trusted keys, as plain types (see :meth:`from_dict`)."""
        return {
            "pooled": [[c, list(lines), *values] for (c, lines), values in self.pooled_.items()],
            "alone": [[c, list(lines)] for c, lines in sorted(self.alone_)],
            "grouped": [[c, list(lines)] for c, lines in sorted(self.grouped_)],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StandinTrust:
        """The trust :meth:`to_dict` described, with its decisions as they were made."""
        trust = cls.__new__(cls)
        trust.pooled_ = {(row[0], tuple(row[1])): tuple(row[2:]) for row in d["pooled"]}
        trust.alone_ = frozenset((c, tuple(lines)) for c, lines in d["alone"])
        trust.grouped_ = frozenset((c, tuple(lines)) for c, lines in d["grouped"])
        return trust

    def covers(self, spec: HomeSpec, valve_id: str) -> bool:
        """Whether stand-ins are trusted for ``valve_id`` of the home ``spec``."""
        key = valve_key(spec, valve_id)
        return key in (self.alone_ if _groups(spec)[key] == 1 else self.grouped_)


def stand_in_targets(
    spec: HomeSpec,
    scores: np.ndarray,
    y: np.ndarray,
    trust: StandinTrust,
    *,
    threshold: float,
    k: int,
) -> np.ndarray:
    """``y`` (valve id or None per row) with stand-ins for the trusted valves it lacks.

    A trusted valve (:meth:`StandinTrust.covers`) with no row of its own in ``y`` gets its
    ``k`` best-scoring picks among the unlabeled rows. Returns a new array.
    """
    out = np.array(y, dtype=object, copy=True)
    valves = list(spec.hierarchy.valve_ids)
    have = {v for v in out.tolist() if v is not None}
    chosen = picks(scores, threshold)
    free = np.array([v is None for v in out.tolist()], dtype=bool)
    for col, vid in enumerate(valves):
        if vid in have or not trust.covers(spec, vid):
            continue
        rows = np.flatnonzero(free & (chosen == col))
        best = rows[np.argsort(-scores[rows, col], kind="stable")[:k]]
        out[best] = vid
    return out


def fleet_checklist(
    spec: HomeSpec, trust: StandinTrust | None, *, max_total: int = 20
) -> list[ChecklistItem]:
    """The guided checklist without the items whose valves the fleet's stand-ins cover.

    An item (a faucet valve, or a whole toilet, shower or appliance) is left out when one of
    its valves is covered: the homeowner then does only the rest. The stand-ins give that
    valve its first examples; the item's other valves (a shower's rarely used hot-only
    position) wait for the label requests, as they mostly did with the checklist.
    """
    items = build_checklist(spec.fixtures, max_total=max_total)
    if trust is None:
        return items
    return [item for item in items if not any(trust.covers(spec, v) for v in item.valve_ids)]
