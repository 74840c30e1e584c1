"""The rules' home-wide context, kept up to date one use at a time.

WHY: beyond the use itself, a rule reads two things of the whole home: the appliance cycle a
solenoid fill belongs to, and the toilet-refill reference that turns pressure drops into flows.
:func:`rules.conditions.build_context` rereads every use of the home for them, so a home in
its second year paid for its whole history at every new use. :class:`ContextIndex` keeps the
fills in time order and the drops sorted: adding a use costs a search and its own cycle, and
it names the uses whose decision the addition may change, so only those are decided again.
The decisions are the same as with :func:`~rules.conditions.build_context` over all uses.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from rules.conditions import (
    Context,
    Cycle,
    fills_linked,
    flow_boundary,
    is_fill,
    is_refill,
    make_cycle,
)
from rules.config import RuleConfig
from rules.view import UseView


@dataclass(frozen=True)
class _Entry:
    """What the index remembers of one use."""

    view: UseView
    fill: bool
    refill: bool

    @property
    def fill_key(self) -> tuple[datetime, str]:
        return (self.view.use.t, self.view.use.use_id)

    @property
    def drop_key(self) -> tuple[float, str]:
        return (self.view.drop_kpa, self.view.use.use_id)


class ContextIndex:
    """Appliance cycles and toilet reference of a home's uses, updated per use.

    Parameters
    ----------
    config : RuleConfig
        The thresholds of the home's rule classifier (what a fill and a refill are).
    """

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        self._entries: dict[str, _Entry] = {}
        self._fills: list[tuple[datetime, str]] = []  # (t, use_id) of every fill, sorted
        self._refills: list[tuple[float, str]] = []  # (drop, use_id) of every refill, sorted
        self._drops: list[tuple[float, str]] = []  # (drop, use_id) of every use, sorted
        self._reference: float | None = None  # of _refills, kept with them

    def __contains__(self, use_id: str) -> bool:
        return use_id in self._entries

    @property
    def reference(self) -> float | None:
        """The median refill drop (see :func:`rules.conditions.toilet_reference`)."""
        return self._reference

    def _update_reference(self) -> None:
        n = len(self._refills)
        if n < self.config.min_reference_uses:
            self._reference = None
            return
        middle = [d for d, _ in self._refills[(n - 1) // 2 : n // 2 + 1]]
        self._reference = float(np.median(middle))

    @classmethod
    def of(cls, views: Iterable[UseView], config: RuleConfig) -> ContextIndex:
        """An index of ``views`` built at once (a home's whole history, e.g. after a restore)."""
        index = cls(config)
        for view in views:
            entry = _Entry(view, is_fill(view, config), is_refill(view, config))
            index._entries[view.use.use_id] = entry
        entries = index._entries.values()
        index._fills = sorted(e.fill_key for e in entries if e.fill)
        index._refills = sorted(e.drop_key for e in entries if e.refill)
        index._drops = sorted(e.drop_key for e in entries)
        index._update_reference()
        return index

    def add(self, view: UseView) -> set[str]:
        """Index a new use; returns the ids whose decision may change (the use's own included).

        A use id already indexed is replaced (remove, then add).
        """
        use_id = view.use.use_id
        touched = self.remove(use_id) if use_id in self._entries else set()
        before = self.reference
        entry = _Entry(view, is_fill(view, self.config), is_refill(view, self.config))
        self._entries[use_id] = entry
        bisect.insort(self._drops, entry.drop_key)
        if entry.refill:
            bisect.insort(self._refills, entry.drop_key)
            self._update_reference()
        touched.add(use_id)
        if entry.fill:
            pos = bisect.bisect_left(self._fills, entry.fill_key)
            self._fills.insert(pos, entry.fill_key)
            for p in (pos - 1, pos, pos + 1):
                touched |= self._chain_ids(p)
        return touched | self._flow_sensitive(before, self.reference)

    def remove(self, use_id: str) -> set[str]:
        """Forget a use; returns the ids (still indexed) whose decision may change."""
        entry = self._entries[use_id]
        before = self.reference
        _remove_sorted(self._drops, entry.drop_key)
        if entry.refill:
            _remove_sorted(self._refills, entry.drop_key)
            self._update_reference()
        touched: set[str] = set()
        if entry.fill:
            pos = bisect.bisect_left(self._fills, entry.fill_key)
            touched |= self._chain_ids(pos)  # the cycle it leaves may split
            del self._fills[pos]
            for p in (pos - 1, pos):  # or its neighbours may join other cycles
                touched |= self._chain_ids(p)
        del self._entries[use_id]
        return (touched - {use_id}) | self._flow_sensitive(before, self.reference)

    def context(self, use_ids: Iterable[str]) -> Context:
        """The :class:`~rules.conditions.Context` that decides ``use_ids`` as over all uses."""
        cycle_of: dict[str, Cycle] = {}
        for use_id in use_ids:
            entry = self._entries[use_id]
            if not entry.fill or use_id in cycle_of:
                continue
            lo, hi = self._chain(bisect.bisect_left(self._fills, entry.fill_key))
            cycle = make_cycle([self._entries[uid].view for _, uid in self._fills[lo:hi]])
            for uid in cycle.use_ids:
                cycle_of[uid] = cycle
        return Context(cycle_of, self.reference)

    def _linked(self, i: int) -> bool:
        """Whether fill ``i`` continues the cycle of fill ``i - 1``."""
        prev, cur = (self._entries[self._fills[j][1]].view for j in (i - 1, i))
        return fills_linked(prev, cur, self.config)

    def _chain(self, pos: int) -> tuple[int, int]:
        """The ``[lo, hi)`` range of fills in the cycle of fill ``pos``."""
        lo, hi = pos, pos + 1
        while lo > 0 and self._linked(lo):
            lo -= 1
        while hi < len(self._fills) and self._linked(hi):
            hi += 1
        return lo, hi

    def _chain_ids(self, pos: int) -> set[str]:
        if not 0 <= pos < len(self._fills):
            return set()
        lo, hi = self._chain(pos)
        return {uid for _, uid in self._fills[lo:hi]}

    def _flow_sensitive(self, before: float | None, after: float | None) -> set[str]:
        """Uses whose drop lies between the flow boundaries of two references.

        The reference enters a decision only through ``drop >= boundary``; a use whose drop is
        on the same side of both boundaries decides as before. A reference appearing or
        vanishing can change any use that reaches that comparison.
        """
        if before == after:
            return set()
        if before is None or after is None:
            return {uid for _, uid in self._drops}
        bounds = [flow_boundary(r, self.config) for r in (before, after)]
        if bounds[0] is None or bounds[1] is None:
            return set()
        lo, hi = min(bounds), max(bounds)
        start = bisect.bisect_left(self._drops, (lo,))
        out = set()
        for drop, uid in self._drops[start:]:
            if drop > hi:
                break
            out.add(uid)
        return out


def _remove_sorted(items: list, key: object) -> None:
    del items[bisect.bisect_left(items, key)]
