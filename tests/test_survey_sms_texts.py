"""Invitations and reminders use their survey's own SMS texts, in the person's language with
fallback, rendered at send time from current data (P17), with the survey versions a batch needs
read once (no query per message)."""

from __future__ import annotations

from datetime import timedelta

import yaml
from sqlalchemy import select, update

from tests.factories import interaction_in, statements
from tests.test_worker import Recording
from tests.two_way import two_way_definition
from tilfreds.crypto import context
from tilfreds.invitations.intake import Timing, receive_interaction
from tilfreds.invitations.models import Invitation
from tilfreds.people.models import Person
from tilfreds.runtime import Runtime
from tilfreds.surveys.definition import parse_definition
from tilfreds.surveys.service import DEFAULT_FILE, publish
from tilfreds.worker import Worker

TIMING = Timing(delay=timedelta(0), valid_for=timedelta(days=7))


def invite(rt: Runtime, *people: tuple[int, str, str | None]) -> None:
    """Interactions of person n, in ``locale``, for the survey ``slug`` (None: the default)."""
    rt.settings.fatigue_days = 0
    with rt.db.unit_of_work() as session:
        for n, locale, slug in people:
            receive_interaction(
                session, rt.keys, interaction_in(n, locale=locale, survey=slug), timing=TIMING,
                now=rt.clock.now(), actor="test",
            )  # fmt: skip


def sent(rt: Runtime) -> dict[str, str]:
    transport = Recording()
    rt.transport = transport
    Worker(rt).drain()
    return {sms.to: sms.body for sms in transport.sent}


def link(rt: Runtime, n: int) -> str:
    with rt.db.read_only() as session:
        code = session.execute(
            select(Invitation.code).where(Invitation.person_id == person(rt, n).id)
        ).scalar_one()
    return f"{rt.settings.public_url}/s/{code}"


def person(rt: Runtime, n: int) -> Person:
    with rt.db.read_only() as session:
        phone = interaction_in(n).phone_e164
        return session.execute(
            select(Person).where(Person.phone_index == rt.keys.blind_index(phone))
        ).scalar_one()


def test_p17_the_invitation_is_the_survey_s_own_text_in_the_person_s_language_and_current_name(
    rt: Runtime,
) -> None:
    invite(rt, (1, "en", None), (2, "sv", None))
    rectified = person(rt, 1)
    with rt.db.unit_of_work() as session:  # the name is corrected before the invitation goes
        session.execute(
            update(Person)
            .where(Person.id == rectified.id)
            .values(
                name_cipher=rt.keys.encrypt(
                    "Åsmund Berg", context=context("people", "name", rectified.phone_index)
                )
            )
        )
    bodies = sent(rt)
    controller = rt.settings.controller_name
    assert bodies[interaction_in(1).phone_e164] == (
        f"Hi Åsmund! How satisfied were you with {controller}? Answer here: {link(rt, 1)} "
        "Reply STOP to opt out."
    )
    assert bodies[interaction_in(2).phone_e164].startswith("Hej Person! Hur nöjd var du med")


def test_a_language_the_survey_has_no_text_in_falls_back_to_its_default_language(
    rt: Runtime,
) -> None:
    data = yaml.safe_load(DEFAULT_FILE.read_text("utf-8"))
    data["sms"] = {"invitation": {"nb": "Hei {name}! {controller} spør: {link} Svar STOPP."}}
    data["slug"] = "nb-only"
    bare = data | {"slug": "no-texts", "sms": {}}
    with rt.db.unit_of_work() as session:
        publish(session, parse_definition(data), now=rt.clock.now())
        publish(session, parse_definition(bare), now=rt.clock.now())
    invite(rt, (1, "fi", "nb-only"), (2, "fi", "no-texts"))
    bodies = sent(rt)
    controller = rt.settings.controller_name
    assert bodies[interaction_in(1).phone_e164] == (
        f"Hei Person! {controller} spør: {link(rt, 1)} Svar STOPP."
    )
    # no text of its own in any language: the built-in invitation, in Finnish
    assert bodies[interaction_in(2).phone_e164].startswith("Hei Person! ")
    assert "haluaa tietää" in bodies[interaction_in(2).phone_e164]


def test_a_batch_reads_its_surveys_texts_once_however_many_messages_it_holds(
    rt: Runtime,
) -> None:
    with rt.db.unit_of_work() as session:
        publish(session, two_way_definition(), now=rt.clock.now())
    rt.settings.worker_batch_size = 50

    def survey_reads(people: range) -> int:
        invite(rt, *((n, "nb", "sms-csat" if n % 2 else None) for n in people))
        with statements(rt.db) as seen:
            assert len(sent(rt)) == len(people)
        return sum("FROM survey_versions" in s for s in seen)

    assert survey_reads(range(1, 3)) == survey_reads(range(3, 23)) == 1
