"""Published survey versions, parsed once per process. A version never changes once published (a
change publishes a new one), so its definition is parsed and checked once per distinct content and
the same object is handed out again: the survey page and the answer POST read the version's row
with the invitation and look the parsed definition (and the page's view of it) up here. Keyed by
content, not by id alone, so a database emptied and filled again (the tests do) is never
answered from an older one's versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.surveys.definition import SurveyDefinition
from tilfreds.surveys.models import SurveyVersion


@dataclass(frozen=True, eq=False)  # hashed by identity: one object per version and content
class FrozenVersion:
    survey_id: int
    version_id: int
    definition: SurveyDefinition


def frozen(survey_id: int, version_id: int, definition: dict[str, Any]) -> FrozenVersion:
    """The parsed version for a ``survey_versions`` row's fields."""
    return _frozen(survey_id, version_id, json.dumps(definition, sort_keys=True))


@lru_cache(maxsize=256)
def _frozen(survey_id: int, version_id: int, raw: str) -> FrozenVersion:
    return FrozenVersion(survey_id, version_id, SurveyDefinition.model_validate_json(raw))


def frozen_version(session: Session, version_id: int) -> FrozenVersion | None:
    """The published version with this id, or None."""
    row = session.execute(
        select(SurveyVersion.survey_id, SurveyVersion.definition).where(
            SurveyVersion.id == version_id
        )
    ).first()
    return None if row is None else frozen(row.survey_id, version_id, row.definition)
