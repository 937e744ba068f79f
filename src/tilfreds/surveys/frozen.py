"""Published survey versions, parsed once per process. A version never changes once published (a
change publishes a new one), so its definition is parsed and checked once per distinct content and
the same object is handed out again: the survey page and the answer POST read the version's row
with the invitation and look the parsed definition (and the page's view of it) up here. Keyed by
content, not by id alone, so a database emptied and filled again (the tests do) is never
answered from an older one's versions. The content is the definition's text as stored
(``DEFINITION_TEXT``): read as JSON, every request would decode it and encode it again only to
find the key."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.orm import Session

from tilfreds.surveys.definition import SurveyDefinition
from tilfreds.surveys.models import SurveyVersion


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per version and content
class FrozenVersion:
    survey_id: int
    version_id: int
    definition: SurveyDefinition


# a version's definition as the text stored, to select in place of the column
DEFINITION_TEXT: Any = cast(SurveyVersion.definition, Text)


@lru_cache(maxsize=256)
def frozen(survey_id: int, version_id: int, raw: str) -> FrozenVersion:
    """The parsed version for a ``survey_versions`` row's fields, its definition selected as
    ``DEFINITION_TEXT``."""
    return FrozenVersion(survey_id, version_id, SurveyDefinition.model_validate_json(raw))


def frozen_version(session: Session, version_id: int) -> FrozenVersion | None:
    """The published version with this id, or None."""
    row = session.execute(
        select(SurveyVersion.survey_id, DEFINITION_TEXT).where(SurveyVersion.id == version_id)
    ).first()
    return None if row is None else frozen(row[0], version_id, row[1])


_older = SurveyVersion.__table__.alias("older")
# each survey's newest version, for a set of surveys: one index probe each on (survey_id,
# number); built once, the ids bound as one expanding parameter
_NEWEST: Any = select(SurveyVersion.survey_id, SurveyVersion.id, DEFINITION_TEXT).where(
    SurveyVersion.survey_id.in_(bindparam("ids", expanding=True)),
    SurveyVersion.number
    == select(func.max(_older.c.number))
    .where(_older.c.survey_id == SurveyVersion.survey_id)
    .scalar_subquery(),
)


def newest_definitions(
    session: Session, survey_ids: Collection[int]
) -> dict[int, SurveyDefinition]:
    """The newest version of each of these surveys, in one query (the outbox renders a batch's
    texts from them), each parsed once per process."""
    if not survey_ids:
        return {}
    rows = session.connection().execute(_NEWEST, {"ids": sorted(survey_ids)})
    return {sid: frozen(sid, vid, raw).definition for sid, vid, raw in rows}
