"""The send-time decision (P7) and the one rule for an open invitation: pure functions of the
facts and ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tilfreds.invitations.eligibility import MessageFacts, Send, Skip, at_send
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
    assert at_send(facts(), None, now=NOW) == Send()


def test_a_message_without_invitation_is_sent_unless_suppressed() -> None:
    assert at_send(MessageFacts(suppressed=False), None, now=NOW) == Send()
    assert at_send(MessageFacts(suppressed=True), None, now=NOW) == Skip(("objection",))


def test_p7_objection_comes_first_of_all_reasons() -> None:
    decision = at_send(facts(suppressed=True, restricted=True, expires_at=NOW), None, now=NOW)
    assert decision == Skip(("objection", "restriction", "invitation_expired"))
    assert isinstance(decision, Skip)
    assert decision.reason == "objection"


@pytest.mark.parametrize("status", [S.ANSWERED, S.DECLINED, S.OBJECTED, S.EXPIRED])
def test_closed_invitations_get_nothing_more(status: InvitationStatus) -> None:
    assert at_send(facts(invitation_status=status), None, now=NOW) == Skip(
        (f"invitation_{status}",)
    )


def test_expired_invitation_is_not_sent_even_before_the_sweep_marks_it() -> None:
    assert at_send(facts(expires_at=NOW), None, now=NOW) == Skip(("invitation_expired",))


@pytest.mark.parametrize("status", list(S))
def test_an_invitation_is_open_only_while_pending_or_sent_and_not_expired(
    status: InvitationStatus,
) -> None:
    later = NOW + timedelta(seconds=1)
    assert is_open(status, later, now=NOW) == (status in (S.PENDING, S.SENT))
    assert not is_open(status, NOW, now=NOW)
