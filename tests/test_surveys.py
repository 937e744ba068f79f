"""Surveys as data, end to end on SQLite and PostgreSQL: YAML and API publish immutable versions,
answers keep the version they answered (P4), consent keeps the notice version shown (P5),
declining ends every reminder and skipping is fine (P8), and branching asks only whom it should."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.conftest import T0, wipe
from tests.factories import interaction_payload, queue_reminder
from tests.test_cli import env_for
from tests.test_survey_page import survey_code
from tilfreds import migrate
from tilfreds.cli import app
from tilfreds.db import Database
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import MessagePurpose
from tilfreds.people.models import Interaction
from tilfreds.responses.models import Response
from tilfreds.runtime import Runtime
from tilfreds.surveys.definition import parse_definition
from tilfreds.surveys.models import SurveyVersion
from tilfreds.surveys.service import DEFAULT_FILE

EVERY_KIND: dict[str, Any] = {
    "slug": "every-kind",
    "name": "Every kind",
    "default_locale": "nb",
    "title": {"nb": "Alle slags spørsmål", "en": "Every kind of question"},
    "questions": [
        {"key": "csat", "kind": "csat"},
        {"key": "nps", "kind": "nps", "text": {"nb": "Anbefale {controller}?"}},
        {"key": "ces", "kind": "ces"},
        {
            "key": "channel",
            "kind": "single_choice",
            "text": {"nb": "Hvordan tok du kontakt?", "en": "How did you get in touch?"},
            "choices": [
                {"key": "phone", "text": {"nb": "Telefon", "en": "Phone"}},
                {"key": "web", "text": {"nb": "Nett", "en": "Web"}},
            ],
        },
        {"key": "better", "kind": "free_text", "show_if": {"question": "csat", "at_most": 3}},
        {"key": "contact", "kind": "contact_consent"},
    ],
    "sms": {"invitation": {"nb": "Hei {name}! {link} Svar STOPP for å reservere deg."}},
}


def publish(client: TestClient, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/surveys", json={**data, **extra})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def code_for(client: TestClient, rt: Runtime, survey: str, locale: str = "nb") -> str:
    customer = {"name": "Kari Nordmann", "phone": "412 34 567", "locale": locale}
    payload = interaction_payload(external_id="rated-call", customer=customer, survey=survey)
    assert client.post("/api/v1/interactions", json=payload).status_code == 201
    return survey_code_of(rt)


def survey_code_of(rt: Runtime) -> str:
    with rt.db.read_only() as session:
        query = select(Invitation.code).order_by(Invitation.id.desc()).limit(1)
        return str(session.execute(query).scalar_one())


def test_p4_every_kind_renders_from_the_version_through_the_registry(
    client: TestClient, rt: Runtime
) -> None:
    publish(client, EVERY_KIND)
    code = code_for(client, rt, "every-kind")
    page = html.unescape(client.get(f"/s/{code}").text)
    assert "Alle slags spørsmål" in page and "Anbefale Example Collection AS?" in page
    assert len(re.findall(r'name="nps" value="\d+"', page)) == 11
    assert len(re.findall(r'name="ces" value="\d+"', page)) == 7
    assert 'value="phone"' in page and "Telefon" in page
    assert "<textarea" in page and 'name="contact" value="yes"' in page
    english = html.unescape(client.get(f"/s/{code}?lang=en").text)
    assert 'lang="en"' in english and "How did you get in touch?" in english
    assert "Every kind of question" in english
    # a text missing in English falls back to the survey's default locale
    assert "Anbefale Example Collection AS?" in english
    # the switcher offers the other languages as plain links
    assert all(f'href="?lang={tag}"' in page for tag in ("nn", "sv", "da", "fi", "en"))


def test_p4_an_answer_keeps_its_version_after_the_survey_changes(
    client: TestClient, rt: Runtime
) -> None:
    first = publish(client, EVERY_KIND)
    code = code_for(client, rt, "every-kind")
    form_page = client.get(f"/s/{code}").text
    changed = copy.deepcopy(EVERY_KIND)
    changed["questions"] = [{"key": "nps", "kind": "nps"}]
    second = publish(client, changed)
    assert (first["version"], second["version"]) == (1, 2)
    assert publish(client, changed)["version"] == 2  # the same definition again: nothing new
    version = re.search(r'name="version" value="(\d+)"', form_page)
    assert version
    form = {"version": version.group(1), "csat": "2", "channel": "web", "better": "Raskere"}
    assert client.post(f"/s/{code}", data=form).status_code == 303
    with rt.db.read_only() as session:
        response = session.execute(select(Response)).scalar_one()
        answered = session.get(SurveyVersion, response.survey_version_id)
        assert answered is not None and answered.number == 1
        assert {a.question_key: (a.value_int, a.value_text) for a in response.answers} == {
            "csat": (2, None),
            "channel": (2, "web"),
            "better": (None, "Raskere"),
        }
        # P4: the answer rates the interaction its invitation was sent for
        interaction = session.get(Interaction, response.interaction_id)
        assert interaction is not None and interaction.external_id == "rated-call"
    assert client.get("/api/v1/surveys/every-kind").json()["version"] == 2


def test_branching_drops_an_answer_to_a_question_not_asked(client: TestClient, rt: Runtime) -> None:
    code = survey_code(client, rt)
    form = {"csat": "5", "improve": "Ingenting"}
    assert client.post(f"/s/{code}", data=form).status_code == 303
    with rt.db.read_only() as session:
        response = session.execute(select(Response)).scalar_one()
        assert [a.question_key for a in response.answers] == ["csat"]


def test_p5_consent_is_stored_with_the_notice_version_shown(
    client: TestClient, rt: Runtime
) -> None:
    rt.settings.notice_version = "2026-12-01"
    code = survey_code(client, rt)
    assert client.post(f"/s/{code}", data={"contact": "yes"}).status_code == 303
    with rt.db.read_only() as session:
        response = session.execute(select(Response)).scalar_one()
        assert response.contact_consent is True
        assert response.notice_version == "2026-12-01"
        assert response.submitted_at is not None


def test_p8_declining_ends_the_survey_and_every_reminder(client: TestClient, rt: Runtime) -> None:
    code = survey_code(client, rt)
    with rt.db.unit_of_work() as session:
        queue_reminder(session, send_after=rt.clock.now(), now=rt.clock.now())
    assert client.get(f"/s/{code}").status_code == 200  # a GET spends nothing
    declined = client.post(f"/s/{code}/decline", data={"lang": "en"})
    assert declined.status_code == 303
    with rt.db.read_only() as session:
        assert session.execute(select(Invitation.status)).scalar_one() == "declined"
        reminder = session.execute(
            select(Message).where(Message.purpose == MessagePurpose.REMINDER)
        ).scalar_one()
        assert (reminder.status, reminder.skip_reason) == ("skipped", "invitation_declined")
        assert session.execute(select(Response)).first() is None  # nothing of theirs is kept
    page = client.get(declined.headers["location"])
    assert "You will get no reminders about this survey." in page.text
    assert client.post(f"/s/{code}", data={"csat": "4"}).status_code == 303  # no answer now
    with rt.db.read_only() as session:
        assert session.execute(select(Response)).first() is None


def test_expired_link_says_so_kindly(client: TestClient, rt: Runtime) -> None:
    code = survey_code(client, rt, "en")
    with rt.db.unit_of_work() as session:
        session.execute(select(Invitation)).scalar_one().expires_at = rt.clock.now()
    page = client.get(f"/s/{code}")
    assert page.status_code == 410
    assert "This survey is closed." in page.text and "nothing more you need to do" in page.text


def test_the_api_refuses_a_long_norwegian_invitation_unless_allowed(client: TestClient) -> None:
    data = copy.deepcopy(EVERY_KIND)
    data["sms"] = {"invitation": {"nb": "Hei {name}! " + "Bla bla. " * 20 + "{link} Svar STOPP."}}
    refused = client.post("/api/v1/surveys", json=data)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "sms.invitation.nb"
    accepted = publish(client, data, allow_long=True)
    assert accepted["texts"][0]["segments"] == 2


def test_yaml_load_and_show_round_trip(rt: Runtime, tmp_path: Path) -> None:
    source = tmp_path / "every.yaml"
    source.write_text(yaml.safe_dump(EVERY_KIND, allow_unicode=True), "utf-8")
    runner = CliRunner()
    loaded = runner.invoke(app, ["survey", "load", str(source)], env=env_for(rt))
    assert loaded.exit_code == 0, loaded.output
    assert "sms invitation nb: 1 segment(s), GSM-7" in loaded.output
    assert "version 1" in loaded.output
    shown = runner.invoke(app, ["survey", "show", "every-kind"], env=env_for(rt))
    assert shown.exit_code == 0, shown.output
    again = tmp_path / "again.yaml"
    again.write_text(shown.output, "utf-8")
    reloaded = runner.invoke(app, ["survey", "load", str(again)], env=env_for(rt))
    assert "version 1" in reloaded.output  # the same survey: no new version
    default = runner.invoke(app, ["survey", "load", str(DEFAULT_FILE)], env=env_for(rt))
    assert default.exit_code == 0 and "survey csat is at version 1" in default.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("slug: x\nname: y\nquestions: [{key: a, kind: stars}]\n", "utf-8")
    refused = runner.invoke(app, ["survey", "load", str(broken)], env=env_for(rt))
    assert refused.exit_code == 2 and "questions.0.kind" in refused.output


def test_p4_an_existing_survey_and_its_answers_become_version_1(database: Database) -> None:
    wipe(database)
    migrate.downgrade(database, "4d2b8e6c1a90")
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO surveys (id, slug, name, is_default, created_at) "
                "VALUES (7, 'csat', 'Old CSAT', :t, :now)"
            ),
            {"t": True, "now": T0},
        )
        for position, (key, kind) in enumerate([("csat", "csat"), ("contact", "contact_consent")]):
            conn.execute(
                text(
                    "INSERT INTO survey_questions (survey_id, position, key, kind, required) "
                    "VALUES (7, :p, :k, :kind, :r)"
                ),
                {"p": position, "k": key, "kind": kind, "r": True},
            )
        conn.execute(
            text(
                "INSERT INTO responses (survey_id, channel, reason, locale, submitted_at, "
                "contact_consent) VALUES (7, 'phone', 'x', 'nb', :now, :f)"
            ),
            {"now": T0, "f": False},
        )
    migrate.upgrade(database)
    with database.read_only() as session:
        (version,) = session.execute(select(SurveyVersion)).scalars().all()
        assert (version.survey_id, version.number) == (7, 1)
        definition = parse_definition(version.definition)
        assert [(q.key, q.kind, q.required) for q in definition.questions] == [
            ("csat", "csat", False),  # optional, as the previous release made them (P8)
            ("contact", "contact_consent", False),
        ]
        response = session.execute(select(Response)).scalar_one()
        assert response.survey_version_id == version.id


def test_reports_aggregate_every_kind_through_the_registry_under_the_minimum_group(
    client: TestClient, rt: Runtime
) -> None:
    publish(client, EVERY_KIND)
    forms = [
        {"csat": "5", "nps": "10", "ces": "7", "channel": "web", "contact": "no"},
        {"csat": "4", "nps": "9", "ces": "6", "channel": "web", "contact": "no"},
        {"csat": "2", "nps": "3", "ces": "2", "channel": "phone", "contact": "no"},
        {"csat": "5", "nps": "8", "ces": "5", "channel": "web", "contact": "no"},
        {"csat": "1", "nps": "0", "ces": "1", "channel": "phone", "contact": "no"},
    ]

    def report() -> dict[str, Any]:
        summary = client.get("/api/v1/reports/summary").json()
        (survey,) = [s for s in summary["surveys"] if s["slug"] == "every-kind"]
        return {q["key"]: q for q in survey["questions"]}

    for i, form in enumerate(forms):
        customer = {"name": "Kari", "phone": f"+4741{i:06d}", "locale": "nb"}
        payload = interaction_payload(external_id=f"c{i}", customer=customer, survey="every-kind")
        assert client.post("/api/v1/interactions", json=payload).status_code == 201
        assert client.post(f"/s/{survey_code_of(rt)}", data=form).status_code == 303
        if i == 3:  # four answers: every figure from answers is still hidden
            hidden = report()
            assert hidden["nps"]["answers"] == 4
            assert all(v is None for q in hidden.values() for v in q["figures"].values())
    shown = report()
    assert shown["csat"]["figures"]["score"] == 0.6
    assert shown["nps"]["figures"]["score"] == 0.0  # 2 promoters, 2 detractors of 5
    assert shown["ces"]["figures"]["mean"] == 4.2
    assert shown["channel"]["figures"]["distribution"] == {"phone": 2, "web": 3}
    assert (shown["better"]["kind"], shown["better"]["answers"]) == ("free_text", 0)
    assert shown["better"]["figures"] == {}
    assert shown["contact"]["figures"]["consents"] == 0
