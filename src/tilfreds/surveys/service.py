"""Look up surveys; make sure the built-in default survey exists, every question optional (P8)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.errors import NotFound
from tilfreds.surveys.models import Question, Survey

DEFAULT_SLUG = "csat"


def list_surveys(session: Session) -> Sequence[Survey]:
    return session.execute(select(Survey).order_by(Survey.id)).scalars().all()


def survey_id(session: Session, slug: str | None) -> int:
    """The id of the survey named by ``slug`` (or of the default survey), without its questions."""
    query = select(Survey.id).where(Survey.slug == slug if slug else Survey.is_default)
    found = session.execute(query.limit(1)).scalar_one_or_none()
    if found is None:
        raise NotFound(
            "no survey has that slug" if slug else "no default survey is set up", field="survey"
        )
    return found


def _make_optional(session: Session, survey: Survey, *, now: datetime) -> None:
    """Answering is voluntary (P8): older installs created the built-in questions as required."""
    required = [q for q in survey.questions if q.required]
    for question in required:
        question.required = False
    if required:
        session.flush()
        audit.record(
            session,
            actor="system",
            action="survey.changed",
            subject_type="survey",
            subject_id=survey.id,
            at=now,
            fields=["required"],
        )


def ensure_default_survey(session: Session, *, now: datetime) -> Survey:
    """Create the built-in CSAT + contact-consent survey on first start; idempotent."""
    existing = session.execute(
        select(Survey).where(Survey.slug == DEFAULT_SLUG)
    ).scalar_one_or_none()
    if existing is not None:
        _make_optional(session, existing, now=now)
        return existing
    has_default = session.execute(select(Survey.id).where(Survey.is_default)).first() is not None
    survey = Survey(
        slug=DEFAULT_SLUG,
        name="Customer satisfaction (CSAT)",
        is_default=not has_default,
        created_at=now,
        questions=[
            Question(position=1, key="csat", kind="csat", required=False),
            Question(position=2, key="contact", kind="contact_consent", required=False),
        ],
    )
    session.add(survey)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="survey.created",
        subject_type="survey",
        subject_id=survey.id,
        at=now,
    )
    return survey
