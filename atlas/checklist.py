"""The guided week-1 calibration checklist, its progress, and announced uses turned into labels.

Seed protocol (Table 8-2): 8-20 examples in week 1: 1-2 shower uses, 1 dishwasher run, 1
washing-machine run, 2 examples of each toilet, a hot and a cold use of each two-handle faucet,
a hot, a cold and a mixed use of each single-handle faucet (2 of each in the kitchen).

Decisions where the seed is silent (docs/estimation.md):

- Showers: 2 uses when the home has one shower, else 1 per shower (the seed's "1-2").
- Kitchen doubling applies to any kitchen faucet, whatever its handle: it is the most used
  fixture (10-14 uses a day), so its valves matter most.
- Bathtub: 1 use of any valve, *optional*: a tub fill is long and high-flow, the rules already
  recognise it, and many people rarely bathe.
- Outdoor hose: 1 use, *optional*: seasonal, and asking for it in winter is pointless.
- Budget: when the required total exceeds ``max_total`` (20), the second kitchen examples are
  dropped first, then the second toilet examples, so every valve keeps at least one example.

Items count labels by valve id. An announcement ("I am about to run the kitchen sink, hot", at
a time) becomes a label for the first use starting within ``window_s`` after it on exactly the
lines that valve uses (:func:`match_announcement`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from atlas.domain import Category, Fixture
from atlas.uses import WaterUse

FAUCETS = (Category.KITCHEN_FAUCET, Category.BATHROOM_FAUCET)
_TEMPERATURE = {"hot": "hot", "cold": "cold", "mixed": "mixed (warm)"}


@dataclass(frozen=True)
class ChecklistItem:
    """One checklist line: ``count`` labelled uses of any of ``valve_ids``."""

    item_id: str
    text: str
    fixture_id: str
    category: Category
    valve_ids: tuple[str, ...]
    count: int
    optional: bool = False


@dataclass(frozen=True)
class ItemProgress:
    item: ChecklistItem
    done: int

    @property
    def complete(self) -> bool:
        return self.done >= self.item.count


@dataclass(frozen=True)
class ChecklistProgress:
    items: tuple[ItemProgress, ...]

    @property
    def n_required(self) -> int:
        return sum(p.item.count for p in self.items if not p.item.optional)

    @property
    def n_done(self) -> int:
        return sum(min(p.done, p.item.count) for p in self.items if not p.item.optional)

    @property
    def complete(self) -> bool:
        return all(p.complete for p in self.items if not p.item.optional)


def _faucet_items(fixture: Fixture) -> list[ChecklistItem]:
    kitchen = fixture.category == Category.KITCHEN_FAUCET
    items = []
    for valve in fixture.valves:
        temp = _TEMPERATURE.get(valve.name, valve.name)
        times = "twice" if kitchen else "once"
        items.append(
            ChecklistItem(
                valve.id,
                f"Run the {fixture.name} {temp} {times}",
                fixture.id,
                fixture.category,
                (valve.id,),
                2 if kitchen else 1,
            )
        )
    return items


def build_checklist(fixtures: Sequence[Fixture], *, max_total: int = 20) -> list[ChecklistItem]:
    """The guided checklist for a home's fixtures (see the module docstring for the rules)."""
    n_showers = sum(f.category == Category.SHOWER for f in fixtures)
    items: list[ChecklistItem] = []
    for f in fixtures:
        every = tuple(v.id for v in f.valves)
        if f.category in FAUCETS:
            items.extend(_faucet_items(f))
        elif f.category == Category.TOILET:
            items.append(
                ChecklistItem(f.id, f"Flush the {f.name} twice", f.id, f.category, every, 2)
            )
        elif f.category == Category.SHOWER:
            n = 2 if n_showers == 1 else 1
            text = f"Take a shower in the {f.name}" + (" (twice)" if n == 2 else "")
            items.append(ChecklistItem(f.id, text, f.id, f.category, every, n))
        elif f.category in (Category.DISHWASHER, Category.WASHING_MACHINE):
            items.append(ChecklistItem(f.id, f"Run the {f.name} once", f.id, f.category, every, 1))
        elif f.category == Category.BATHTUB:
            items.append(
                ChecklistItem(
                    f.id,
                    f"Fill the {f.name} once (optional)",
                    f.id,
                    f.category,
                    every,
                    1,
                    optional=True,
                )
            )
        elif f.category == Category.OUTDOOR_HOSE:
            items.append(
                ChecklistItem(
                    f.id,
                    f"Use the {f.name} once (optional)",
                    f.id,
                    f.category,
                    every,
                    1,
                    optional=True,
                )
            )
        else:  # a new Category must get a checklist rule, not silently none
            raise ValueError(f"fixture {f.id!r}: no checklist rule for category {f.category!r}.")
    return _trim(items, max_total)


def _trim(items: list[ChecklistItem], max_total: int) -> list[ChecklistItem]:
    for category in (Category.KITCHEN_FAUCET, Category.TOILET):
        for idx, item in enumerate(items):
            if sum(i.count for i in items if not i.optional) <= max_total:
                return items
            if item.category == category and item.count > 1 and not item.optional:
                text = item.text.replace(" twice", " once")
                items[idx] = ChecklistItem(
                    item.item_id,
                    text,
                    item.fixture_id,
                    item.category,
                    item.valve_ids,
                    item.count - 1,
                    item.optional,
                )
    return items


def checklist_progress(items: Sequence[ChecklistItem], labels: Iterable[str]) -> ChecklistProgress:
    """Progress given labelled valve ids (one per labelled use; unknown valves are ignored)."""
    done = {item.item_id: 0 for item in items}
    owner = {vid: item.item_id for item in items for vid in item.valve_ids}
    for vid in labels:
        if vid in owner:
            done[owner[vid]] += 1
    return ChecklistProgress(tuple(ItemProgress(item, done[item.item_id]) for item in items))


@dataclass(frozen=True)
class Announcement:
    """The homeowner says they are about to use ``fixture_id`` (``valve_name`` if they said)."""

    fixture_id: str
    valve_name: str | None
    at: datetime


@dataclass(frozen=True)
class AnnouncedLabel:
    use_id: str
    valve_id: str


def match_announcement(
    announcement: Announcement,
    fixture: Fixture,
    uses: Sequence[WaterUse],
    *,
    window_s: float = 600.0,
    slack_s: float = 5.0,
) -> AnnouncedLabel | None:
    """The label for the first use that starts within ``window_s`` after the announcement.

    The use must run on exactly the lines of the announced valve; without a valve name, on the
    lines of one of the fixture's valves, which then names the valve (a mixer's hot, cold and
    mixed valves differ in their lines). ``slack_s`` tolerates phone and gateway clocks being a
    few seconds apart. Uses without an open (orphan closes) cannot match.
    """
    if fixture.id != announcement.fixture_id:
        raise ValueError(
            f"fixture={fixture.id!r} does not match announcement.fixture_id="
            f"{announcement.fixture_id!r}."
        )
    valves = [v for v in fixture.valves if announcement.valve_name in (None, v.name)]
    if not valves:
        raise ValueError(f"fixture {fixture.id!r} has no valve {announcement.valve_name!r}.")
    by_lines: dict[frozenset[str], list[str]] = {}
    for v in valves:
        by_lines.setdefault(frozenset(str(line) for line in v.lines), []).append(v.id)
    start = announcement.at - timedelta(seconds=slack_s)
    end = announcement.at + timedelta(seconds=window_s)
    candidates = sorted((u for u in uses if u.t_open is not None), key=lambda u: u.t_open)
    for use in candidates:
        if not start <= use.t_open <= end:
            continue
        match = by_lines.get(frozenset(use.lines))
        if match and len(match) == 1:
            return AnnouncedLabel(use.use_id, match[0])
    return None
