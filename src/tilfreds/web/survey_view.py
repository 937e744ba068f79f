"""What the survey page shows, built from a published version through the kinds' registry: each
question's wording in the respondent's language (falling back to the survey's default locale, then
to the kind's own wording), its widget and the answers it offers. Templates only iterate this."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.i18n import translator
from tilfreds.surveys.definition import SurveyDefinition, local
from tilfreds.surveys.frozen import FrozenVersion
from tilfreds.surveys.kinds import Option, translated

LANGUAGE_NAMES = {
    "nb": "Norsk bokmål",
    "nn": "Norsk nynorsk",
    "sv": "Svenska",
    "da": "Dansk",
    "fi": "Suomi",
    "en": "English",
}


@dataclass(frozen=True)
class ShownQuestion:
    key: str
    widget: str
    text: str
    hint: str | None
    options: list[Option]
    required: bool
    show_if: str | None  # the condition as JSON, for the page's progressive enhancement


@dataclass(frozen=True)
class SurveyView:
    title: str
    intro: str | None
    questions: list[ShownQuestion]


def pick_locale(asked: str | None, person: str) -> str:
    """The language asked for on the page (the switcher), else the person's own."""
    return asked if asked in SUPPORTED_LOCALES else person


@lru_cache(maxsize=512)
def shown(published: FrozenVersion, locale: str, *, controller: str) -> SurveyView:
    """``build`` once per version, language and controller name in each process (a published
    version never changes); the page only iterates the view, it never changes it."""
    return build(published.definition, locale, controller=controller)


def build(definition: SurveyDefinition, locale: str, *, controller: str) -> SurveyView:
    _ = translator(locale)
    fallback = definition.default_locale

    def text(texts: dict[str, str]) -> str | None:
        found = local(texts, locale, fallback)
        return found.replace("{controller}", controller) if found else None

    questions = []
    for question in definition.questions:
        handler = question.handler
        choices = [(c.key, text(c.text) or c.key) for c in question.choices]
        questions.append(
            ShownQuestion(
                key=question.key,
                widget=handler.widget,
                text=text(question.text)
                or translated(_, handler.default_text, controller=controller),
                hint=text(question.hint),
                options=handler.options(choices, _),
                required=question.required,
                show_if=(
                    question.show_if.model_dump_json(exclude_none=True)
                    if question.show_if
                    else None
                ),
            )
        )
    return SurveyView(
        title=text(definition.title) or _("Customer survey"),
        intro=text(definition.intro),
        questions=questions,
    )
