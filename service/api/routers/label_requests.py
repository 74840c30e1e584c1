"""Label requests of a home and the homeowner's answers to them."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from service.api.deps import (
    AnswerableHome,
    ConnDep,
    EngineDep,
    HooksDep,
    HubDep,
    NowDep,
    ReadableHome,
)
from service.api.errors import CONFLICT, HOME_READ, HOME_WRITE, Problem, unprocessable
from service.api.schemas.common import RequestIdPath
from service.api.schemas.label_requests import (
    AnswerCreate,
    AnswerPublic,
    ChoicePublic,
    LabelRequestPublic,
    LabelRequestsPublic,
)
from service.api.wording import label_texts, text_of
from service.storage import dashboard
from service.storage.answers import AnswerError, record_answer

router = APIRouter(prefix="/v1/homes/{home_id}/label-requests", tags=["label-requests"])

#: AnswerError codes -> HTTP status.
ANSWER_STATUS = {
    "not_found": 404,
    "conflict": 409,
    "not_sent": 409,
    "expired": 410,
}


def request_public(row: dict[str, Any], texts: dict[str, str]) -> LabelRequestPublic:
    """A stored request row as the API shows it (choices with their words)."""
    answer = row["answer"]
    if answer is None and row["state"] == "declined":
        answer = "not sure"
    return LabelRequestPublic(
        request_id=row["request_id"],
        use_id=row["use_id"],
        state=row["state"],
        prompt=row["prompt"],
        choices=[ChoicePublic(value=c, text=text_of(texts, c)) for c in row["choices"]],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        expires_at=row["expires_at"],
        closed_at=row["closed_at"],
        answer=answer,
        answered_by=row["answered_by"],
    )


@router.get("", response_model=LabelRequestsPublic, responses=HOME_READ)
def list_label_requests(
    home_id: ReadableHome,
    conn: ConnDep,
    state: Literal["open", "planned", "sent", "answered", "expired", "declined"] | None = Query(
        default=None, description="'open' = sent and awaiting an answer (same as 'sent')."
    ),
    limit: int = Query(default=50, ge=1, le=200),
) -> LabelRequestsPublic:
    """The home's label requests, newest first; ``state=open`` for those awaiting an answer."""
    stored_state = "sent" if state == "open" else state
    rows = dashboard.label_requests_of(conn, home_id, state=stored_state, limit=limit)
    texts = label_texts(dashboard.fixture_inventory(conn, home_id))
    data = [request_public(r, texts) for r in rows]
    return LabelRequestsPublic(data=data, count=len(data))


@router.post(
    "/{request_id}/answer",
    response_model=AnswerPublic,
    responses={
        201: {"model": AnswerPublic, "description": "The answer was recorded."},
        200: {"description": "The same answer was already recorded (idempotent repeat)."},
        **HOME_WRITE,
        **CONFLICT,
        410: {"model": Problem, "description": "The request has expired."},
    },
)
def answer_label_request(
    home_id: AnswerableHome,
    request_id: RequestIdPath,
    body: AnswerCreate,
    engine: EngineDep,
    hooks: HooksDep,
    hub: HubDep,
    now: NowDep,
    response: Response,
) -> AnswerPublic:
    """Answer a label request with one of its choices (or "not sure").

    One transaction records the label and closes the request. Sending the same answer again
    returns 200 with the recorded answer; a different answer to an answered request is 409;
    a choice not offered is 422; an expired request is 410.
    """
    try:
        with engine.begin() as conn:
            result = record_answer(conn, home_id, request_id, body.choice, body.answered_by, now)
    except AnswerError as exc:
        if exc.code == "invalid_choice":
            raise unprocessable(("body", "choice"), str(exc), body.choice) from None
        raise HTTPException(ANSWER_STATUS[exc.code], str(exc)) from None
    if result.created:
        hooks.on_answer(home_id, request_id)
        hub.publish(home_id, "answer", {"request_id": request_id, "choice": result.choice})
    response.status_code = 201 if result.created else 200
    return AnswerPublic(
        request_id=result.request_id,
        use_id=result.use_id,
        choice=result.choice,
        state=result.state,
        level=result.level,
        source=result.source,
        answered_by=result.answered_by,
        answered_at=result.answered_at,
        created=result.created,
    )
