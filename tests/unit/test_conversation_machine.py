"""The two-way SMS conversation as a pure machine: branching honoured, replies read tolerantly by
each question's kind, a bounded re-ask, and answers only at the end (P8)."""

from __future__ import annotations

import pytest

from tests.two_way import two_way_definition
from tilfreds.errors import InvalidInput
from tilfreds.invitations.conversation_machine import (
    MAX_REASKS,
    State,
    question_sms,
    reask_sms,
    start,
    step,
)
from tilfreds.invitations.replies import is_objection
from tilfreds.surveys.kinds import Value
from tilfreds.surveys.sms_texts import check_texts, sample_link

SURVEY = two_way_definition()


def reply(state: State, text: str, locale: str = "nb") -> tuple[State, str]:
    done = step(SURVEY, state, text, locale=locale)
    return done.state, done.outcome


def test_a_satisfied_person_is_not_asked_what_to_do_better() -> None:
    state = start(SURVEY)
    assert state.question == "csat"
    state, outcome = reply(state, "4")
    assert (state.question, outcome) == ("contact", "next")
    state, outcome = reply(state, "Ja")
    assert (state.question, outcome) == (None, "done")
    assert state.answers == {"csat": Value(4), "contact": Value(1)}


def test_p5_nei_to_the_consent_question_is_an_answer_and_extra_text_a_comment() -> None:
    state, _ = reply(start(SURVEY), "to, det tok lang tid")
    assert state.question == "improve"  # show_if: csat at most 3
    assert state.answers["csat"] == Value(2, "det tok lang tid")
    state, _ = reply(state, "Svar raskere på telefon")
    state, outcome = reply(state, "Nei takk")
    assert outcome == "done"
    assert state.answers["improve"] == Value(text="Svar raskere på telefon")
    assert state.answers["contact"] == Value(0, "takk")


@pytest.mark.parametrize(("text", "score"), [("fire", 4), ("FEM!", 5), ("Three", 3), ("kaksi", 2)])
def test_number_words_in_any_of_the_six_languages_answer_a_scale(text: str, score: int) -> None:
    state, _ = reply(start(SURVEY), text)
    assert state.answers["csat"].number == score


def test_p8_an_unreadable_reply_is_asked_again_then_the_optional_question_is_skipped() -> None:
    state = start(SURVEY)
    for n in range(1, MAX_REASKS + 1):
        state, outcome = reply(state, "hæ?")
        assert (state.question, state.reasks, outcome) == ("csat", n, "reask")
    state, outcome = reply(state, "9")  # out of range counts as unreadable too
    assert (state.question, outcome, state.answers) == ("contact", "next", {})
    assert state.reasks == 0


def test_a_required_question_left_unreadable_ends_the_conversation() -> None:
    survey = two_way_definition(
        questions=[{"key": "csat", "kind": "csat", "required": True}],
    )
    state = start(survey)
    for _ in range(MAX_REASKS + 1):
        done = step(survey, state, "vet ikke", locale="nb")
        state = done.state
    assert done.outcome == "ended"


def test_a_question_sms_says_how_to_answer_in_the_person_s_language() -> None:
    nb = question_sms(SURVEY, "csat", locale="nb", controller="Inkasso AS")
    assert nb.startswith("Hvor fornøyd er du med hvordan Inkasso AS behandlet saken din?")
    assert "Svar 1-5 (1 = svært misfornøyd, 5 = svært fornøyd)." in nb
    en = question_sms(SURVEY, "contact", locale="en", controller="Inkasso AS")
    assert en == "May we contact you about your feedback? Reply YES or NO."
    # a language the survey has no text in falls back to its default language for the question
    # and says how to answer in the person's own
    fi = question_sms(
        two_way_definition(questions=[{"key": "q", "kind": "nps", "text": {"nb": "Anbefale?"}}]),
        "q",
        locale="fi",
        controller="X",
    )
    assert fi.startswith("Anbefale? Vastaa 0-10")


def test_p7_a_reask_says_again_how_to_stop() -> None:
    text = reask_sms(SURVEY, "csat", locale="sv", controller="Inkasso AB")
    assert text.startswith("Tyvärr förstod vi inte det svaret.")
    assert "Svara 1-5" in text and text.endswith("STOPP för att avregistrera dig.")


@pytest.mark.parametrize("text", ["nei", "Nei takk", "NEJ!", "ei", "no"])
def test_p7_a_bare_no_is_an_answer_inside_a_conversation_and_an_objection_outside(
    text: str,
) -> None:
    assert is_objection(text)
    assert not is_objection(text, in_conversation=True)


@pytest.mark.parametrize("text", ["STOPP", "stop takk", "Avslutt", "lopeta"])
def test_p7_a_stop_word_objects_inside_a_conversation_too(text: str) -> None:
    assert is_objection(text, in_conversation=True)


def test_p7_a_two_way_invitation_asks_its_question_says_how_to_object_and_needs_no_link() -> None:
    link = sample_link("")
    reports = check_texts(SURVEY, controller="Inkasso AS", link=link, allow_long=True)
    nb = next(r for r in reports if (r.purpose, r.locale) == ("invitation", "nb"))
    assert (nb.encoding, nb.segments) == ("GSM-7", 2)  # sized with its real first question
    with pytest.raises(InvalidInput, match="one GSM-7 segment"):
        check_texts(SURVEY, controller="Inkasso AS", link=link)
    no_question = two_way_definition(sms={"invitation": {"nb": "Hei {name}! Svar STOPP."}})
    with pytest.raises(InvalidInput, match=r"needs the \{question\}"):
        check_texts(no_question, controller="Inkasso AS", link=link)
    no_stop = two_way_definition(sms={"invitation": {"nb": "Hei {name}! {question}"}})
    with pytest.raises(InvalidInput, match="how to object"):
        check_texts(no_stop, controller="Inkasso AS", link=link)
