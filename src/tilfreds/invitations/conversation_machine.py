"""The two-way SMS survey as a pure machine: which question comes first and which next (``show_if``
honoured), what one reply does to the conversation, and the words of each SMS in it. No database
and no clock: ``invitations/conversation.py`` keeps the state and queues the texts.

The rules (docs/surveys.md, "Two-way SMS surveys"):

- a reply is read by the current question's kind (``surveys/kinds.py``): digits, number words in
  six languages, JA/NEI/YES/NO; text after the answer is kept as a comment;
- a reply that cannot be read is asked again, at most ``MAX_REASKS`` times; after that an optional
  question is skipped (P8) and a required one ends the conversation with nothing stored;
- the conversation is done when no question is left to ask; only then are its answers stored
  (P8: partial answers are kept only when the respondent finishes; P9: with date and time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tilfreds.errors import InvalidInput
from tilfreds.i18n import translator
from tilfreds.surveys.definition import QuestionDef, SurveyDefinition
from tilfreds.surveys.kinds import Value
from tilfreds.web.survey_view import build

MAX_REASKS = 2  # an unreadable reply is asked again twice; the third moves on (or ends)


@dataclass(frozen=True)
class State:
    question: str | None  # the key of the question waiting for its reply; None: nothing left
    reasks: int = 0  # how often this question was asked again
    answers: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    state: State
    # "next": ask state.question; "reask": ask it again; "done": store and thank;
    # "ended": a required question stayed unreadable, nothing is stored
    outcome: str


def _applies(question: QuestionDef, answers: Mapping[str, Value]) -> bool:
    condition = question.show_if
    if condition is None:
        return True
    earlier = answers.get(condition.question, Value())
    return condition.holds(earlier.number, earlier.text)


def next_question(
    definition: SurveyDefinition, answers: Mapping[str, Value], after: str | None
) -> str | None:
    """The first question after ``after`` (or the first of all) whose ``show_if`` holds."""
    keys = [q.key for q in definition.questions]
    start = 0 if after is None else keys.index(after) + 1
    return next((q.key for q in definition.questions[start:] if _applies(q, answers)), None)


def start(definition: SurveyDefinition) -> State:
    return State(next_question(definition, {}, None))


def step(definition: SurveyDefinition, state: State, text: str, *, locale: str) -> Step:
    """What a reply does to the conversation waiting for ``state.question``."""
    if state.question is None:
        raise ValueError("the conversation has no question waiting")
    question = definition.question(state.question)
    value: Value | None
    try:
        value = question.handler.parse_reply(text, locale, question.choice_keys)
        if value.empty:
            raise InvalidInput("an empty reply is no answer")
    except InvalidInput:
        if state.reasks < MAX_REASKS:
            return Step(State(question.key, state.reasks + 1, state.answers), "reask")
        if question.required:
            return Step(State(None, 0, state.answers), "ended")
        value = None  # skipped (P8)
    answers = dict(state.answers)
    if value is not None:
        answers[question.key] = value
    following = next_question(definition, answers, question.key)
    return Step(State(following, 0, answers), "next" if following else "done")


def question_sms(definition: SurveyDefinition, key: str, *, locale: str, controller: str) -> str:
    """A question as one SMS: its text in ``locale`` (with fallback) and how to answer it."""
    view = build(definition, locale, controller=controller)
    shown = next(q for q in view.questions if q.key == key)
    handler = definition.question(key).handler
    _ = translator(locale)
    hint = handler.reply_hint([(o.value, o.label) for o in shown.options], _)
    return f"{shown.text} {hint}".strip()


def reask_sms(definition: SurveyDefinition, key: str, *, locale: str, controller: str) -> str:
    """The question again after an unreadable reply, saying so, and how to stop (P7: "nei" is
    an answer inside a conversation, so the way out is said again)."""
    _ = translator(locale)
    again = question_sms(definition, key, locale=locale, controller=controller)
    return (
        f"{_('Sorry, we could not read that as an answer.')} {again} {_('Reply STOP to opt out.')}"
    )


def ended_sms(locale: str) -> str:
    _ = translator(locale)
    return _("We could not read your answer, so we stop here. Thank you for your time.")


def dump(answers: Mapping[str, Value]) -> dict[str, Any]:
    """Answers as the conversation row keeps them until they are stored (JSON)."""
    return {key: [value.number, value.text] for key, value in answers.items()}


def load(data: Mapping[str, Any] | None) -> dict[str, Value]:
    return {key: Value(number=pair[0], text=pair[1]) for key, pair in (data or {}).items()}
