"""Label requests (the questions put to the homeowner) and their answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

#: The answer body is shared with the MQTT channel (one validation for both): see storage.
from service.storage.answers import AnswerCreate as AnswerCreate

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
