"""``tilfreds keys rotate`` moves every sealed value to the current key in batches while the
system keeps serving, and objections (P7) keep matching before, during and after."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import SECRET, T0
from tests.factories import interaction_in
from tilfreds.audit.models import AuditEntry
from tilfreds.cli import app
from tilfreds.crypto import Keys, context, generate_master_key
from tilfreds.invitations.inbound import receive_dev_reply, receive_sms
from tilfreds.invitations.intake import receive_interaction
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people import service as people_service
from tilfreds.people.models import Interaction, Person, Suppression
from tilfreds.rotation import service as rotation
from tilfreds.rotation.status import status
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.sms.dev import DevTransport
from tilfreds.worker import Worker

NEW = generate_master_key()
NOT_HELD = "+4790000001"  # objected by SMS, never a respondent
COMES_BACK = "+4790000002"  # objected by SMS, becomes a respondent during the rotation


def keys_of(current: str, *previous: str) -> Keys:
    decode = base64.urlsafe_b64decode
    return Keys.from_master(decode(current), [decode(p) for p in previous])


def with_keys(rt: Runtime, keys: Keys) -> Runtime:
    """The same system, restarted with other keys."""
    transport = DevTransport(rt.db, keys, rt.clock)
    return Runtime(rt.settings, rt.db, keys, rt.clock, transport)


def intake(rt: Runtime, n: int, *, phone: str | None = None, external_id: str = "") -> None:
    data = interaction_in(n, external_id=external_id or f"ext-{n}", phone_e164=phone or phone_of(n))
    with rt.db.unit_of_work() as session:
        receive_interaction(
            session, rt.keys, data, timing=rt.timing(), now=rt.clock.now(), actor="test"
        )


def object_by_sms(rt: Runtime, phone: str) -> None:
    with rt.db.unit_of_work() as session:
        receive_sms(session, rt.keys, phone_e164=phone, text="STOPP", now=rt.clock.now())


def phone_of(n: int) -> str:
    return interaction_in(n).phone_e164


def outcome_of_new_interaction(rt: Runtime, phone: str, ext: str) -> tuple[str, str | None]:
    """Register a new interaction for ``phone``, run the worker: what became of it (skipped at
    intake, with its first reason, or its message's status)."""
    intake(rt, 0, phone=phone, external_id=f"{ext}-{phone}")
    Worker(rt).drain()
    with rt.db.read_only() as session:
        reasons = session.execute(
            select(Interaction.skip_reasons).where(Interaction.external_id == f"{ext}-{phone}")
        ).scalar_one()
        if reasons:
            return "skipped", reasons.split(",")[0]
        message = session.execute(
            select(Message)
            .join(Invitation, Invitation.id == Message.invitation_id)
            .join(Interaction, Interaction.id == Invitation.interaction_id)
            .where(Interaction.external_id == f"{ext}-{phone}")
        ).scalar_one()
    return message.status, message.skip_reason


def key_of_person(rt: Runtime, phone: str) -> str:
    with rt.db.read_only() as session:
        indexes = rt.keys.blind_indexes(phone)
        return (
            session.execute(select(Person.phone_index).where(Person.phone_index.in_(indexes)))
            .scalar_one()
            .split(".")[0]
        )


def rotate(rt: Runtime, batch_size: int = 500) -> Iterator[rotation.Step]:
    return rotation.rotate(rt.db, rt.keys, actor="test", now=rt.clock.now(), batch_size=batch_size)


def test_rotation_moves_people_objections_and_dev_messages_and_they_open_with_the_new_key(
    rt: Runtime,
) -> None:
    for n in range(1, 8):
        intake(rt, n)
    Worker(rt).drain()
    object_by_sms(rt, phone_of(3))
    object_by_sms(rt, NOT_HELD)
    with rt.db.unit_of_work() as session:
        receive_dev_reply(
            session,
            rt.keys,
            phone_e164=phone_of(4),
            our_number="2270",
            text="Hei",
            now=rt.clock.now(),
        )
    during = with_keys(rt, keys_of(NEW, SECRET))
    with rt.db.read_only() as session:
        assert rotation.plan(session, during.keys) == {
            "people": 7,
            "dev_phone_messages": 8,
            "messages": 1,  # the objection's confirmation to the number held nowhere
            rotation.CARRY: 7 + 8,
        }
    steps = list(rotate(during, batch_size=3))
    assert sum(s.moved for s in steps if s.task == "people") == 7
    assert sum(s.moved for s in steps if s.task == "dev_phone_messages") == 8
    assert not any(s.unreadable for s in steps)

    after = keys_of(NEW)  # the old key dropped: everything but the unheld objection opens
    with rt.db.read_only() as session:
        people = session.execute(select(Person).order_by(Person.id)).scalars().all()
        for n, person in enumerate(people, start=1):
            where = person.phone_index
            assert after.decrypt(
                person.phone_cipher, context=context("people", "phone", where)
            ) == phone_of(n)
            assert (
                after.decrypt(person.name_cipher, context=context("people", "name", where))
                == f"Person {n}"
            )
        assert len(dev.inbox(session, after)) == 8
        suppressions = set(session.execute(select(Suppression.phone_index)).scalars())
        assert suppressions == {after.blind_index(phone_of(3)), rt.keys.blind_index(NOT_HELD)}
        report = {k.key_id: k for k in status(session, during.keys)}
        rotated = session.execute(
            select(AuditEntry).where(AuditEntry.action == "keys.rotated")
        ).scalar_one()
    old, new = report[rt.keys.current_id], report[during.keys.current_id]
    # the message is the objection's confirmation to the number held nowhere
    assert new.held == {"people": 7, "dev_phone_messages": 8, "suppressions": 1, "messages": 1}
    assert old.held.pop("audit_log") > 0  # the chain's older entries: verified with this key
    assert old.held == {"suppressions": 1} and old.configured == "previous"
    assert (
        "can be dropped" in old.advice and "objections of numbers no longer held (1)" in old.advice
    )
    assert rotated.subject_id == during.keys.current_id
    assert rotated.fields == ["dev_phone_messages", "messages", "people", "suppressions"]
    assert all(s.moved == 0 for s in rotate(during))  # again: nothing left to do


def test_p7_objection_recorded_before_rotation_blocks_sending_during_and_after(
    rt: Runtime,
) -> None:
    rt.settings.fatigue_days = 0  # the same people are invited again below
    for n in range(1, 13):
        intake(rt, n)
    Worker(rt).drain()
    early, late = phone_of(2), phone_of(11)  # their rows are re-sealed in the first, last half
    for phone in (early, late, NOT_HELD, COMES_BACK):
        object_by_sms(rt, phone)

    during = with_keys(rt, keys_of(NEW, SECRET))
    steps = rotate(during, batch_size=3)
    done = 0
    while done < 6:  # two of the four batches of people
        done += next(steps).moved
    assert key_of_person(during, early) == during.keys.current_id
    assert key_of_person(during, late) == rt.keys.current_id
    with rt.db.read_only() as session:  # an objection moves in the same transaction as its person
        suppressions = set(session.execute(select(Suppression.phone_index)).scalars())
    assert during.keys.blind_index(early) in suppressions
    assert rt.keys.blind_index(early) not in suppressions
    assert rt.keys.blind_index(late) in suppressions
    for phone in (early, late, NOT_HELD, COMES_BACK):
        assert outcome_of_new_interaction(during, phone, "during") == ("skipped", "objection"), (
            phone
        )
    assert outcome_of_new_interaction(during, phone_of(5), "during") == ("submitted", None)

    for _ in steps:
        pass
    for phone in (early, late, NOT_HELD, COMES_BACK):
        assert outcome_of_new_interaction(during, phone, "after") == ("skipped", "objection"), phone
    # even with the old key dropped, every objection of a number still held, or seen again since
    # (intake carries it to the current key), keeps matching
    dropped = with_keys(rt, keys_of(NEW))
    for phone in (early, late, COMES_BACK):
        assert outcome_of_new_interaction(dropped, phone, "dropped") == ("skipped", "objection"), (
            phone
        )


def test_keys_status_and_rotate_through_the_cli(rt: Runtime) -> None:
    intake(rt, 1)
    object_by_sms(rt, NOT_HELD)
    env = {
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": NEW,
        "TILFREDS_PREVIOUS_SECRET_KEYS": SECRET,
        "TILFREDS_DATA_DIR": str(rt.settings.data_dir),
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
    }
    runner = CliRunner()
    assert (
        runner.invoke(
            app,
            ["db", "upgrade"],
            env={**env, "TILFREDS_SECRET_KEY": SECRET, "TILFREDS_PREVIOUS_SECRET_KEYS": ""},
        ).exit_code
        == 0
    )
    before = runner.invoke(app, ["keys", "status"], env=env)
    assert before.exit_code == 0, before.output
    assert "keys rotate" in " ".join(before.output.split())
    rotated = runner.invoke(app, ["keys", "rotate", "--batch-size", "1"], env=env)
    assert rotated.exit_code == 0, rotated.output
    new_id = keys_of(NEW).current_id
    assert f"everything is sealed with key {new_id}" in " ".join(rotated.output.split())
    after = " ".join(runner.invoke(app, ["keys", "status"], env=env).output.split())
    assert "can be dropped" in after and rt.keys.current_id in after and new_id in after


def test_a_concurrent_writer_during_rotation_loses_nothing_on_postgresql(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises every writer")
    rt.settings.fatigue_days = 0  # the same people are invited again below
    held, objected_before = range(1, 301), range(1, 301, 10)
    with rt.db.unit_of_work() as session:
        for n in held:
            data = interaction_in(n, external_id=f"ext-{n}")
            receive_interaction(session, rt.keys, data, timing=rt.timing(), now=T0, actor="t")
    for n in objected_before:
        object_by_sms(rt, phone_of(n))
    for n in range(10):
        object_by_sms(rt, f"+4791000{n:03d}")  # numbers held nowhere

    during = with_keys(rt, keys_of(NEW, SECRET))
    rotating, errors, written, objected = threading.Event(), [], [], []
    overlapped = 0  # writes that committed while the rotation ran
    objected_during = [n for n in held if n % 10 == 5]

    def writer() -> None:
        nonlocal overlapped
        i = 0
        while rotating.is_set() or i < 20:
            try:
                if i % 2:  # a new interaction of someone the rotation may be re-sealing now
                    intake(during, 1 + (i * 7) % 300, external_id=f"again-{i}")
                else:  # a newcomer
                    intake(during, 1000 + i)
                if i < len(objected_during):
                    object_by_sms(during, phone_of(objected_during[i]))
                    objected.append(phone_of(objected_during[i]))
                Worker(during).run_once()
                written.append(i)
                overlapped += rotating.is_set()
            except Exception as exc:  # reported below
                errors.append(exc)
            i += 1

    rotating.set()
    thread = threading.Thread(target=writer)
    thread.start()
    steps = []
    try:
        for step in rotate(during, batch_size=10):
            steps.append(step)
            time.sleep(0.03)  # let the writer in between batches, as a busy system would
    finally:
        rotating.clear()
        thread.join(timeout=120)
    assert errors == []
    assert sum(s.moved for s in steps if s.task == "people") == 300
    assert len(written) >= 20 and overlapped >= 10
    Worker(during).drain()

    after = keys_of(NEW)  # with the old key dropped, everything held still opens and matches
    with rt.db.read_only() as session:
        people = session.execute(select(Person)).scalars().all()
        numbers = [
            after.decrypt(p.phone_cipher, context=context("people", "phone", p.phone_index))
            for p in people
        ]
        assert len(dev.inbox(session, after, limit=10_000)) > 0
        objectors = {phone_of(n) for n in objected_before} | set(objected)
        assert people_service.suppressed_numbers(session, after, numbers) == objectors
        report = {k.key_id: k for k in status(session, during.keys)}
        to_objectors_before = dict(
            session.execute(
                select(Message.status, func.count())
                .join(Invitation, Invitation.id == Message.invitation_id)
                .join(Person, Person.id == Invitation.person_id)
                .where(
                    Person.phone_index.in_(
                        [after.blind_index(phone_of(n)) for n in objected_before]
                    )
                )
                .group_by(Message.status)
            ).all()
        )
    newcomers = {interaction_in(1000 + i).phone_e164 for i in written if i % 2 == 0}
    assert newcomers <= set(numbers) and len(numbers) == 300 + len(newcomers)
    held = {t: n for t, n in report[rt.keys.current_id].held.items() if t != "audit_log"}
    # the numbers held nowhere are held by their objection's confirmation: the rotation
    # carried their objections to the new key with them
    assert held == {}
    assert set(to_objectors_before) == {"skipped"}  # P7: never sent, before, during or after


def test_rows_no_configured_key_opens_are_left_as_they_are_and_counted(rt: Runtime) -> None:
    intake(rt, 1)
    intake(rt, 2)
    stranger = with_keys(rt, keys_of(NEW))  # the key that sealed them is not configured at all
    steps = list(rotate(stranger))
    assert [(s.task, s.moved, s.unreadable) for s in steps] == [("people", 0, 2)]
    with rt.db.read_only() as session:
        old = {k.key_id: k for k in status(session, stranger.keys)}[rt.keys.current_id]
        assert (
            session.execute(select(AuditEntry).where(AuditEntry.action == "keys.rotated")).first()
            is None
        )
    held = {table: n for table, n in old.held.items() if table != "audit_log"}
    assert (old.configured, held) == ("missing", {"people": 2})
    assert old.advice == "NOT CONFIGURED: 2 rows cannot be read"
