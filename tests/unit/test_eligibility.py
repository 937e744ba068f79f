"""The send-time decision (P7): a pure function of the facts and ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tilfreds.invitations.eligibility import MessageFacts, Send, Skip, may_send

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def facts(**kw: object) -> MessageFacts:
    values: dict[str, object] = {
        "invitation_status": "pending",
        "expires_at": NOW + timedelta(days=1),
        "suppressed": False,
    }
    values.update(kw)
    return MessageFacts(**values)  # type: ignore[arg-type]


def test_open_invitation_is_sent() -> None:
    assert may_send(facts(), now=NOW) == Send()


def test_p7_objection_wins_over_everything() -> None:
    assert may_send(facts(suppressed=True), now=NOW) == Skip("objected")


def test_answered_or_closed_invitations_get_nothing_more() -> None:
    assert may_send(facts(invitation_status="answered"), now=NOW) == Skip("invitation_answered")
    assert may_send(facts(invitation_status="closed"), now=NOW) == Skip("invitation_closed")


def test_expired_invitation_is_not_sent() -> None:
    assert may_send(facts(expires_at=NOW), now=NOW) == Skip("invitation_expired")
