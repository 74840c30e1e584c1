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
   uses on one line apart. Among near-equal matches the most recent open wins (the short draw
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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from atlas.events import Event
from atlas.transient import TransientFeatures, transient_features
from atlas.uses import UseStatus, WaterUse

#: Line order inside a use (hot first), so ``lines`` never depends on arrival order.
_LINE_ORDER = {"hot": 0, "cold": 1}

#: A close whose recovery differs from every running open's drop by more than this fraction of
#: the larger of the two is an orphan. Drops vary from use to use by a few percent (the person
#: opens the tap more or less); two valves on one line differ by tens of percent.
DEFAULT_MAX_MISMATCH = 0.6

#: Events on the two lines closer than this are one action of one mixing valve. The sensors hear
#: one lever movement a few milliseconds apart (different pipe lengths); two independent people
#: rarely move two valves within a fraction of a second.
DEFAULT_SIMULTANEOUS_S = 0.25

#: Matches within this cost of the best are "equally good"; the most recent open then wins.
_TIE_COST = 0.05

#: Extra cost for taking one line out of a dual-line open: a mixing valve usually closes on both
#: lines at once, so splitting it is the explanation of last resort.
_SPLIT_PENALTY = 0.15


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
    """

    uses: list[WaterUse]
    pending: list[Event]
    features: dict[str, TransientFeatures] = field(default_factory=dict)


@dataclass
class _Action:
    """One valve movement (open or close) heard on one or both lines."""

    kind: str
    events: dict[str, Event]  # line -> event
    steps: dict[str, float]  # line -> |step_kpa|

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


def _group_actions(
    events: Sequence[Event], features: Mapping[str, TransientFeatures], simultaneous_s: float
) -> list[_Action]:
    """Merge same-kind events on the two lines within ``simultaneous_s`` into one action."""
    window = timedelta(seconds=simultaneous_s)
    actions: list[_Action] = []
    taken: set[str] = set()
    for i, event in enumerate(events):
        if event.event_id in taken:
            continue
        kind = features[event.event_id].kind
        action = _Action(
            kind, {event.line: event}, {event.line: abs(features[event.event_id].step_kpa)}
        )
        taken.add(event.event_id)
        for other in events[i + 1 :]:
            if other.t - event.t > window:
                break
            if (
                other.event_id not in taken
                and other.line != event.line
                and features[other.event_id].kind == kind
            ):
                action.events[other.line] = other
                action.steps[other.line] = abs(features[other.event_id].step_kpa)
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
                cost = max(_mismatch(opened.steps[ln], close.steps[ln]) for ln in close.lines)
            elif len(close.lines) == 1 and close.lines < opened.lines:
                (line,) = close.lines
                cost = _mismatch(opened.steps[line], close.steps[line]) + _SPLIT_PENALTY
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
            values = [a.steps[line] for a in parts if line in a.steps]
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
    """Transient features of each event, by event id."""
    return {e.event_id: transient_features(e.samples, e.sample_rate_hz) for e in events}


def pair_events(
    events: Sequence[Event],
    *,
    now: datetime | None = None,
    open_timeout_s: float = 3600.0,
    max_mismatch: float = DEFAULT_MAX_MISMATCH,
    simultaneous_s: float = DEFAULT_SIMULTANEOUS_S,
    features: Mapping[str, TransientFeatures] | None = None,
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
    max_mismatch : float, default=0.6
        Largest relative difference between an open's drop and a close's recovery that still
        pairs them.
    simultaneous_s : float, default=0.25
        Same-kind events on both lines closer than this are one mixing-valve action.
    features : mapping of event id to TransientFeatures, optional
        Precomputed features (e.g. from storage); computed from the waves when missing.

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
        return PairingResult([], [], {})
    pairer = _Pairer(unique[0].home_id, timedelta(seconds=open_timeout_s), max_mismatch)
    for action in _group_actions(unique, known, simultaneous_s):
        pairer.expire(action.t)
        pairer.feed(action)
    pending: list[Event] = []
    if now is None:
        pairer.close_all()
    else:
        pairer.expire(now)
        pending = sorted((e for a in pairer.running for e in a.events.values()), key=_sort_key)
    uses = sorted(pairer.uses, key=lambda u: (u.t, u.use_id))
    return PairingResult(uses, pending, {e.event_id: known[e.event_id] for e in unique})
