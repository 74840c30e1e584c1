"""Labels in words a homeowner reads ("Kitchen sink (hot)" rather than ``kitchen/hot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from atlas.domain import Category, Fixture, Handle
from atlas.levels import lump_id, lump_label
from service.storage.answers import NOT_SURE


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
        f["fixture_id"]: Fixture(f["fixture_id"], f["name"], Category(f["category"]),
                                 Handle(f["handle"]), f["location"] or "")
        for f in inventory
    }  # fmt: skip
    texts = {}
    for lump in lumps:
        if all(f in fixtures for f in lump):  # a lump of fixtures since removed is not shown
            words = lump_label([fixtures[f] for f in lump])
            texts[lump_id(lump)] = words[:1].upper() + words[1:]
    return texts


def text_of(texts: dict[str, str], label: str) -> str:
    """The words for ``label``; a label the inventory does not know (a lump) reads as itself."""
    return texts.get(label, label)
