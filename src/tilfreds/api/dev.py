"""``/api/v1/dev``: both ends of the dev phone. Answers 404 unless the dev transport is in use."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from tilfreds.api.deps import RuntimeDep
from tilfreds.api.error_responses import responses
from tilfreds.fields import Line, Text
from tilfreds.invitations import inbound
from tilfreds.people.phones import normalise_phone
from tilfreds.sms import dev

router = APIRouter(prefix="/api/v1/dev", tags=["dev"])


def _require_dev(rt: RuntimeDep) -> None:
    if not rt.dev_phone_enabled:
        raise HTTPException(404, "the dev SMS transport is not configured")


class OutboxItem(BaseModel):
    id: int
    direction: str
    to: str
    sender: str
    text: str
    reference: str
    at: str


@router.get(
    "/outbox",
    response_model=list[OutboxItem],
    summary="Messages on the dev phone",
    responses=responses(404),
)
def dev_outbox(rt: RuntimeDep) -> list[OutboxItem]:
    """Messages on the simulated phone, newest first (dev transport only)."""
    _require_dev(rt)
    with rt.db.read_only() as session:
        return [
            OutboxItem(
                id=m.id,
                direction=m.direction,
                to=m.phone,
                sender=m.sender,
                text=m.body,
                reference=m.reference,
                at=m.at.isoformat(),
            )
            for m in dev.inbox(session, rt.keys)
        ]


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: Line = Field(alias="from", min_length=3, max_length=32)
    text: Text = Field(max_length=1600)


class InboundOut(BaseModel):
    outcome: str
    closed_invitations: int


@router.post(
    "/inbound",
    response_model=InboundOut,
    summary="Reply from the dev phone",
    responses=responses(404, 413, 422),
)
def dev_inbound(payload: InboundIn, rt: RuntimeDep) -> InboundOut:
    """Play a reply typed on the customer's phone (dev transport only)."""
    _require_dev(rt)
    phone = normalise_phone(payload.sender, region=rt.settings.default_region)
    now = rt.clock.now()
    with rt.db.unit_of_work() as session:
        outcome = inbound.receive_dev_reply(
            session,
            rt.keys,
            phone_e164=phone,
            our_number=rt.settings.sms_sender,
            text=payload.text,
            now=now,
        )
    return InboundOut(outcome=outcome.kind, closed_invitations=outcome.closed_invitations)
