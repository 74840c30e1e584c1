"""Recent water uses, classified at the home's current display level."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from atlas.levels import RULE_CONFIDENT, lump_id
from service.api.deps import ConnDep, ReadableHome
from service.api.errors import BAD_REQUEST, HOME_READ
from service.api.schemas.uses import ClassificationPublic, UsePublic, UsesPublic
from service.api.wording import label_texts, lump_texts, text_of
from service.storage import dashboard

router = APIRouter(prefix="/v1/homes/{home_id}/uses", tags=["uses"])


@router.get("", response_model=UsesPublic, responses=HOME_READ | BAD_REQUEST)
def list_uses(
    home_id: ReadableHome,
    conn: ConnDep,
    cursor: str | None = Query(
        default=None,
        max_length=150,
        pattern=dashboard.CURSOR_PATTERN,
        description="``next_cursor`` of the previous page.",
    ),
    limit: int = Query(default=50, ge=1, le=500),
) -> UsesPublic:
    """Uses newest first, each with its newest classification at the display level.

    The display level is the home's current one. At 'rules' (week 1) only the categories the
    rules are confident about are named (shower, dishwasher, washing machine); any other use has
    no classification yet, as on the stream and in the usage breakdown. At the fixture level,
    fixtures the model cannot yet tell apart show as their lump ("One of the two upstairs
    toilets", label ``lump:<fixture ids joined by +>``), decided with the level.
    """
    status = dashboard.home_status_row(conn, home_id) or {}
    level = status.get("level", "rules")
    lumps = dashboard.shown_lumps(status)
    lump_of = {f: lump_id(lump) for lump in lumps for f in lump}
    try:
        items, next_cursor = dashboard.recent_uses(conn, home_id, level, cursor=cursor, limit=limit)
    except dashboard.CursorError as exc:
        raise HTTPException(400, str(exc)) from None
    inventory = dashboard.fixture_inventory(conn, home_id)
    texts = label_texts(inventory) | lump_texts(inventory, lumps)
    data = []
    for item in items:
        found = item.pop("classification")
        if level == "rules" and found is not None and found["label"] not in RULE_CONFIDENT:
            found = None
        if found is not None and found["label"] in lump_of:
            found["label"] = lump_of[found["label"]]
        cls = (
            None
            if found is None
            else ClassificationPublic(**found, text=text_of(texts, found["label"]))
        )
        data.append(UsePublic(**item, classification=cls))
    return UsesPublic(display_level=level, data=data, count=len(data), next_cursor=next_cursor)
