"""The interaction intake payload (P10: only channel, reason, time and case reference; unknown
fields are refused, so no other personal data can slip in)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tilfreds.fields import Line

Channel = Literal["phone", "chat", "letter", "web", "email", "sms"]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Line = Field(min_length=1, max_length=200)
    phone: Line = Field(min_length=3, max_length=32)
    locale: Line = Field(default="", max_length=16)


class InteractionPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Line = Field(min_length=1, max_length=120)
    survey: Line | None = Field(default=None, max_length=60)
    customer: CustomerIn
    channel: Channel
    reason: Line = Field(min_length=1, max_length=120)
    occurred_at: AwareDatetime
    case_ref: Line = Field(default="", max_length=120)


class InvitationOut(BaseModel):
    id: int
    status: str
    survey_id: int
    expires_at: datetime


class InteractionOut(BaseModel):
    id: int
    external_id: str
    created: bool
    outcome: Literal["scheduled", "skipped"]
    skip_reasons: list[str] = Field(
        default_factory=list,
        description="Why it is not surveyed (objection, too_old): the objection first.",
    )
    invitation: InvitationOut | None
