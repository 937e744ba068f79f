"""A survey's structure and SMS texts are checked when saved: branching, choices, languages, the
identity seam, the right to object in every invitation (P7) and what each text costs (P3)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tilfreds.errors import InvalidInput
from tilfreds.invitations.inbound import is_objection
from tilfreds.invitations.intake import CODE_LENGTH
from tilfreds.surveys.definition import parse_definition
from tilfreds.surveys.service import DEFAULT_FILE, read_yaml, to_yaml
from tilfreds.surveys.sms_texts import (
    LINK_CODE_LENGTH,
    check_texts,
    fill,
    render,
    sample_link,
)

LINK = sample_link("https://survey.example.no")
BASE: dict[str, Any] = {
    "slug": "after-call",
    "name": "After a call",
    "questions": [
        {"key": "csat", "kind": "csat"},
        {"key": "better", "kind": "free_text", "show_if": {"question": "csat", "at_most": 3}},
    ],
    "sms": {
        "invitation": {"nb": "Hei {name}! Hva synes du? {link} Svar STOPP for å reservere deg."}
    },
}


def with_(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_the_default_survey_round_trips_through_yaml() -> None:
    definition = read_yaml(DEFAULT_FILE.read_text("utf-8"))
    assert read_yaml(to_yaml(definition)) == definition
    assert [q.kind for q in definition.questions] == ["csat", "free_text", "contact_consent"]


def test_the_default_surveys_texts_fit_and_say_how_to_object() -> None:
    definition = read_yaml(DEFAULT_FILE.read_text("utf-8"))
    reports = check_texts(definition, controller="Example Collection AS", link=LINK)
    invitations = [r for r in reports if r.purpose == "invitation"]
    assert len(invitations) == 6
    assert all(r.segments == 1 and r.encoding == "GSM-7" for r in invitations)
    for locale, template in definition.sms.invitation.items():
        text = fill(template, name="Kari", controller="X AS", link=LINK)
        last = text.rsplit(". ", 1)[-1] if locale != "fi" else text.rsplit(": ", 1)[-1]
        assert "STOP" in last, locale  # the reply word the inbound handler treats as objection
        assert is_objection("STOPP" if "STOPP" in text else "STOP")


def test_the_sample_link_is_as_long_as_a_real_one() -> None:
    assert LINK_CODE_LENGTH == CODE_LENGTH


def test_p3_a_too_long_norwegian_invitation_is_refused_unless_allowed() -> None:
    long_text = "Hei {name}! " + "Vi vil gjerne vite hva du synes om samtalen din med oss. " * 2
    data = with_(sms={"invitation": {"nb": long_text + "{link} Svar STOPP for å reservere deg."}})
    definition = parse_definition(data)
    with pytest.raises(InvalidInput) as refused:
        check_texts(definition, controller="Example Collection AS", link=LINK)
    assert refused.value.details["field"] == "sms.invitation.nb"
    (report,) = check_texts(definition, controller="Example", link=LINK, allow_long=True)
    assert report.segments == 2 and report.encoding == "GSM-7"


def test_p3_an_invitation_outside_gsm7_is_refused_for_norwegian_only() -> None:
    emoji = "Hei {name} 🙂 {link} Svar STOPP for å reservere deg."
    with pytest.raises(InvalidInput):
        check_texts(
            parse_definition(with_(sms={"invitation": {"nb": emoji}})), controller="X", link=LINK
        )
    (report,) = check_texts(
        parse_definition(with_(sms={"invitation": {"en": emoji.replace("Svar STOPP", "STOP")}})),
        controller="X",
        link=LINK,
    )
    assert report.encoding == "UCS-2"


@pytest.mark.parametrize(
    "text",
    [
        "Hei {name}! Svar her: {link}",  # no way to object
        "Hei {name}! Svar her: {link} Svar stopp om du vil",  # not the reply word as sent
        "Hei {navn}! {link} Svar STOPP for å reservere deg.",  # unknown placeholder
        "Hei {name! {link} Svar STOPP.",  # broken braces
        "Hei {name}! Svar STOPP for å reservere deg.",  # no link
    ],
)
def test_p7_an_invitation_must_link_and_say_how_to_object(text: str) -> None:
    definition = parse_definition(with_(sms={"invitation": {"nb": text}}))
    with pytest.raises(InvalidInput) as refused:
        check_texts(definition, controller="X", link=LINK)
    assert refused.value.details["field"] == "sms.invitation.nb"
    assert text not in refused.value.message  # named, never quoted


@pytest.mark.parametrize(
    "changes",
    [
        {"questions": [{"key": "a", "kind": "stars"}]},
        {"questions": [{"key": "a", "kind": "csat"}, {"key": "a", "kind": "nps"}]},
        {
            "questions": [
                {"key": "b", "kind": "free_text", "show_if": {"question": "csat", "at_most": 3}}
            ]
        },
        {
            "questions": [
                {"key": "csat", "kind": "csat", "show_if": {"question": "csat", "at_most": 3}}
            ]
        },
        {
            "questions": [
                {
                    "key": "c",
                    "kind": "single_choice",
                    "choices": [{"key": "x", "text": {"nb": "X"}}],
                }
            ]
        },
        {
            "questions": [
                {"key": "c", "kind": "csat", "choices": [{"key": "x", "text": {"nb": "X"}}] * 2}
            ]
        },
        {
            "questions": [
                {"key": "csat", "kind": "csat"},
                {"key": "d", "kind": "free_text", "show_if": {"question": "csat", "equals": "x"}},
            ]
        },
        {"questions": [{"key": "csat", "kind": "csat", "text": {"de": "Wie?"}}]},
        {"questions": []},
        {"identity": "fingerprint"},
        {"default_locale": "de"},
        {"extra": 1},
        {"slug": "Has Spaces"},
    ],
)
def test_a_malformed_survey_is_refused_naming_the_field(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_definition(with_(**changes))
    assert refused.value.details["field"]


@pytest.mark.parametrize("kind", ["none", "name", "interaction", "sms_code"])
def test_p2_every_identity_confirmation_kind_is_accepted(kind: str) -> None:
    assert parse_definition(with_(identity=kind)).identity == kind


@pytest.mark.parametrize("kind", ["name", "interaction", "sms_code"])
def test_p2_a_two_way_sms_survey_cannot_ask_for_identity(kind: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_definition(with_(identity=kind, mode="two_way"))
    assert refused.value.details["field"] == "mode"
    assert "identity: none" in refused.value.message
    assert parse_definition(with_(identity="none", mode="two_way")).mode == "two_way"


def test_show_if_holds_only_for_an_answer_that_meets_it() -> None:
    condition = parse_definition(BASE).question("better").show_if
    assert condition is not None
    assert condition.holds(3, None) and condition.holds(1, None)
    assert not condition.holds(4, None) and not condition.holds(None, None)


def test_sms_texts_render_in_the_persons_language_with_fallback() -> None:
    definition = read_yaml(DEFAULT_FILE.read_text("utf-8"))
    sv = render(definition, "invitation", locale="sv", name="", controller="X AS", link=LINK)
    assert (
        sv
        == f"Hej! Hur nöjd var du med X AS? Svara här: {LINK} Svara STOPP för att avregistrera dig."
    )
    custom = parse_definition(BASE)
    fallback = render(custom, "invitation", locale="fi", name="Aino", controller="X", link=LINK)
    assert fallback is not None and fallback.startswith("Hei Aino! Hva synes du?")
    assert render(custom, "reminder", locale="nb", name="A", controller="X", link=LINK) is None
