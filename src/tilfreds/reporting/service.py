"""The survey summary: how many were asked, reached and answered, and how satisfied they were.

Scores are only shown for groups of at least MIN_GROUP respondents, so that no one's answer can be
read off a small group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tilfreds.invitations.models import Invitation
from tilfreds.responses.models import Answer, Response

MIN_GROUP = 5


@dataclass(frozen=True)
class CsatSummary:
    answers: int
    hidden: bool
    average: float | None = None
    satisfied_share: float | None = None  # share answering 4 or 5: the usual CSAT %
    distribution: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    invited: int
    sent: int
    responses: int
    response_rate: float | None
    contact_consents: int
    csat: CsatSummary


def summary(session: Session) -> Summary:
    invited = session.execute(select(func.count(Invitation.id))).scalar_one()
    sent = session.execute(
        select(func.count(Invitation.id)).where(Invitation.sent_at.is_not(None))
    ).scalar_one()
    responses = session.execute(select(func.count(Response.id))).scalar_one()
    consents = session.execute(
        select(func.count(Response.id)).where(Response.contact_consent.is_(True))
    ).scalar_one()
    rows = session.execute(
        select(Answer.value_int, func.count(Answer.id))
        .join(Response, Response.id == Answer.response_id)
        .where(Answer.question_key == "csat", Answer.value_int.is_not(None))
        .group_by(Answer.value_int)
    )
    counts = {int(score): int(count) for score, count in rows if score is not None}
    n = sum(counts.values())
    if n < MIN_GROUP:
        csat = CsatSummary(answers=n, hidden=True)
    else:
        total = sum(score * c for score, c in counts.items())
        csat = CsatSummary(
            answers=n,
            hidden=False,
            average=round(total / n, 2),
            satisfied_share=round((counts.get(4, 0) + counts.get(5, 0)) / n, 3),
            distribution={score: counts.get(score, 0) for score in range(1, 6)},
        )
    return Summary(
        invited=invited,
        sent=sent,
        responses=responses,
        response_rate=round(responses / sent, 3) if sent else None,
        contact_consents=consents,
        csat=csat,
    )
