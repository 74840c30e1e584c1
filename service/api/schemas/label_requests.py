"""Label requests (the questions put to the homeowner) and their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.api.schemas.common import STRICT

RequestState = Literal["planned", "sent", "answered", "expired", "declined"]


class ChoicePublic(BaseModel):
    """One answer the homeowner can pick: the stored value and words a person reads."""

    value: str = Field(examples=["kitchen/hot"])
    text: str = Field(examples=["Kitchen sink (hot)"])


class LabelRequestPublic(BaseModel):
    request_id: str
    use_id: str | None
    state: RequestState
    prompt: str
    choices: list[ChoicePublic]
    created_at: datetime
    sent_at: datetime | None
    expires_at: datetime | None
    closed_at: datetime | None
    answer: str | None = Field(description="The recorded choice ('not sure' when declined).")
    answered_by: str | None


class LabelRequestsPublic(BaseModel):
    data: list[LabelRequestPublic]
    count: int


class AnswerCreate(BaseModel):
    """The homeowner's answer: one of the request's choices."""

    model_config = STRICT

    choice: str = Field(min_length=1, max_length=127, examples=["kitchen/hot"])
    answered_by: str = Field(
        default="homeowner", min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$"
    )


class AnswerPublic(BaseModel):
    """The recorded answer; ``created`` is False when the same answer was already recorded."""

    request_id: str
    use_id: str | None
    choice: str
    state: Literal["answered", "declined"]
    level: Literal["valve", "fixture", "category"] | None
    source: Literal["active", "audit"] | None
    answered_by: str | None
    answered_at: datetime | None
    created: bool
