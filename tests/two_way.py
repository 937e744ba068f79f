"""A two-way SMS survey for tests: the default survey's questions, asked by SMS. Its invitation
has its own text in nb and en; its reminder uses the built-in two-way text."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import update

from tilfreds.runtime import Runtime
from tilfreds.surveys.definition import SurveyDefinition, parse_definition
from tilfreds.surveys.models import Survey
from tilfreds.surveys.service import DEFAULT_FILE, publish

SLUG = "sms-csat"


def two_way_definition(**changes: Any) -> SurveyDefinition:
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data |= {
        "slug": SLUG,
        "mode": "two_way",
        "sms": {
            "invitation": {
                "nb": "Hei {name}! {question} Svar STOPP for å reservere deg.",
                "en": "Hi {name}! {question} Reply STOP to opt out.",
            },
            "thanks": data["sms"]["thanks"],
        },
    }
    return parse_definition(data | changes)


def use_two_way_survey(rt: Runtime, definition: SurveyDefinition | None = None) -> None:
    """Publish the two-way survey and make it the one new interactions get."""
    with rt.db.unit_of_work() as session:
        published = publish(session, definition or two_way_definition(), now=rt.clock.now())
        session.execute(update(Survey).values(is_default=Survey.id == published.survey.id))
