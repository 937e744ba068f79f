"""Replies from phones. For now one kind matters: an objection (STOPP, STOP, NEI ...), which puts
the number on the suppression list and ends everything still open or waiting for it (P7).
Two-way answers come later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tilfreds.crypto import Keys
from tilfreds.invitations.objection import confirm_objection
from tilfreds.invitations.replies import is_objection
from tilfreds.invitations.service import close_for_people
from tilfreds.invitations.states import InvitationStatus
from tilfreds.people import service as people
from tilfreds.sms import dev


@dataclass(frozen=True)
class InboundOutcome:
    kind: str  # "objection" or "unhandled"
    closed_invitations: int = 0


def receive_sms(
    session: Session, keys: Keys, *, phone_e164: str, text: str, now: datetime
) -> InboundOutcome:
    if not is_objection(text):
        return InboundOutcome("unhandled")
    indexes = keys.blind_indexes(phone_e164)
    added = people.object_to_processing(
        session, phone_indexes=indexes, source="sms", actor="respondent", now=now
    )
    person_ids = people.people_with(session, indexes)
    closed = close_for_people(
        session, person_ids, status=InvitationStatus.OBJECTED, reason="objection", now=now
    )
    if added:
        confirm_objection(session, keys, phone_e164=phone_e164, person_ids=person_ids, now=now)
    return InboundOutcome("objection", closed_invitations=closed)


def receive_dev_reply(
    session: Session, keys: Keys, *, phone_e164: str, our_number: str, text: str, now: datetime
) -> InboundOutcome:
    """A reply typed on the dev phone: shown in its conversation, then handled like any SMS."""
    dev.record_inbound(session, keys, phone=phone_e164, to=our_number, text=text[:1600], now=now)
    return receive_sms(session, keys, phone_e164=phone_e164, text=text, now=now)
