"""Look up surveys and publish their versions; make sure the shipped default survey exists.

Publishing writes a new immutable version only when the definition changed, so loading the same
file twice is harmless; earlier versions, and the answers that point at them, stay as they were
(P4). The shipped default (``default.yaml``) asks every question optionally (P8).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.errors import InvalidInput, NotFound
from tilfreds.surveys.definition import SurveyDefinition, parse_definition
from tilfreds.surveys.models import Survey, SurveyVersion
from tilfreds.surveys.sms_texts import TextReport, check_texts, sample_link

DEFAULT_SLUG = "csat"
DEFAULT_FILE = Path(__file__).parent / "default.yaml"


@dataclass(frozen=True)
class Published:
    survey: Survey
    version_id: int
    number: int
    definition: SurveyDefinition


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


@lru_cache(maxsize=256)
def _definition(raw: str) -> SurveyDefinition:
    """A stored definition, parsed and checked once per distinct text."""
    return SurveyDefinition.model_validate_json(raw)


def _published(survey: Survey, version: SurveyVersion) -> Published:
    raw = json.dumps(version.definition, sort_keys=True)
    return Published(survey, version.id, version.number, _definition(raw))


def latest(session: Session, survey: Survey) -> Published:
    """The survey's newest version: what a respondent is shown now."""
    version = session.execute(
        select(SurveyVersion)
        .where(SurveyVersion.survey_id == survey.id)
        .order_by(SurveyVersion.number.desc())
        .limit(1)
    ).scalar_one_or_none()
    if version is None:
        raise NotFound("this survey has no published version", field="survey")
    return _published(survey, version)


def version(session: Session, survey: Survey, version_id: int) -> Published:
    """One of the survey's versions (the one a form was rendered from)."""
    found = session.get(SurveyVersion, version_id)
    if found is None or found.survey_id != survey.id:
        raise InvalidInput("this form belongs to another survey", field="version")
    return _published(survey, found)


def by_slug(session: Session, slug: str) -> Published:
    survey = session.execute(select(Survey).where(Survey.slug == slug)).scalar_one_or_none()
    if survey is None:
        raise NotFound("no survey has that slug", field="slug")
    return latest(session, survey)


def publish(
    session: Session, definition: SurveyDefinition, *, now: datetime, actor: str = "system"
) -> Published:
    """Create the survey or publish a new version of it; the same definition again is a no-op."""
    survey = session.execute(
        select(Survey).where(Survey.slug == definition.slug)
    ).scalar_one_or_none()
    data: dict[str, Any] = definition.model_dump(mode="json", exclude_defaults=True)
    if survey is None:
        has_default = session.execute(select(Survey.id).where(Survey.is_default)).first()
        survey = Survey(
            slug=definition.slug,
            name=definition.name,
            is_default=has_default is None,
            created_at=now,
        )
        session.add(survey)
        session.flush()
    else:
        current = latest(session, survey) if _has_versions(session, survey) else None
        if current is not None and current.definition == definition:
            return current
    number = 1 + (
        session.execute(
            select(func.max(SurveyVersion.number)).where(SurveyVersion.survey_id == survey.id)
        ).scalar_one()
        or 0
    )
    row = SurveyVersion(survey_id=survey.id, number=number, definition=data, published_at=now)
    survey.name = definition.name
    survey.identity = definition.identity
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="survey.created" if number == 1 else "survey.published",
        subject_type="survey",
        subject_id=survey.id,
        at=now,
        fields=["version"],
    )
    return _published(survey, row)


def save(
    session: Session,
    definition: SurveyDefinition,
    *,
    controller: str,
    public_url: str,
    allow_long: bool,
    now: datetime,
    actor: str,
) -> tuple[Published, list[TextReport]]:
    """Check the survey's SMS texts (reporting their cost) and publish it."""
    reports = check_texts(
        definition, controller=controller, link=sample_link(public_url), allow_long=allow_long
    )
    return publish(session, definition, now=now, actor=actor), reports


def _has_versions(session: Session, survey: Survey) -> bool:
    query = select(SurveyVersion.id).where(SurveyVersion.survey_id == survey.id).limit(1)
    return session.execute(query).first() is not None


def read_yaml(text: str) -> SurveyDefinition:
    """A survey definition from YAML text (safe loader: data only)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InvalidInput("the file is not valid YAML", field="survey") from None
    return parse_definition(data)


def to_yaml(definition: SurveyDefinition) -> str:
    data = definition.model_dump(mode="json", exclude_defaults=True)
    return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100))


def ensure_default_survey(session: Session, *, now: datetime) -> Survey:
    """Publish the shipped default survey on first start; idempotent. An existing survey with
    the default's slug is left as its operators made it."""
    existing = session.execute(
        select(Survey).where(Survey.slug == DEFAULT_SLUG)
    ).scalar_one_or_none()
    if existing is not None and _has_versions(session, existing):
        return existing
    return publish(session, read_yaml(DEFAULT_FILE.read_text("utf-8")), now=now).survey
