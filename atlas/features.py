"""One feature vector per water use, with a fixed layout the classifier relies on.

WHY a fixed layout: the classifier applies hard structure (line masks, rule evidence) from
known columns, and the label-selection strategies cluster on the same vectors. Keeping the
layout in one place (``LINE_COLUMNS``, ``EVIDENCE_COLUMNS``, :func:`feature_names`) means the
live service and the offline benchmark build identical matrices.

Columns, in order:

1. ``line_hot``, ``line_cold``: which lines the use was seen on (0/1).
2. ``evidence_<category>``: the rule classifier's likelihood for each
   :class:`~atlas.domain.Category` (all 1.0 when there is no rule decision: no information).
3. ``log_duration_s``, ``duration_missing``: how long the water ran (open-ended and orphan
   uses have no duration).
4. ``drop_kpa_hot``, ``drop_kpa_cold``: steady pressure drop per line, a proxy for the flow.
5. ``tod_sin``, ``tod_cos``: home-local time of day on the unit circle (23:59 is next to 00:00).
6. ``log_gap_s``: seconds since the previous use on one of the same lines (log, capped at a
   day); ``n_recent``: uses on those lines in the previous 30 minutes. Appliances fill in bursts
   and toilets refill right after a flush, so sequence context separates them.
7. ``<line>_<action>_<feature>``: :data:`atlas.transient.FEATURE_NAMES` for the open and close
   transient of each line (0 when absent; the line columns say whether it was).
8. ``code_<i>``: codebook codes of the use's transients (optional, precomputed by the caller).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from atlas.domain import Category, Line
from atlas.events import Event
from atlas.transient import FEATURE_NAMES, TransientFeatures, transient_features
from atlas.uses import WaterUse

LINES: tuple[str, ...] = (str(Line.HOT), str(Line.COLD))
ACTIONS: tuple[str, ...] = ("open", "close")
LINE_COLUMNS: tuple[int, int] = (0, 1)
EVIDENCE_COLUMNS: tuple[int, int] = (2, 2 + len(Category))
RECENT_WINDOW_S = 1800.0
MAX_GAP_S = 86400.0

_BASE_NAMES: tuple[str, ...] = (
    "line_hot",
    "line_cold",
    *(f"evidence_{c}" for c in Category),
    "log_duration_s",
    "duration_missing",
    "drop_kpa_hot",
    "drop_kpa_cold",
    "tod_sin",
    "tod_cos",
    "log_gap_s",
    "n_recent",
    *(f"{line}_{action}_{name}" for line in LINES for action in ACTIONS for name in FEATURE_NAMES),
)


def feature_names(n_codes: int = 0) -> tuple[str, ...]:
    """Column names of :func:`use_features` with ``n_codes`` codebook columns."""
    return _BASE_NAMES + tuple(f"code_{i}" for i in range(n_codes))


def transient_table(
    events: Iterable[Event], features: Mapping[str, TransientFeatures] | None = None
) -> dict[str, tuple[str, np.ndarray]]:
    """``event_id -> (line, physical feature vector)``: computed once, reused every round.

    ``features`` (e.g. :attr:`atlas.pairing.PairingResult.features`) avoids recomputing them.
    """
    known = features or {}
    table = {}
    for e in events:
        tf = known.get(e.event_id) or transient_features(e.samples, e.sample_rate_hz)
        table[e.event_id] = (e.line, tf.as_vector())
    return table


def use_codes(
    uses: Sequence[WaterUse], event_codes: Mapping[str, np.ndarray], n_codes: int
) -> np.ndarray:
    """Codebook codes per use: mean over its open events, then mean over its close events.

    ``event_codes`` maps event ids to code vectors (``codebook.Codebook.transform`` rows); a use
    without codes for an action gets zeros there. Shape (n_uses, 2 * n_codes).
    """
    out = np.zeros((len(uses), 2 * n_codes))
    for row, use in enumerate(uses):
        for a, ids in enumerate((use.open_event_ids, use.close_event_ids)):
            vectors = [event_codes[e] for e in ids if e in event_codes]
            if vectors:
                out[row, a * n_codes : (a + 1) * n_codes] = np.mean(vectors, axis=0)
    return out


def rule_evidence(decisions: Sequence[Any], *, floor: float = 0.05) -> np.ndarray:
    """Likelihood per category (enum order) from rule decisions, for ``use_features(evidence=)``.

    A decided category gets the rule's measured precision ``c`` and every other category
    ``max(floor, (1 - c) / (n_categories - 1))``; an undecided rule that narrowed the use to
    some categories (e.g. "a faucet") gives them 1 and the rest ``floor``; no rule: all 1 (no
    information). Duck-typed on ``category``, ``confidence`` and ``candidates``
    (:class:`rules.classifier.RuleDecision`) so :mod:`atlas` does not import :mod:`rules`.
    """
    if not 0 < floor <= 1:
        raise ValueError(f"floor={floor!r} should be in (0, 1].")
    order = [str(c) for c in Category]
    out = np.ones((len(decisions), len(order)))
    for row, d in enumerate(decisions):
        if d.category is not None and str(d.category) in order:
            c = float(d.confidence)
            out[row] = max(floor, (1 - c) / (len(order) - 1))
            out[row, order.index(str(d.category))] = max(c, floor)
        elif d.candidates:
            out[row] = floor
            for cat in d.candidates:
                if str(cat) in order:
                    out[row, order.index(str(cat))] = 1.0
    return out


def use_features(
    uses: Sequence[WaterUse],
    transients: Mapping[str, tuple[str, np.ndarray]],
    *,
    codes: np.ndarray | None = None,
    evidence: np.ndarray | None = None,
    timezone: str = "UTC",
    rows: Sequence[int] | None = None,
) -> np.ndarray:
    """Feature matrix (n_uses, n_features) in the layout of the module docstring.

    Parameters
    ----------
    uses : sequence of WaterUse
        The home's uses; sequence context is computed among them, so pass all of them in one
        call (order does not matter).
    transients : mapping
        From :func:`transient_table`; an event id missing from it leaves its columns at 0.
    codes : ndarray of shape (n_uses, n_codes), default=None
        Codebook codes per use (e.g. ``codebook.Codebook.transform`` pooled over the use's
        transients), appended as is.
    evidence : ndarray of shape (n_uses, len(Category)), default=None
        Rule-classifier likelihoods per category (enum order); None means no information.
    timezone : str, default="UTC"
        The home's IANA time zone, for the time-of-day columns.
    rows : sequence of int, default=None
        Only these rows (indices into ``uses``, which stay the sequence context); ``codes`` and
        ``evidence`` then have one row per index. The same rows as the full matrix's, for the
        cost of a few when a few new uses need them.
    """
    picked = range(len(uses)) if rows is None else list(rows)
    n = len(picked)
    tz = ZoneInfo(timezone)
    for name, extra in (("codes", codes), ("evidence", evidence)):
        if extra is not None and (np.ndim(extra) != 2 or np.shape(extra)[0] != n):
            raise ValueError(f"{name} has shape {np.shape(extra)}; expected ({n}, ...).")
    if evidence is not None and np.shape(evidence)[1] != len(Category):
        raise ValueError(f"evidence has {np.shape(evidence)[1]} columns; expected {len(Category)}.")
    X = np.zeros((n, len(_BASE_NAMES)))
    X[:, EVIDENCE_COLUMNS[0] : EVIDENCE_COLUMNS[1]] = 1.0 if evidence is None else evidence
    context = _sequence_context(uses)
    phys_start = _BASE_NAMES.index(f"{LINES[0]}_{ACTIONS[0]}_{FEATURE_NAMES[0]}")
    width = len(FEATURE_NAMES)
    col = EVIDENCE_COLUMNS[1]
    for row, source in enumerate(picked):
        use = uses[source]
        for i, line in enumerate(LINES):
            X[row, LINE_COLUMNS[i]] = float(line in use.lines)
            X[row, col + 2 + i] = use.drop_kpa.get(line, 0.0)
        duration = use.duration_s
        X[row, col] = np.log1p(max(duration, 0.0)) if duration is not None else 0.0
        X[row, col + 1] = float(duration is None)
        local = use.t.astimezone(tz)
        angle = 2 * np.pi * (local.hour * 3600 + local.minute * 60 + local.second) / 86400
        X[row, col + 4 : col + 6] = np.sin(angle), np.cos(angle)
        X[row, col + 6 : col + 8] = context[source]
        for a, ids in enumerate((use.open_event_ids, use.close_event_ids)):
            for event_id in ids:
                if event_id not in transients:
                    continue
                line, vector = transients[event_id]
                if line not in LINES:
                    raise ValueError(f"event {event_id!r} has line={line!r}; expected {LINES}.")
                start = phys_start + (LINES.index(line) * len(ACTIONS) + a) * width
                X[row, start : start + width] = vector
    if codes is not None:
        X = np.hstack([X, np.asarray(codes, dtype=float)])
    return X


def _sequence_context(uses: Sequence[WaterUse]) -> np.ndarray:
    """Per use: log1p(seconds since the previous use on a shared line), uses in the last 30 min."""
    starts: dict[str, list[float]] = {line: [] for line in LINES}
    for use in uses:
        for line in use.lines:
            if line in starts:
                starts[line].append(_seconds(use.t))
    for times in starts.values():
        times.sort()
    out = np.zeros((len(uses), 2))
    for row, use in enumerate(uses):
        t = _seconds(use.t)
        gap, recent = MAX_GAP_S, 0
        for line in use.lines:
            times = starts.get(line, [])
            i = bisect.bisect_left(times, t)  # uses strictly before this one
            if i > 0:
                gap = min(gap, t - times[i - 1])
            recent = max(recent, i - bisect.bisect_left(times, t - RECENT_WINDOW_S))
        out[row] = np.log1p(min(gap, MAX_GAP_S)), recent
    return out


def _seconds(t: datetime) -> float:
    return t.timestamp()
