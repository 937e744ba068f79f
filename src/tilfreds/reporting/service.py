"""The survey summary: how many were asked, reached and answered, and how satisfied they were;
per survey, every question aggregated through the kinds' registry (``reporting/questions.py``).

Every figure derived from answers leaves through ``disclosure.released`` (small groups hidden);
the rule and its reasons are in ``reporting/disclosure.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tilfreds.invitations.models import Invitation
from tilfreds.reporting import disclosure
from tilfreds.reporting.disclosure import Tally, released
from tilfreds.reporting.questions import SurveyReport, survey_reports
from tilfreds.responses.models import Answer, Response

SCORES = (1, 2, 3, 4, 5)
SATISFIED = (4, 5)  # the usual CSAT %: share answering 4 or 5
CONSENTED = 1


@dataclass(frozen=True)
class CsatSummary:
    answers: int  # how many answered the question: participation, not an answer
    hidden: bool
    average: float | None = None
    satisfied_share: float | None = None
    distribution: dict[int, int] | None = None


@dataclass(frozen=True)
class Summary:
    min_group: int
    invited: int
    sent: int
    responses: int
    response_rate: float | None
    contact_consents: int | None
    csat: CsatSummary
    surveys: list[SurveyReport]


def _average(counts: Mapping[int, int], size: int) -> float:
    return round(sum(score * n for score, n in counts.items()) / size, 2)


def _satisfied_share(counts: Mapping[int, int], size: int) -> float:
    return round(sum(counts.get(score, 0) for score in SATISFIED) / size, 3)


def _distribution(counts: Mapping[int, int], _size: int) -> dict[int, int]:
    return {score: counts.get(score, 0) for score in SCORES}


def _consents(counts: Mapping[int, int], _size: int) -> int:
    return counts.get(CONSENTED, 0)


def _csat_tally(session: Session) -> Tally:
    rows = session.execute(
        select(Answer.value_int, func.count(Answer.id))
        .where(Answer.question_key == "csat", Answer.value_int.is_not(None))
        .group_by(Answer.value_int)
    )
    return Tally({int(score): int(n) for score, n in rows if score is not None})


def summary(session: Session) -> Summary:
    invited = session.execute(select(func.count(Invitation.id))).scalar_one()
    sent = session.execute(
        select(func.count(Invitation.id)).where(Invitation.sent_at.is_not(None))
    ).scalar_one()
    responses = session.execute(select(func.count(Response.id))).scalar_one()
    consents = session.execute(
        select(func.count(Response.id)).where(Response.contact_consent.is_(True))
    ).scalar_one()
    # Everyone who responded is in the consent group: skipping the question means no contact.
    consent = Tally({CONSENTED: consents, 0: responses - consents})
    csat = _csat_tally(session)
    average = released(csat, _average)
    return Summary(
        min_group=disclosure.MIN_GROUP,
        invited=invited,
        sent=sent,
        responses=responses,
        response_rate=round(responses / sent, 3) if sent else None,
        contact_consents=released(consent, _consents, reveals={CONSENTED}),
        csat=CsatSummary(
            answers=csat.size,
            hidden=average is None,
            average=average,
            satisfied_share=released(csat, _satisfied_share),
            distribution=released(csat, _distribution),
        ),
        surveys=survey_reports(session),
    )
