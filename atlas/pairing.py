"""Pair valve transients into water uses: which close ends which open.

A sensor sees a drop when a valve opens and a recovery (with a surge) when it closes, on the line
the valve draws from. People, labels and the classifiers think in uses, so the events must be
grouped: ``open`` + ``close`` on one line, or two opens and two closes when a mixing valve draws
from both lines at once.

The algorithm, in time order (arrival order does not matter: events are sorted first):

1. The wave decides open vs close (:func:`atlas.transient.transient_features`: a drop is an
   open, a recovery is a close), never the arrival order.
2. Events of the same kind on both lines within ``simultaneous_s`` are one *action* of a mixing
   valve (the two sensors hear the same lever movement a few milliseconds apart).
3. A close is paired with the running open whose pressure drop best matches the pressure it
   recovers: a valve gives back roughly the pressure it took, so magnitude tells overlapping
   uses on one line apart. Sizes are read with care (:func:`_sizes`): up to the next event's
   onset (the supply main is shared, so any valve moves both lines' levels), and from the next
   quiet reading when a slow valve had not finished moving within the window. Among
   near-equal matches the most recent open wins (the short draw
   started inside a long one usually ends first). A close whose best match is still poorer than
   ``max_mismatch`` is an orphan (its open was lost), because stealing another use's open would
   break two uses instead of one.
4. A dual-line close with no dual-line open is treated as two single-line closes; a single-line
   close may take one line of a dual-line open (two independent opens that happened to coincide),
   leaving the other line running on its own.
5. An open still running ``open_timeout_s`` after it started becomes an open-ended use.

The function is pure and deterministic: the use id is ``"u-"`` + the event id of the use's first
event, so re-pairing the same events (a service restart) yields the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from atlas.events import Event
from atlas.transient import TransientFeatures, transient_features_batch
from atlas.uses import UseStatus, WaterUse

#: Line order inside a use (hot first), so ``lines`` never depends on arrival order.
_LINE_ORDER = {"hot": 0, "cold": 1}

#: A close whose recovery differs from every running open's drop by more than this fraction of
#: the larger of the two is an orphan. Drops vary from use to use by a few percent (the person
#: opens the tap more or less); two valves on one line differ by tens of percent.
DEFAULT_MAX_MISMATCH = 0.85

#: Events on the two lines closer than this are one action of one mixing valve. The sensors hear
#: one lever movement a few milliseconds apart (different pipe lengths); two independent people
#: rarely move two valves within a fraction of a second.
DEFAULT_SIMULTANEOUS_S = 0.1

#: Matches within this cost of the best are "equally good"; the most recent open then wins.
_TIE_COST = 0.05

#: Extra cost for taking one line out of a dual-line open: a mixing valve usually closes on both
#: lines at once, so splitting it is the explanation of last resort.
_SPLIT_PENALTY = 0.15

#: Cost of matching against a lower bound (a step the window cut short): small but above an
#: exact match, so a close whose recovery matches exactly still wins.
_BOUND_COST = 0.1
_UNKNOWN_COST = 0.25

#: A window whose last ``_TAIL_S`` seconds still move by more than this fraction of its step
#: had not settled: a valve taking longer than the window to close (toilet floats: 1-5 s).
_MOVING_FRACTION = 0.15
_TAIL_S = 0.1
#: The level is read this long before another event's onset, clear of its first movement.
_GUARD_S = 0.01

#: The next event on the same line reads the settled level if it comes within this time; later,
#: drift of the supply pressure (~1 kPa per hour behind a PRV) would blur the reading.
_QUIET_S = 900.0


@dataclass(frozen=True)
class PairingResult:
    """What :func:`pair_events` found.

    Attributes
    ----------
    uses : list of WaterUse
        Completed uses (paired, open-ended, orphan closes), sorted by time then id.
    pending : list of Event
        Open events still waiting for their close as of ``now``, sorted by time.
    features : dict of str to TransientFeatures
        The transient features of every event by event id, so callers (rules, storage) need not
        recompute them.
    lines : dict of str to str
        The line of every event by event id (the rules compare each ring with that line's runs).
    """

    uses: list[WaterUse]
    pending: list[Event]
    features: dict[str, TransientFeatures] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Size:
    """How much an event moved its line's level (kPa, positive).

    ``quality`` is ``"exact"``, ``"lower"`` when the window ended while the level was still
    moving (a slow hand, a toilet float closing over seconds) and no later quiet reading of the
    line was available, so the full step is at least ``kpa``, or ``"unknown"`` when another
    event started too soon after the onset to read any settled level (the value is then only
    indicative).
    """

    kpa: float
    quality: str = "exact"


@dataclass
class _Action:
    """One valve movement (open or close) heard on one or both lines."""

    kind: str
    events: dict[str, Event]  # line -> event
    steps: dict[str, _Size]  # line -> size of the level change

    @property
    def t(self) -> datetime:
        return min(e.t for e in self.events.values())

    @property
    def lines(self) -> frozenset[str]:
        return frozenset(self.events)

    def only(self, line: str) -> _Action:
        return _Action(self.kind, {line: self.events[line]}, {line: self.steps[line]})

    def without(self, line: str) -> _Action:
        rest = [ln for ln in self.events if ln != line]
        return _Action(
            self.kind,
            {ln: self.events[ln] for ln in rest},
            {ln: self.steps[ln] for ln in rest},
        )


def _sort_key(event: Event) -> tuple[datetime, str]:
    return (event.t, event.event_id)


def _mismatch(drop: float, recovery: float) -> float:
    """Relative difference of an open's drop and a close's recovery, in [0, 1]."""
    larger = max(drop, recovery)
    return abs(drop - recovery) / larger if larger > 0 else 0.0


def _cost(drop: _Size, recovery: _Size) -> float:
    """How badly a close's recovery fits an open's drop (0 = perfectly).

    A lower bound fits anything at least as large, and an unknown size fits anything, at small
    fixed costs so that an exact match is still preferred.
    """
    qualities = {drop.quality, recovery.quality}
    if "unknown" in qualities:
        return _UNKNOWN_COST
    if qualities == {"lower"}:
        return 2 * _BOUND_COST
    if recovery.quality == "lower" and recovery.kpa <= drop.kpa:
        return _BOUND_COST
    if drop.quality == "lower" and drop.kpa <= recovery.kpa:
        return _BOUND_COST
    return _mismatch(drop.kpa, recovery.kpa)


def _kind(features: TransientFeatures) -> str:
    """Open or close: the sign of the level step.

    The step's sign is what physics fixes (flow starting lowers the pressure, flow ending
    raises it). The feature's own fallback for steps within the noise, the direction of the
    largest excursion, is unreliable for pairing because ringing swings both ways; the step's
    sign was right for every event of the simulated benchmark, even below the noise.
    """
    if features.step_kpa == 0:
        return features.kind
    return "close" if features.step_kpa > 0 else "open"


def fast_median(x: np.ndarray) -> float:
    """``np.median`` of a finite 1-D array, bit for bit, without its generic machinery (three
    calls per event on every re-pairing were a fifth of the in-memory pairing's time).

    Public because that bit-for-bit promise is a contract of its own, tested directly
    (tests/atlas/test_pairing.py): the paired uses must not change with it."""
    k = x.size // 2
    if x.size % 2:
        return float(np.partition(x, k)[k])
    part = np.partition(x, (k - 1, k))
    return float((part[k - 1] + part[k]) / 2.0)


def _level_step(event: Event, features: TransientFeatures, stop: int) -> tuple[float, str]:
    """Signed level change from the baseline to just before sample ``stop``, and its quality:
    ``"exact"``, ``"moving"`` (still moving towards the step there) or ``"unknown"`` (too little
    time after the onset to read a level through the ringing).

    The level is the median of the last ``_TAIL_S`` seconds before ``stop``; it was still moving
    when it differs from the median two tails earlier by more than ``_MOVING_FRACTION`` of the
    step (and more than the noise allows).
    """
    rate = event.sample_rate_hz
    tail = round(_TAIL_S * rate)
    x = np.asarray(event.samples[:stop], dtype=np.float64)
    onset = round(features.onset_s * rate)
    if stop - onset < 3 * tail:  # the next event came at once: no level to read
        return features.step_kpa, "unknown"
    # the level: a median over up to 0.3 s (several periods of slow ringing), within the segment
    width = min(max((stop - onset) // 2, tail // 2), 3 * tail)  # np.clip costs 20 us here
    step = fast_median(x[stop - width : stop]) - features.baseline_kpa
    recent = fast_median(x[stop - tail : stop])
    earlier = fast_median(x[stop - 3 * tail : stop - 2 * tail])
    drift = (recent - earlier) * (1.0 if step > 0 else -1.0)
    moving = drift > max(_MOVING_FRACTION * abs(step), 4 * features.noise_kpa / np.sqrt(tail))
    return step, "moving" if moving else "exact"


#: A remembered size: the id of the event that followed (None: none yet) and the size it gave.
SizeMemo = MutableMapping[str, tuple[str | None, _Size]]


def _sizes(
    events: Sequence[Event],
    features: Mapping[str, TransientFeatures],
    quiet_s: float,
    simultaneous_s: float,
    memo: SizeMemo | None = None,
) -> dict[str, _Size]:
    """The level change of each event (events sorted by time, all of one home).

    * The supply main is shared, so another valve moving on either line also moves this line's
      level: when another event starts inside this event's window, the level is read just
      before that onset. The other line's event of the same mixing-valve action (within
      ``simultaneous_s``) is part of this use's own change and does not cut it.
    * When the window ended before the level settled (a toilet float closes over seconds), the
      next event on the same line, if nothing else happened in between and it came within
      ``quiet_s``, read the settled level just before its own onset: the difference of the two
      baselines is the full step.
    * Otherwise the step read is kept as a lower bound (quality ``"lower"``).

    A size depends only on the event and the event that follows it, so ``memo`` (one home's,
    same ``quiet_s`` and ``simultaneous_s``) keeps it until that following event changes: a live
    service re-pairs a home's recent events with every new one.
    """
    sizes: dict[str, _Size] = {}
    for i, event in enumerate(events):
        f = features[event.event_id]
        rate = event.sample_rate_hz
        stop = len(event.samples)
        following = None
        for other in events[i + 1 :]:
            lag = (other.t - event.t).total_seconds()
            if other.line != event.line and lag <= simultaneous_s:
                continue  # the same action heard on the other line
            following = other
            cut = round((lag + features[other.event_id].onset_s) * rate) - round(_GUARD_S * rate)
            stop = max(0, min(stop, cut))
            break
        after = None if following is None else following.event_id
        if memo is not None and event.event_id in memo and memo[event.event_id][0] == after:
            sizes[event.event_id] = memo[event.event_id][1]
            continue
        step, quality = _level_step(event, f, stop)
        if quality != "moving":
            sizes[event.event_id] = _Size(abs(step), quality)
        elif (
            following is not None
            and following.line == event.line
            and (following.t - event.t).total_seconds() <= quiet_s
        ):
            settled = features[following.event_id].baseline_kpa - f.baseline_kpa
            sizes[event.event_id] = _Size(max(abs(step), abs(settled)))
        else:
            sizes[event.event_id] = _Size(abs(step), "lower")
        if memo is not None:
            memo[event.event_id] = (after, sizes[event.event_id])
    return sizes


def _group_actions(
    events: Sequence[Event],
    features: Mapping[str, TransientFeatures],
    sizes: Mapping[str, _Size],
    simultaneous_s: float,
) -> list[_Action]:
    """Merge same-kind events on the two lines within ``simultaneous_s`` into one action."""
    window = timedelta(seconds=simultaneous_s)
    actions: list[_Action] = []
    taken: set[str] = set()
    for i, event in enumerate(events):
        if event.event_id in taken:
            continue
        kind = _kind(features[event.event_id])
        action = _Action(kind, {event.line: event}, {event.line: sizes[event.event_id]})
        taken.add(event.event_id)
        for other in events[i + 1 :]:
            if other.t - event.t > window:
                break
            if (
                other.event_id not in taken
                and other.line != event.line
                and _kind(features[other.event_id]) == kind
            ):
                action.events[other.line] = other
                action.steps[other.line] = sizes[other.event_id]
                taken.add(other.event_id)
                break
        actions.append(action)
    return actions


class _Pairer:
    """The running state of one home's pairing: opens waiting for their close."""

    def __init__(self, home_id: str, timeout: timedelta, max_mismatch: float) -> None:
        self.home_id = home_id
        self.timeout = timeout
        self.max_mismatch = max_mismatch
        self.running: list[_Action] = []  # in order of opening
        self.uses: list[WaterUse] = []

    def expire(self, now: datetime) -> None:
        """Turn opens older than the timeout at ``now`` into open-ended uses."""
        still = []
        for action in self.running:
            if now - action.t >= self.timeout:
                self.uses.append(self._use(action, None))
            else:
                still.append(action)
        self.running = still

    def close_all(self) -> None:
        self.uses.extend(self._use(action, None) for action in self.running)
        self.running = []

    def feed(self, action: _Action) -> None:
        if action.kind == "open":
            self.running.append(action)
            return
        if self._match(action):
            return
        if len(action.lines) == 2:
            for line in sorted(action.lines, key=_LINE_ORDER.__getitem__):
                if not self._match(action.only(line)):
                    self.uses.append(self._use(None, action.only(line)))
            return
        self.uses.append(self._use(None, action))

    def _match(self, close: _Action) -> bool:
        """Pair ``close`` with the best running open; False when none is close enough."""
        best: list[tuple[float, int]] = []
        for index, opened in enumerate(self.running):
            if close.lines == opened.lines:
                cost = max(_cost(opened.steps[ln], close.steps[ln]) for ln in close.lines)
            elif len(close.lines) == 1 and close.lines < opened.lines:
                (line,) = close.lines
                cost = _cost(opened.steps[line], close.steps[line]) + _SPLIT_PENALTY
            else:
                continue
            if cost <= self.max_mismatch:
                best.append((cost, index))
        if not best:
            return False
        lowest = min(cost for cost, _ in best)
        index = max(i for cost, i in best if cost <= lowest + _TIE_COST)
        opened = self.running.pop(index)
        if close.lines == opened.lines:
            self.uses.append(self._use(opened, close))
        else:
            (line,) = close.lines
            self.uses.append(self._use(opened.only(line), close))
            self.running.insert(index, opened.without(line))
        return True

    def _use(self, opened: _Action | None, closed: _Action | None) -> WaterUse:
        parts = [a for a in (opened, closed) if a is not None]
        lines = sorted({ln for a in parts for ln in a.lines}, key=_LINE_ORDER.__getitem__)
        first = min((e for a in parts for e in a.events.values()), key=_sort_key)
        drop: dict[str, float] = {}
        for line in lines:
            values = [a.steps[line].kpa for a in parts if line in a.steps]
            drop[line] = round(sum(values) / len(values), 3)
        if opened is not None and closed is not None:
            status = UseStatus.PAIRED
        elif opened is not None:
            status = UseStatus.OPEN_ENDED
        else:
            status = UseStatus.ORPHAN_CLOSE

        def ids(action: _Action | None) -> tuple[str, ...]:
            if action is None:
                return ()
            order = sorted(action.events, key=_LINE_ORDER.__getitem__)
            return tuple(action.events[ln].event_id for ln in order)

        return WaterUse(
            use_id=f"u-{first.event_id}",
            home_id=self.home_id,
            lines=tuple(lines),
            t_open=opened.t if opened is not None else None,
            t_close=closed.t if closed is not None else None,
            status=status,
            open_event_ids=ids(opened),
            close_event_ids=ids(closed),
            drop_kpa=drop,
        )


def compute_features(events: Iterable[Event]) -> dict[str, TransientFeatures]:
    """Transient features of each event, by event id.

    Events are grouped by sample rate and computed with
    :func:`atlas.transient.transient_features_batch` (vectorised across equal-length windows,
    identical results), so a backlog of waves on the intake path costs a fraction of a
    per-event loop.
    """
    events = list(events)
    by_rate: dict[int, list[Event]] = {}
    for e in events:
        by_rate.setdefault(int(e.sample_rate_hz), []).append(e)
    found: dict[str, TransientFeatures] = {}
    for rate, group in by_rate.items():
        computed = transient_features_batch([e.samples for e in group], rate)
        found.update(zip((e.event_id for e in group), computed, strict=True))
    return {e.event_id: found[e.event_id] for e in events}  # in the order of ``events``


def pair_events(
    events: Sequence[Event],
    *,
    now: datetime | None = None,
    open_timeout_s: float = 3600.0,
    max_mismatch: float = DEFAULT_MAX_MISMATCH,
    simultaneous_s: float = DEFAULT_SIMULTANEOUS_S,
    features: Mapping[str, TransientFeatures] | None = None,
    size_memo: SizeMemo | None = None,
) -> PairingResult:
    """Group the events of one home into water uses.

    Parameters
    ----------
    events : sequence of Event
        Events of one home, in any order. Duplicate event ids are counted once.
    now : datetime or None, default=None
        The present, for a live service: opens younger than ``open_timeout_s`` at ``now`` are
        returned in ``pending``. None means the data is complete (an offline file): every open
        left without a close becomes an open-ended use.
    open_timeout_s : float, default=3600.0
        How long an open may wait for its close before it becomes an open-ended use.
    max_mismatch : float, default=0.85
        Largest relative difference between an open's drop and a close's recovery that still
        pairs them.
    simultaneous_s : float, default=0.1
        Same-kind events on both lines closer than this are one mixing-valve action.
    features : mapping of event id to TransientFeatures, optional
        Precomputed features (e.g. from storage); computed from the waves when missing.
    size_memo : mutable mapping, optional
        Step sizes remembered from earlier calls on the same home with the same parameters
        (filled in here), so re-pairing a home's recent events after each new event reads only
        the levels that the new event changed. The caller drops the entries of events it no
        longer passes.

    Returns
    -------
    PairingResult
    """
    if open_timeout_s <= 0:
        raise ValueError(f"open_timeout_s={open_timeout_s} should be > 0.")
    if not 0 < max_mismatch <= 1:
        raise ValueError(f"max_mismatch={max_mismatch} should be in (0, 1].")
    if simultaneous_s < 0:
        raise ValueError(f"simultaneous_s={simultaneous_s} should be >= 0.")
    unique = sorted({e.event_id: e for e in events}.values(), key=_sort_key)
    homes = {e.home_id for e in unique}
    if len(homes) > 1:
        raise ValueError(f"events should belong to one home, got homes {sorted(homes)}.")
    known = dict(features or {})
    missing = [e for e in unique if e.event_id not in known]
    known.update(compute_features(missing))
    if not unique:
        return PairingResult([], [], {}, {})
    pairer = _Pairer(unique[0].home_id, timedelta(seconds=open_timeout_s), max_mismatch)
    sizes = _sizes(unique, known, _QUIET_S, simultaneous_s, size_memo)
    for action in _group_actions(unique, known, sizes, simultaneous_s):
        pairer.expire(action.t)
        pairer.feed(action)
    pending: list[Event] = []
    if now is None:
        pairer.close_all()
    else:
        pairer.expire(now)
        pending = sorted((e for a in pairer.running for e in a.events.values()), key=_sort_key)
    uses = sorted(pairer.uses, key=lambda u: (u.t, u.use_id))
    return PairingResult(
        uses,
        pending,
        {e.event_id: known[e.event_id] for e in unique},
        {e.event_id: e.line for e in unique},
    )
