"""``/api/v1/surveys``: list surveys, read one's newest version, publish a new one (the same
structure as the YAML of ``tilfreds survey load``). Publishing never changes earlier versions or
the answers given to them (P4)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tilfreds.api.deps import OperatorDep, RuntimeDep
from tilfreds.api.error_responses import responses
from tilfreds.surveys import service as surveys
from tilfreds.surveys.definition import SurveyDefinition

router = APIRouter(tags=["surveys"])  # inside routes.router, under /api/v1


class QuestionOut(BaseModel):
    key: str
    kind: str
    required: bool


class SurveyOut(BaseModel):
    slug: str
    name: str
    is_default: bool
    version: int
    identity: str  # how respondents are confirmed before answering (P2)
    questions: list[QuestionOut]


class SurveyIn(SurveyDefinition):
    allow_long: bool = Field(
        default=False,
        description="Accept a Norwegian invitation longer than one GSM-7 segment with its link.",
    )


class PublishedOut(BaseModel):
    slug: str
    version: int
    definition: dict[str, Any]
    texts: list[dict[str, Any]] = []  # each SMS text's encoding and segments


def _out(published: surveys.Published) -> SurveyOut:
    return SurveyOut(
        slug=published.survey.slug,
        name=published.survey.name,
        is_default=published.survey.is_default,
        version=published.number,
        identity=published.definition.identity,
        questions=[
            QuestionOut(key=q.key, kind=q.kind, required=q.required)
            for q in published.definition.questions
        ],
    )


@router.get(
    "/surveys",
    response_model=list[SurveyOut],
    summary="List the surveys",
    responses=responses(401, 403),
)
def list_surveys(rt: RuntimeDep, _op: OperatorDep) -> list[SurveyOut]:
    with rt.db.read_only() as session:
        return [_out(surveys.latest(session, sv)) for sv in surveys.list_surveys(session)]


@router.get(
    "/surveys/{slug}",
    response_model=PublishedOut,
    summary="A survey's newest version",
    responses=responses(401, 403, 404, 422),
)
def get_survey(slug: str, rt: RuntimeDep, _op: OperatorDep) -> PublishedOut:
    with rt.db.read_only() as session:
        published = surveys.by_slug(session, slug)
        return PublishedOut(
            slug=slug,
            version=published.number,
            definition=published.definition.model_dump(mode="json", exclude_defaults=True),
        )


@router.post(
    "/surveys",
    status_code=201,
    response_model=PublishedOut,
    summary="Create a survey or publish a new version",
    responses=responses(401, 403, 422),
)
def publish_survey(payload: SurveyIn, rt: RuntimeDep, op: OperatorDep) -> PublishedOut:
    """Checks the SMS texts (an invitation must say how to object; a Norwegian one must fit one
    GSM-7 segment with its link unless ``allow_long``) and reports each text's cost. The same
    definition again publishes nothing new."""
    definition = SurveyDefinition.model_validate(payload.model_dump(exclude={"allow_long"}))
    with rt.db.unit_of_work() as session:
        published, reports = surveys.save(
            session,
            definition,
            controller=rt.settings.controller_name,
            public_url=rt.settings.public_url,
            allow_long=payload.allow_long,
            now=rt.clock.now(),
            actor=op.actor,
        )
        return PublishedOut(
            slug=definition.slug,
            version=published.number,
            definition=definition.model_dump(mode="json", exclude_defaults=True),
            texts=[asdict(r) for r in reports],
        )
