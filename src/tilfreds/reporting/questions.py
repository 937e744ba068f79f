"""Every question of every survey, aggregated through the kinds' registry (CSAT % satisfied, NPS,
CES mean, distributions, consents). Each figure leaves through ``disclosure.released``.

A question is counted across the survey's versions that ask it with the same kind, so rewording
a question keeps its history while changing what it measures starts afresh (P4).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tilfreds.reporting.disclosure import Tally, released
from tilfreds.responses.models import Answer, Response
from tilfreds.surveys import service as surveys
from tilfreds.surveys.definition import QuestionDef, local
from tilfreds.surveys.models import SurveyVersion


@dataclass(frozen=True)
class QuestionReport:
    key: str
    kind: str
    text: str  # as asked, in English if the survey has it, else its default language, else the key
    answers: int  # how many answered: participation, not an answer
    figures: dict[str, Any]  # each None while its group is too small
    score_label: str | None = None  # what the ``score`` figure is, for kinds that have one
    score_is_share: bool = False  # the score is a share from 0 to 1 (shown as per cent)


@dataclass(frozen=True)
class SurveyReport:
    slug: str
    name: str
    version: int
    responses: int
    questions: list[QuestionReport]


def _versions_asking(session: Session, survey_id: int, question: QuestionDef) -> list[int]:
    rows = session.execute(
        select(SurveyVersion.id, SurveyVersion.definition).where(
            SurveyVersion.survey_id == survey_id
        )
    )
    return [
        version_id
        for version_id, definition in rows
        if any(
            q.get("key") == question.key and q.get("kind") == question.kind
            for q in definition.get("questions", [])
        )
    ]


def _tally(session: Session, version_ids: list[int], question: QuestionDef) -> Tally:
    column = Answer.value_text if question.handler.tallied_by == "text" else Answer.value_int
    rows = session.execute(
        select(column, func.count(Answer.id))
        .join(Response, Response.id == Answer.response_id)
        .where(
            Response.survey_version_id.in_(version_ids),
            Answer.question_key == question.key,
            column.is_not(None),
        )
        .group_by(column)
    )
    counts: Counter[Any] = Counter()
    for value, n in rows:
        counts[value] += int(n)
    return Tally(counts)


def question_report(
    session: Session, survey_id: int, question: QuestionDef, *, default_locale: str = "en"
) -> QuestionReport:
    handler = question.handler
    tally = _tally(session, _versions_asking(session, survey_id, question), question)
    figures = {
        name: released(tally, figure.compute, reveals=figure.reveals)
        for name, figure in handler.figures(question.choice_keys).items()
    }
    text = local(question.text, "en", default_locale) or question.key
    return QuestionReport(
        question.key,
        question.kind,
        text,
        tally.size,
        figures,
        score_label=getattr(handler, "score_label", None) if "score" in figures else None,
        score_is_share=bool(getattr(handler, "score_is_share", False)),
    )


def survey_reports(session: Session) -> list[SurveyReport]:
    reports = []
    for survey in surveys.list_surveys(session):
        published = surveys.latest(session, survey)
        responses = session.execute(
            select(func.count(Response.id)).where(Response.survey_id == survey.id)
        ).scalar_one()
        reports.append(
            SurveyReport(
                slug=survey.slug,
                name=survey.name,
                version=published.number,
                responses=responses,
                questions=[
                    question_report(
                        session, survey.id, q, default_locale=published.definition.default_locale
                    )
                    for q in published.definition.questions
                ],
            )
        )
    return reports
