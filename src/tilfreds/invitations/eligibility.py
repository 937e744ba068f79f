"""Whether a claimed message may go out now: a pure decision, re-made at send time (P7, P8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tilfreds.invitations.states import InvitationStatus, is_open


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class MessageFacts:
    suppressed: bool
    invitation_status: InvitationStatus | None = None  # None: the message has no invitation
    expires_at: datetime | None = None


def may_send(facts: MessageFacts, *, now: datetime) -> Send | Skip:
    if facts.suppressed:
        return Skip("objection")  # P7: never again, even if queued before the objection
    if facts.invitation_status is not None:
        assert facts.expires_at is not None
        if not is_open(facts.invitation_status, facts.expires_at, now=now):
            if facts.invitation_status in (InvitationStatus.PENDING, InvitationStatus.SENT):
                return Skip("invitation_expired")
            return Skip(f"invitation_{facts.invitation_status}")
    return Send()
