"""Labels in words a homeowner reads ("Kitchen sink (hot)" rather than ``kitchen/hot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from atlas.domain import Category, Fixture, Handle
from atlas.levels import lump_id, lump_label
from service.storage.answers import NOT_SURE
from service.storage.homefleet import HomeFleet


def label_texts(inventory: list[dict[str, Any]]) -> dict[str, str]:
    """Words for every valve id, fixture id and category of a home's fixture inventory."""
    texts: dict[str, str] = {NOT_SURE: "Not sure"}
    for fixture in inventory:
        texts[fixture["category"]] = fixture["category"].replace("_", " ").capitalize()
        name = fixture["name"][:1].upper() + fixture["name"][1:]
        texts[fixture["fixture_id"]] = name
        for valve in fixture["valves"]:
            texts[valve["valve_id"]] = f"{name} ({valve['name']})"
    return texts


def lump_texts(inventory: list[dict[str, Any]], lumps: Sequence[Sequence[str]]) -> dict[str, str]:
    """Words for each lump of fixtures ("One of the two upstairs toilets"), by lump label."""
    fixtures = {
        f["fixture_id"]: Fixture(
            f["fixture_id"],
            f["name"],
            Category(f["category"]),
            Handle(f["handle"]),
            f["location"] or "",
        )
        for f in inventory
    }
    texts = {}
    for lump in lumps:
        if all(f in fixtures for f in lump):  # a lump of fixtures since removed is not shown
            words = lump_label([fixtures[f] for f in lump])
            texts[lump_id(lump)] = words[:1].upper() + words[1:]
    return texts


def text_of(texts: dict[str, str], label: str) -> str:
    """The words for ``label``; a label the inventory does not know (a lump) reads as itself."""
    return texts.get(label, label)


def fleet_text(fleet: HomeFleet, texts: dict[str, str]) -> str:
    """What the fleet did for the home: the version it started from and the checklist items
    that version's stand-ins cover ("... the fleet recognises your dishwasher"), a newer
    version taken since, and the opt-out. ``texts``: :func:`label_texts` of the home."""
    if fleet.started_version is None:
        out = "Installed without a fleet of earlier homes."
    elif not fleet.skipped:
        out = f"Started from fleet version {fleet.started_version}: no checklist item skipped."
    else:
        names = [_lower_first(text_of(texts, item)) for item in fleet.skipped]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        items = "item" if len(names) == 1 else "items"
        out = (
            f"Started from fleet version {fleet.started_version}: {len(names)} checklist "
            f"{items} skipped, the fleet recognises your {listed}."
        )
    if fleet.version is not None and fleet.version != fleet.started_version:
        out += f" Now on fleet version {fleet.version}, taken at a codebook refit."
    if fleet.opt_out:
        out += " This home's own data stay out of the fleet (opted out)."
    return out


def _lower_first(words: str) -> str:
    return words[:1].lower() + words[1:]
