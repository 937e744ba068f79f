"""A survey as data: the structure written in YAML (``tilfreds survey load``) and posted as JSON
(``POST /api/v1/surveys``), checked here once so every stored version is valid.

Texts are given per language (nb, nn, sv, da, fi, en); a missing language falls back to the
survey's default locale, then to the kind's built-in wording. Every question is optional unless
it says ``required: true`` (P8). ``identity`` is the seam for identity confirmation (P2): it is
validated, but only ``none`` is implemented so far.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tilfreds.config import SUPPORTED_LOCALES
from tilfreds.errors import InvalidInput
from tilfreds.surveys.kinds import KINDS, Choice, Kind, Scale

Key = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
LocalText = dict[str, str]
IDENTITY_CHECKS = ("none", "name", "interaction", "sms_code")  # only "none" is implemented
IMPLEMENTED_IDENTITY = ("none",)


def _check_locales(texts: LocalText) -> LocalText:
    unknown = sorted(set(texts) - set(SUPPORTED_LOCALES))
    if unknown:
        raise ValueError(f"languages are {', '.join(SUPPORTED_LOCALES)}")
    if any(not text.strip() for text in texts.values()):
        raise ValueError("a text may not be empty")
    return texts


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoiceDef(Strict):
    key: str = Key
    text: LocalText

    _locales = field_validator("text")(_check_locales)


class ShowIf(Strict):
    """Ask this question only when an earlier one was answered so (e.g. csat at most 3)."""

    question: str
    at_most: int | None = None
    at_least: int | None = None
    equals: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ShowIf:
        if (self.at_most, self.at_least, self.equals) == (None, None, None):
            raise ValueError("show_if needs at_most, at_least or equals")
        return self

    def holds(self, number: int | None, text: str | None) -> bool:
        """Whether the condition is met by the earlier answer; never met by no answer."""
        if number is None and text is None:
            return False
        if self.equals is not None and text != self.equals:
            return False
        if self.at_most is not None and (number is None or number > self.at_most):
            return False
        return not (self.at_least is not None and (number is None or number < self.at_least))


class QuestionDef(Strict):
    key: str = Key
    kind: str
    required: bool = False
    text: LocalText = {}
    hint: LocalText = {}
    choices: list[ChoiceDef] = []
    show_if: ShowIf | None = None

    _locales = field_validator("text", "hint")(_check_locales)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"kind is one of {', '.join(KINDS)}")
        return value

    @model_validator(mode="after")
    def _choices(self) -> QuestionDef:
        wants = isinstance(KINDS[self.kind], Choice)
        if wants != bool(self.choices):
            raise ValueError("choices belong to single_choice questions, which need two or more")
        if wants and (
            len(self.choices) < 2 or len({c.key for c in self.choices}) < len(self.choices)
        ):
            raise ValueError("a single_choice question needs two or more choices with unique keys")
        return self

    @property
    def handler(self) -> Kind:
        return KINDS[self.kind]

    @property
    def choice_keys(self) -> list[str]:
        return [c.key for c in self.choices]


class SmsTexts(Strict):
    """Placeholders: {name} (first name, may be empty), {controller}, {link}; in a two-way
    survey's invitation and reminder also {question} (the first question and how to answer)."""

    invitation: LocalText = {}
    reminder: LocalText = {}
    thanks: LocalText = {}

    _locales = field_validator("invitation", "reminder", "thanks")(_check_locales)


class SurveyDefinition(Strict):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")
    name: str = Field(min_length=1, max_length=200)
    default_locale: str = "nb"
    identity: Literal["none", "name", "interaction", "sms_code"] = "none"
    # "two_way": the invitation SMS asks the first question and replies answer it, question by
    # question (invitations/conversation.py); the link still opens the web form
    mode: Literal["web", "two_way"] = "web"
    title: LocalText = {}
    intro: LocalText = {}
    questions: list[QuestionDef] = Field(min_length=1, max_length=30)
    sms: SmsTexts = SmsTexts()

    _locales = field_validator("title", "intro")(_check_locales)

    @field_validator("default_locale")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"default_locale is one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("identity")
    @classmethod
    def _implemented(cls, value: str) -> str:
        if value not in IMPLEMENTED_IDENTITY:
            raise ValueError(f"identity {value!r} is not available yet; use 'none'")
        return value

    @model_validator(mode="after")
    def _questions(self) -> SurveyDefinition:
        seen: dict[str, QuestionDef] = {}
        for question in self.questions:
            if question.key in seen:
                raise ValueError(f"question keys must be unique: {question.key}")
            condition = question.show_if
            if condition is not None:
                earlier = seen.get(condition.question)
                if earlier is None:
                    raise ValueError("show_if must name an earlier question")
                numeric = isinstance(earlier.handler, Scale)
                if (condition.equals is not None) == numeric or (
                    condition.equals is not None and condition.equals not in earlier.choice_keys
                ):
                    raise ValueError(
                        "show_if: at_most/at_least follow a scale, equals a choice's key"
                    )
            seen[question.key] = question
        return self

    def question(self, key: str) -> QuestionDef:
        return next(q for q in self.questions if q.key == key)


def local(texts: LocalText, locale: str, default_locale: str) -> str | None:
    """The text in ``locale``, else in the survey's default locale, else None."""
    return texts.get(locale) or texts.get(default_locale)


def parse_definition(data: Any) -> SurveyDefinition:
    """Check a survey's structure; InvalidInput names the first wrong field, never its value."""
    try:
        return SurveyDefinition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "survey"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}", field=where) from None
