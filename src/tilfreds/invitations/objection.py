"""After an objection (P7): one SMS that confirms it, in the person's language (or their
number's country's), rendered at send time. Called once per objection that was newly recorded,
so a repeated or concurrent STOPP from one number queues no second confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from tilfreds.crypto import Keys
from tilfreds.invitations.messages import queue_message
from tilfreds.invitations.states import MessagePurpose


def confirm_objection(
    session: Session, keys: Keys, *, phone_e164: str, person_ids: Sequence[int], now: datetime
) -> int:
    """Queue the confirmation: to the person with this number, or to the number itself when we
    hold no person for it. Queue it after everything pending was cancelled."""
    if person_ids:
        return queue_message(
            session, keys, purpose=MessagePurpose.OBJECTION_CONFIRMATION, now=now,
            person_id=min(person_ids),
        )  # fmt: skip
    return queue_message(
        session, keys, purpose=MessagePurpose.OBJECTION_CONFIRMATION, now=now, to=phone_e164
    )
