"""Server-Sent Events: new classifications and level changes of one home, as they happen."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from service.api.deps import HubDep, StreamSlot
from service.api.errors import HOME_READ, TOO_MANY_STREAMS, as_json

router = APIRouter(prefix="/v1/homes/{home_id}/stream", tags=["events"])


@router.get(
    "",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "A text/event-stream; each event's ``event`` is its kind "
            "(classification, level, label_request, answer) and ``data`` its JSON.",
            "content": {"text/event-stream": {}},
        },
        **as_json(HOME_READ | TOO_MANY_STREAMS),
    },
)
async def stream(home_id: StreamSlot, hub: HubDep) -> AsyncIterator[ServerSentEvent]:
    """Subscribe to the home's events; the connection stays open (keep-alive comments).

    Streams are capped per token and per home (settings ``sse_max_streams_per_token`` and
    ``sse_max_streams_per_home``): one more is refused with 429.
    """
    sub = hub.subscribe(home_id)
    try:
        yield ServerSentEvent(event="hello", data={"home_id": home_id})
        async for item in sub:
            yield ServerSentEvent(event=item.kind, data=item.data)
    finally:
        sub.close()
