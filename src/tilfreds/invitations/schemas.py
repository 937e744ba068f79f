"""The interaction intake payload (P10: only channel, reason, time and case reference; unknown
fields are refused, so no other personal data can slip in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tilfreds.fields import NAME_MAX_CHARS, FilledLine, Line, Moment, PersonName

Channel = Literal["phone", "chat", "letter", "web", "email", "sms"]

# examples in the API description (/docs); tests/test_openapi.py posts them as they are
EXAMPLE_PAYLOAD: dict[str, Any] = {
    "external_id": "case-1001-call-7",
    "survey": "csat",
    "customer": {"name": "Kari Nordmann", "phone": "+47 412 34 567", "locale": "nb-NO"},
    "channel": "phone",
    "reason": "payment plan",
    "occurred_at": "2026-11-25T08:30:00+01:00",
    "case_ref": "C-1001",
}

BODY_EXAMPLES = {
    "interaction": {"summary": "A phone call", "value": EXAMPLE_PAYLOAD},
    "refused": {
        "summary": "Refused with 422: fields beyond the documented ones (P10)",
        "value": {
            **EXAMPLE_PAYLOAD,
            "customer": {**EXAMPLE_PAYLOAD["customer"], "email": "kari@example.no"},
        },
    },
}
RECEIVED_EXAMPLE = {
    "id": 17,
    "external_id": "case-1001-call-7",
    "created": True,
    "outcome": "scheduled",
    "skip_reasons": [],
    "invitation": {
        "id": 17,
        "status": "pending",
        "survey_id": 1,
        "expires_at": "2026-12-02T08:31:00Z",
    },
}


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PersonName = Field(
        min_length=1,
        max_length=NAME_MAX_CHARS,
        description="The person's name, at most six words; only the first name is used, in the "
        "SMS greeting. No digits, web or e-mail addresses.",
    )
    phone: Line = Field(
        min_length=3,
        max_length=32,
        description="A mobile number, with or without country code; landlines are refused.",
    )
    locale: Line = Field(
        default="",
        max_length=16,
        description="nb, nn, sv, da, fi or en (nb-NO, sv_SE, no are understood); empty means the "
        "configured default.",
    )


class InteractionPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: FilledLine = Field(
        min_length=1,
        max_length=120,
        description="Your id for this interaction; sending it again changes nothing.",
    )
    survey: FilledLine | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description="Slug of the survey to send; the default survey when left out.",
    )
    customer: CustomerIn
    channel: Channel
    reason: FilledLine = Field(
        min_length=1, max_length=120, description="Why the customer was in touch."
    )
    occurred_at: Moment = Field(
        description="When the interaction happened, with a time zone; years 2000 to 2100."
    )
    case_ref: Line = Field(default="", max_length=120, description="Your case reference.")


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
