"""Labels in words a homeowner reads ("Kitchen sink (hot)" rather than ``kitchen/hot``)."""

from __future__ import annotations

from typing import Any

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


def text_of(texts: dict[str, str], label: str) -> str:
    """The words for ``label``; a label the inventory does not know (a lump) reads as itself."""
    return texts.get(label, label)
