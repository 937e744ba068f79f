"""Identity confirmation before answers are taken (P2), asked with data the notice lists (P9):
the person's name ("Are you Kari N.?"), the recent interaction's channel (P10), or a 6-digit code
sent by SMS to the number we hold. "No, that is not me" ends the survey and reports a wrong
number to the case system (P17). Wrong answers are counted and locked out for a while.

Confirmation is kept on the invitation, so a form posted without it is refused
(``service.submit``, ``service.identity_pending``).
Lock order: the invitation, the person, its messages, the audit head last (appended at commit).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.crypto import Keys, context
from tilfreds.errors import Conflict, InvalidInput, TilfredsError
from tilfreds.i18n import translator
from tilfreds.invitations import service as invitations
from tilfreds.invitations.messages import queue_message
from tilfreds.invitations.models import Invitation
from tilfreds.invitations.opened import mark_opened
from tilfreds.invitations.states import InvitationStatus, MessagePurpose
from tilfreds.people.models import Person
from tilfreds.responses.service import ensure_open, identity_pending

MAX_FAILURES = 3  # wrong answers (or attempts at one code) before a lock
LOCKED_FOR = timedelta(minutes=30)
CODE_VALID_FOR = timedelta(minutes=10)
CODE_RESEND_AFTER = timedelta(minutes=1)
MAX_CODES = 5  # codes sent for one invitation
CODE_DIGITS = 6
# the channels an interaction may have taken place in, in the fixed order they are offered
CHANNELS = ("phone", "chat", "letter", "web", "email", "sms")


class IdentityLocked(TilfredsError):
    code, http_status = "identity_locked", 429

    def __init__(self, until: datetime) -> None:
        super().__init__("too many wrong answers; try again later")
        self.until = until


class CodeRefused(TilfredsError):
    """A code may not be sent now: the last one is too recent, or enough were sent."""

    code, http_status = "identity_code_refused", 429


class CodeExpired(Conflict):
    code = "identity_code_expired"


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    WRONG = "wrong"  # a wrong answer, counted
    LOCKED = "locked"  # a wrong answer that used up the attempts: locked for a while
    WRONG_NUMBER = "wrong_number"  # "that is not me": the survey ended (P17)


@dataclass(frozen=True)
class Step:
    """What the identity page asks: the kind, the name to confirm (``name``), whether a code is
    waiting (``sms_code``) and until when answers are locked."""

    kind: str
    name: str
    code_sent: bool
    locked_until: datetime | None


def found_identity_pending(found: invitations.OpenInvitation) -> bool:
    return identity_pending(found.survey.identity, found.invitation.identity_confirmed_at)


def short_name(full: str) -> str:
    """First name and the surname's initial ("Kari N."): enough to recognise, little to leak."""
    words = full.split()
    if len(words) < 2:
        return words[0] if words else ""
    return f"{words[0]} {words[-1][0]}."


def _person_name(session: Session, keys: Keys, invitation: Invitation) -> str:
    person = session.get(Person, invitation.person_id)
    assert person is not None  # foreign key
    return keys.decrypt(person.name_cipher, context=context("people", "name", person.phone_index))


def _kind(found: invitations.OpenInvitation, name: str) -> str:
    """The survey's kind; asking a name we do not hold falls back to the interaction."""
    kind = found.survey.identity
    return "interaction" if kind == "name" and not short_name(name) else kind


def _locked_until(invitation: Invitation, now: datetime) -> datetime | None:
    until = invitation.identity_locked_until
    return until if until is not None and until > now else None


def step(session: Session, keys: Keys, found: invitations.OpenInvitation, *, now: datetime) -> Step:
    """What to ask on the identity page; reads only (a link scanner's GET records nothing)."""
    invitation = found.invitation
    name = _person_name(session, keys, invitation) if found.survey.identity == "name" else ""
    expires = invitation.identity_code_expires_at
    return Step(
        kind=_kind(found, name),
        name=short_name(name),
        code_sent=invitation.identity_code_hash is not None
        and expires is not None
        and expires > now,
        locked_until=_locked_until(invitation, now),
    )


def _code_hash(keys: Keys, invitation_id: int, code: str) -> list[str]:
    """The code's keyed hash under every configured key, current first (never the code)."""
    return keys.blind_indexes(f"identity_code/{invitation_id}/{code}")


def _audit(
    session: Session, invitation: Invitation, action: str, fields: list[str], at: datetime
) -> None:
    audit.record(
        session,
        actor="respondent",
        action=action,
        subject_type="invitation",
        subject_id=invitation.id,
        at=at,
        fields=fields,
    )


def _open_for_identity(session: Session, code: str, *, now: datetime) -> invitations.OpenInvitation:
    found = invitations.find_invitation(session, code, lock=True)
    ensure_open(found.invitation, now=now)
    mark_opened(session, found.invitation.id, now)  # a POST from the page: a person opened it
    until = _locked_until(found.invitation, now)
    if until is not None and found_identity_pending(found):
        raise IdentityLocked(until)
    return found


def send_code(
    session: Session, keys: Keys, *, code: str, controller: str, locale: str, now: datetime
) -> None:
    """Send a new 6-digit code to the person's number: valid ``CODE_VALID_FOR``, stored only as
    its keyed hash, at most one a minute and ``MAX_CODES`` in all; it replaces the last one."""
    found = _open_for_identity(session, code, now=now)
    invitation = found.invitation
    if not found_identity_pending(found) or found.survey.identity != "sms_code":
        return
    last = invitation.identity_code_sent_at
    if invitation.identity_codes_sent >= MAX_CODES or (
        last is not None and now - last < CODE_RESEND_AFTER
    ):
        raise CodeRefused("a new code cannot be sent now")
    secret = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    invitation.identity_code_hash = _code_hash(keys, invitation.id, secret)[0]
    invitation.identity_code_expires_at = now + CODE_VALID_FOR
    invitation.identity_code_sent_at = now
    invitation.identity_codes_sent += 1
    _ = translator(locale)
    body = _(
        "Your code for the survey from %(controller)s: %(code)s. It is valid for 10 minutes.",
        controller=controller,
        code=secret,
    )
    queue_message(
        session,
        keys,
        purpose=MessagePurpose.IDENTITY_CODE,
        person_id=invitation.person_id,
        body=body,
        now=now,
    )
    _audit(session, invitation, "identity.code_sent", ["identity_code_hash"], now)


def _is_right(
    keys: Keys, found: invitations.OpenInvitation, kind: str, answer: str, now: datetime
) -> bool:
    invitation = found.invitation
    if kind == "interaction":
        if answer not in CHANNELS:
            raise InvalidInput("choose one of the answers", field="answer")
        return answer == found.channel
    digits = "".join(answer.split())
    if not (digits.isascii() and digits.isdigit() and len(digits) == CODE_DIGITS):
        raise InvalidInput("the code has six digits", field="answer")
    stored, expires = invitation.identity_code_hash, invitation.identity_code_expires_at
    if stored is None or expires is None or expires <= now:
        raise CodeExpired("the code has expired; ask for a new one")
    return any(hmac.compare_digest(stored, h) for h in _code_hash(keys, invitation.id, digits))


def answer(session: Session, keys: Keys, *, code: str, answer: str, now: datetime) -> Outcome:
    """Check the respondent's answer to the identity question. A right one confirms the
    invitation; a wrong one is counted and audited (never its content), and the
    ``MAX_FAILURES``-th locks answers for ``LOCKED_FOR`` and voids a code. "No" to the name ends
    the survey as a wrong number (P17). Bad input (no such choice, not six digits) is refused
    uncounted. The invitation's row lock makes concurrent attempts count one after the other."""
    found = _open_for_identity(session, code, now=now)
    invitation = found.invitation
    if not found_identity_pending(found):
        return Outcome.CONFIRMED
    name = _person_name(session, keys, invitation) if found.survey.identity == "name" else ""
    kind = _kind(found, name)
    answer = answer.strip().lower()
    if kind == "name":
        if answer == "no":
            report_wrong_number(session, invitation, now=now)
            return Outcome.WRONG_NUMBER
        if answer != "yes":
            raise InvalidInput("answer yes or no", field="answer")
        right = True
    else:
        right = _is_right(keys, found, kind, answer, now)
    if right:
        invitation.identity_confirmed_at = now
        invitation.identity_failures = 0
        invitation.identity_code_hash = None
        _audit(session, invitation, "identity.confirmed", ["identity_confirmed_at"], now)
        return Outcome.CONFIRMED
    invitation.identity_failures += 1
    if invitation.identity_failures < MAX_FAILURES:
        _audit(session, invitation, "identity.failed", ["identity_failures"], now)
        return Outcome.WRONG
    invitation.identity_failures = 0
    invitation.identity_locked_until = now + LOCKED_FOR
    invitation.identity_code_hash = None  # a code's attempts are used up with the lock
    _audit(
        session, invitation, "identity.locked", ["identity_failures", "identity_locked_until"], now
    )
    return Outcome.LOCKED


def report_wrong_number(session: Session, invitation: Invitation, *, now: datetime) -> None:
    """The number reached someone else (P17): the survey ends with its reminders, the case
    system can collect the report (``wrong_numbers``), and the number gets no more surveys until
    the case system sends a corrected one (eligibility's ``wrong_number``)."""
    invitation.wrong_number_at = now
    session.execute(
        update(Person)
        .where(Person.id == invitation.person_id, Person.wrong_number_at.is_(None))
        .values(wrong_number_at=now)
    )
    invitations.close_invitation(session, invitation, status=InvitationStatus.DECLINED, now=now)
    _audit(session, invitation, "invitation.wrong_number", ["wrong_number_at", "status"], now)
