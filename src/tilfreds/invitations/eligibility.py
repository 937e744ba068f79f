"""Whether a queued message may go out now: a pure decision, re-made at send time (P7, P8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class MessageFacts:
    invitation_status: str
    expires_at: datetime
    suppressed: bool


def may_send(facts: MessageFacts, *, now: datetime) -> Send | Skip:
    if facts.suppressed:
        return Skip("objected")  # P7: never again, even if queued before the objection
    if facts.invitation_status in {"answered", "closed"}:
        return Skip(f"invitation_{facts.invitation_status}")
    if now >= facts.expires_at or facts.invitation_status == "expired":
        return Skip("invitation_expired")
    return Send()
