"""The interaction intake payloads, one or a batch (P10: only channel, reason, time and case
reference are stored; unknown fields are refused, so no other personal data can slip in; case
flags steer eligibility and are not stored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from tilfreds.fields import NAME_MAX_CHARS, FilledLine, Line, Moment, PersonName
from tilfreds.invitations.eligibility import CASE_FLAGS

Channel = Literal["phone", "chat", "letter", "web", "email", "sms"]
CaseFlag = Literal["dispute", "hardship", "vulnerable", "legal_hold", "cease_contact", "deceased"]
assert get_args(CaseFlag) == CASE_FLAGS  # the schema offers exactly what eligibility knows
BATCH_MAX_ROWS = 10_000

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


BATCH_EXAMPLE: dict[str, Any] = {
    "interactions": [
        EXAMPLE_PAYLOAD,
        {**EXAMPLE_PAYLOAD, "external_id": "case-1002-chat-1", "channel": "chat",
         "flags": ["dispute"]},
    ]
}  # fmt: skip
BATCH_RESULT_EXAMPLE = {
    "received": 3,
    "created": 1,
    "existing": 1,
    "refused": 1,
    "results": [
        {"row": 1, "id": 17, "external_id": "case-1001-call-7", "created": False,
         "outcome": "scheduled", "skip_reasons": []},
        {"row": 2, "id": 18, "external_id": "case-1002-chat-1", "created": True,
         "outcome": "skipped", "skip_reasons": ["flag_dispute"]},
    ],
    "errors": [
        {"row": 3, "code": "invalid_input", "field": "customer.phone",
         "message": "phone is not a mobile number, so it cannot receive SMS"},
    ],
}  # fmt: skip


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
    flags: list[CaseFlag] = Field(
        default_factory=list,
        max_length=len(CASE_FLAGS),
        description="Case flags that hold for the customer (a dispute, hardship ...): each "
        "skips or delays the survey as configured. Used at intake, not stored.",
    )


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


class BatchPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interactions: list[Any] = Field(
        min_length=1,
        max_length=BATCH_MAX_ROWS,
        description="Up to 10,000 interactions, each as POST /api/v1/interactions takes one. "
        "Each row is checked on its own: a bad row is reported and the others are received.",
    )


class BatchRowOut(BaseModel):
    row: int = Field(description="The row's position in `interactions`, from 1.")
    id: int
    external_id: str
    created: bool = Field(description="False: received before under this external_id.")
    outcome: Literal["scheduled", "skipped"]
    skip_reasons: list[str] = Field(default_factory=list)


class RowErrorOut(BaseModel):
    row: int = Field(description="The row's position in `interactions`, from 1.")
    code: str = Field(description="invalid_input, or not_found for an unknown survey.")
    field: str | None = Field(description="The field at fault, as a dotted path.")
    message: str = Field(description="What is wrong; never the value itself.")


class BatchOut(BaseModel):
    received: int = Field(description="Rows in the request.")
    created: int = Field(description="Interactions recorded now (scheduled or skipped).")
    existing: int = Field(description="Rows whose external_id was received before.")
    refused: int = Field(description="Rows with an error: nothing of them was stored.")
    results: list[BatchRowOut] = Field(description="One per good row, in row order.")
    errors: list[RowErrorOut] = Field(description="One per refused row, in row order.")
