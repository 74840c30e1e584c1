"""atlas.checklist: the seed's week-1 checklist, progress, and announcements matched to uses."""

from datetime import UTC, datetime, timedelta

import pytest

from atlas.checklist import (
    Announcement,
    build_checklist,
    checklist_progress,
    match_announcement,
)
from atlas.uses import UseStatus, WaterUse
from simulator.presets import PRESETS, load_preset

T0 = datetime(2024, 5, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_need_8_to_20_examples_and_cover_every_faucet_valve(name):
    spec = load_preset(name)
    items = build_checklist(spec.fixtures)
    required = checklist_progress(items, []).n_required
    assert 8 <= required <= 20
    faucet_valves = {v.id for f in spec.fixtures if "faucet" in f.category for v in f.valves}
    assert faucet_valves <= {vid for i in items if not i.optional for vid in i.valve_ids}


def test_apartment_items_follow_the_seed():
    items = {i.item_id: i for i in build_checklist(load_preset("apartment").fixtures)}
    assert items["kitchen-sink/mixed"].count == 2  # kitchen: 2 of each
    assert items["bath-sink/hot"].count == 1 and "bath-sink/mixed" not in items  # two-handle
    assert items["toilet"].count == 2
    assert items["shower"].count == 2  # the home's only shower: "1-2"
    assert items["dishwasher"].text.startswith("Run the") and items["dishwasher"].count == 1
    assert items["tub"].optional


def test_budget_trims_second_kitchen_examples_first():
    fixtures = load_preset("three_bath_house").fixtures
    untrimmed = checklist_progress(build_checklist(fixtures, max_total=100), []).n_required
    items = build_checklist(fixtures, max_total=20)
    assert untrimmed > 20
    assert all(i.count == 1 for i in items if i.fixture_id == "kitchen-sink")
    assert all(i.count == 2 for i in items if i.category == "toilet")


def test_progress_counts_labels_per_item():
    items = build_checklist(load_preset("apartment").fixtures)
    progress = checklist_progress(items, ["toilet/fill", "toilet/fill", "kitchen-sink/hot", "x/y"])
    done = {p.item.item_id: p.done for p in progress.items}
    assert done["toilet"] == 2 and done["kitchen-sink/hot"] == 1
    assert progress.n_done == 3 and not progress.complete
    every = [vid for i in items for vid in i.valve_ids[:1] for _ in range(i.count)]
    assert checklist_progress(items, every).complete


def _use(uid: str, minutes: float, lines: tuple[str, ...]) -> WaterUse:
    t = T0 + timedelta(minutes=minutes)
    return WaterUse(uid, "h", lines, t, t + timedelta(seconds=30), UseStatus.PAIRED)


def test_announcement_labels_next_use_on_the_valve_lines():
    sink = load_preset("apartment").fixture("kitchen-sink")
    uses = [
        _use("early", -1, ("hot",)),
        _use("cold", 1, ("cold",)),
        _use("hot", 2, ("hot",)),
        _use("hot2", 3, ("hot",)),
    ]
    label = match_announcement(Announcement("kitchen-sink", "hot", T0), sink, uses)
    assert (label.use_id, label.valve_id) == ("hot", "kitchen-sink/hot")


def test_announcement_without_valve_infers_it_from_lines():
    shower = load_preset("apartment").fixture("shower")
    uses = [_use("mix", 0.5, ("cold", "hot"))]
    label = match_announcement(Announcement("shower", None, T0), shower, uses)
    assert label.valve_id == "shower/mixed"


def test_announcement_window_expires():
    sink = load_preset("apartment").fixture("kitchen-sink")
    late = [_use("late", 11, ("hot",))]
    assert match_announcement(Announcement("kitchen-sink", "hot", T0), sink, late) is None


def test_announcement_for_unknown_valve_is_refused():
    sink = load_preset("apartment").fixture("kitchen-sink")
    with pytest.raises(ValueError, match="no valve 'steam'"):
        match_announcement(Announcement("kitchen-sink", "steam", T0), sink, [])
