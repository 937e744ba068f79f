"""The send-time decision (P7) and the one rule for an open invitation: pure functions of the
facts and ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tilfreds.invitations.eligibility import MessageFacts, Send, Skip, may_send
from tilfreds.invitations.states import InvitationStatus, is_open

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
S = InvitationStatus


def facts(**kw: object) -> MessageFacts:
    values: dict[str, object] = {
        "invitation_status": S.PENDING,
        "expires_at": NOW + timedelta(days=1),
        "suppressed": False,
    }
    values.update(kw)
    return MessageFacts(**values)  # type: ignore[arg-type]


def test_open_invitation_is_sent() -> None:
    assert may_send(facts(), now=NOW) == Send()


def test_a_message_without_invitation_is_sent_unless_suppressed() -> None:
    assert may_send(MessageFacts(suppressed=False), now=NOW) == Send()
    assert may_send(MessageFacts(suppressed=True), now=NOW) == Skip("objection")


def test_p7_objection_wins_over_everything() -> None:
    assert may_send(facts(suppressed=True, expires_at=NOW), now=NOW) == Skip("objection")


@pytest.mark.parametrize("status", [S.ANSWERED, S.DECLINED, S.OBJECTED, S.EXPIRED])
def test_closed_invitations_get_nothing_more(status: InvitationStatus) -> None:
    assert may_send(facts(invitation_status=status), now=NOW) == Skip(f"invitation_{status}")


def test_expired_invitation_is_not_sent_even_before_the_sweep_marks_it() -> None:
    assert may_send(facts(expires_at=NOW), now=NOW) == Skip("invitation_expired")


@pytest.mark.parametrize("status", list(S))
def test_an_invitation_is_open_only_while_pending_or_sent_and_not_expired(
    status: InvitationStatus,
) -> None:
    later = NOW + timedelta(seconds=1)
    assert is_open(status, later, now=NOW) == (status in (S.PENDING, S.SENT))
    assert not is_open(status, NOW, now=NOW)
