"""The Server-Sent Events row of a classified use (``classification`` events, stored or
provisional): one shape whichever process classified it."""

from __future__ import annotations

from atlas.engine import UseClassification
from atlas.uses import WaterUse
from service.storage.classifications import model_version_name
from service.storage.homestatus import LEVEL_NAMES


def sse_rows(
    result: list[UseClassification], new: list[WaterUse], *, provisional: bool
) -> list[dict]:
    t_of = {u.use_id: u.t for u in new}
    return [
        {
            "use_id": c.use_id,
            "provisional": provisional,
            "t": t_of[c.use_id].isoformat(),
            "display_level": LEVEL_NAMES.get(c.display_level, c.display_level),
            "display_label": c.display_label,
            "rule_category": None if c.rule_category is None else str(c.rule_category),
            "predicted": c.predicted,
            "model_version": model_version_name(c.model_version),
        }
        for c in result
    ]
