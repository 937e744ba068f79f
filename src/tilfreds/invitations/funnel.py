"""The funnel: what became of every interaction, computed set-based from the rows that exist (no
per-row loop, nothing stored twice), per survey and for one interaction (P2, P7, P19).

Each interaction has exactly one outcome, the furthest it got:

- ``skipped`` with its reasons: at intake (``interactions.skip_reasons``), or at send (its
  invitation message's ``skip_reason``), objection first;
- ``scheduled``: its invitation message waits (queued, claimed);
- ``sent``: handed to the provider (or in doubt), ``delivered``: the receipt came back;
- ``opened``: a person opened the link and has not answered or declined (yet): recorded by the
  page's beacon or a POST from it, never by a GET (``invitations/opened.py``);
- ``failed``: the provider refused it or gave up;
- ``answered``, ``declined`` (an objection after the invitation went out is a decline, reason
  ``objection``), ``expired``: the invitation's validity ran out after it went out.

Besides the outcomes, ``opened`` counts every interaction whose link was opened, whatever came
after (an answer or a decline from the page always counts, also without JavaScript).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, literal, select
from sqlalchemy.orm import Session

from tilfreds.errors import NotFound
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import InvitationStatus, MessagePurpose, MessageStatus
from tilfreds.people.models import Interaction
from tilfreds.reporting.disclosure import Tally, released

OUTCOMES = (
    "scheduled", "sent", "delivered", "opened", "answered", "declined", "expired", "failed",
    "skipped",
)  # fmt: skip
# reasons that tell something about a person (a case flag, a right exercised): their counts go
# through the minimum-group gate; the others (too_old, fatigue, sampled_out, daily_quota, expiry)
# are about the operator's rules and are shown as they are
SENSITIVE_PREFIXES = ("flag_", "objection", "restriction")

_interactions, _invitations, _messages = (
    cast(Table, model.__table__) for model in (Interaction, Invitation, Message)
)
S, M = InvitationStatus, MessageStatus


def _columns() -> tuple[Any, Any, Any]:
    """The survey, outcome and reasons of each interaction, as SQL expressions."""
    it, iv, m = _interactions.c, _invitations.c, _messages.c
    handed = m.status.in_((M.SENDING, M.SUBMITTED, M.IN_DOUBT, M.DELIVERED))
    outcome = case(
        (it.skip_reasons.is_not(None), literal("skipped")),
        (iv.status == S.ANSWERED, literal("answered")),
        (iv.status == S.DECLINED, literal("declined")),
        (m.status == M.SKIPPED, literal("skipped")),
        (and_(iv.status == S.OBJECTED, handed), literal("declined")),
        (iv.status == S.OBJECTED, literal("skipped")),
        (and_(iv.status == S.EXPIRED, handed), literal("expired")),
        (iv.opened_at.is_not(None), literal("opened")),
        (m.status == M.DELIVERED, literal("delivered")),
        (handed, literal("sent")),
        (m.status.in_((M.FAILED, M.EXPIRED)), literal("failed")),
        (iv.status == S.EXPIRED, literal("skipped")),
        else_=literal("scheduled"),
    )
    reasons = case(
        (it.skip_reasons.is_not(None), it.skip_reasons),
        (iv.status.in_((S.ANSWERED, S.DECLINED)), literal("")),
        (m.status == M.SKIPPED, func.coalesce(m.skip_reason, "")),
        (iv.status == S.OBJECTED, literal("objection")),
        (and_(iv.status == S.EXPIRED, ~handed), literal("invitation_expired")),
        else_=literal(""),
    )
    survey = func.coalesce(iv.survey_id, it.survey_id)
    return survey, outcome, reasons


def _joined() -> Any:
    it, iv, m = _interactions.c, _invitations.c, _messages.c
    return _interactions.outerjoin(_invitations, iv.interaction_id == it.id).outerjoin(
        _messages, and_(m.invitation_id == iv.id, m.purpose == MessagePurpose.INVITATION)
    )


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reasons: list[str]
    opened_at: datetime | None  # when a person first opened the link (None: not known to)


def outcome_of(session: Session, external_id: str) -> Outcome:
    """The outcome of one interaction, for ``GET /api/v1/interactions/{external_id}``."""
    _survey, outcome, reasons = _columns()
    row = session.execute(
        select(outcome, reasons, _invitations.c.opened_at)
        .select_from(_joined())
        .where(_interactions.c.external_id == external_id)
        .limit(1)
    ).first()
    if row is None:
        raise NotFound("no interaction with that external_id", field="external_id")
    return Outcome(
        outcome=row[0], reasons=[r for r in (row[1] or "").split(",") if r], opened_at=row[2]
    )


@dataclass
class SurveyFunnel:
    survey_id: int | None  # None: interactions skipped before any survey was known
    total: int = 0
    opened: int = 0  # links opened, whatever came after (answered and declined included)
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    # reason -> count; None: fewer than MIN_GROUP, hidden (a sensitive reason, see above)
    reasons: dict[str, int | None] = field(default_factory=dict)


def _gated(reason: str, count: int) -> int | None:
    if not reason.startswith(SENSITIVE_PREFIXES):
        return count
    return released(Tally({1: count}), lambda _counts, size: size)


def funnel(session: Session) -> list[SurveyFunnel]:
    """Per survey: how many interactions ended in each outcome, and how many were skipped for
    each reason (an interaction skipped for several reasons counts under each). One grouped
    query; only the groups (survey, outcome, reasons), never the rows, come back."""
    survey, outcome, reasons = _columns()
    rows = session.execute(
        select(survey, outcome, reasons, func.count(), func.count(_invitations.c.opened_at))
        .select_from(_joined())
        .group_by(survey, outcome, reasons)
    ).all()
    by_survey: dict[int | None, SurveyFunnel] = {}
    reason_counts: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for survey_id, out, why, count, opened in rows:
        entry = by_survey.setdefault(survey_id, SurveyFunnel(survey_id))
        entry.total += count
        entry.opened += opened
        entry.outcomes[out] += count
        if out == "skipped":
            for reason in (why or "unknown").split(","):
                reason_counts[survey_id][reason] += count
    for survey_id, counts in reason_counts.items():
        by_survey[survey_id].reasons = {
            reason: _gated(reason, n) for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])
        }
    return sorted(by_survey.values(), key=lambda f: (f.survey_id is None, f.survey_id or 0))
