"""An intake whose caller commits right after (``writes_last``) locks the audit head along with its
own writes on PostgreSQL: the chain stays intact and in order, the head is still the last lock,
concurrent deliveries of one interaction or one person neither deadlock nor double, and a head
held by one transaction is never used by another."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.factories import interaction_in, statements
from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditEntry
from tilfreds.invitations import intake
from tilfreds.people.models import Interaction, Person
from tilfreds.runtime import Runtime


def receive(rt: Runtime, n: int, **overrides: object) -> intake.Intake:
    with rt.db.unit_of_work() as session:
        return intake.receive_interaction(
            session,
            rt.keys,
            interaction_in(n, **overrides),
            timing=rt.timing(),
            now=rt.clock.now(),
            actor="token:1",
            writes_last=True,
        )


def chain_ok(rt: Runtime) -> bool:
    with rt.db.snapshot() as session:
        return audit.verify(session).ok


def test_the_head_is_locked_after_the_intakes_writes_and_the_chain_holds(rt: Runtime) -> None:
    with statements(rt.db) as seen:
        first = receive(rt, 1)
    again = receive(rt, 1)
    other = receive(rt, 2, phone_e164=interaction_in(1).phone_e164)  # the same person
    assert first.created and not again.created and other.created
    assert again.interaction_id == first.interaction_id
    assert chain_ok(rt)
    with rt.db.read_only() as session:
        entries = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        people = session.execute(select(func.count()).select_from(Person)).scalar_one()
    assert people == 1
    assert entries >= 4  # the person, and each new interaction (the default survey's too)
    if rt.db.dialect == "postgresql":
        # the facts, the writes and the head's lock go out in pipelines SQLAlchemy does not see;
        # what it sends itself is the append (the entries' insert with the head's move) alone
        assert [s.split()[0] for s in seen] == ["WITH"]
        assert "INSERT INTO audit_log" in seen[0] and "UPDATE audit_head" in seen[0]


def test_a_held_head_serves_only_its_own_transaction(rt: Runtime) -> None:
    receive(rt, 1)
    with rt.db.snapshot() as session:
        before = audit.verify(session).head
    # a transaction that says it holds the head, then rolls back: its reading is forgotten
    with pytest.raises(LookupError), rt.db.unit_of_work() as session:
        audit.holding_head(session, before.seq + 7, "f" * 64)
        raise LookupError
    receive(rt, 2)
    with (
        rt.db.unit_of_work() as session,
        session.begin_nested(),
        pytest.raises(RuntimeError, match="outermost"),
    ):
        audit.holding_head(session, before.seq, before.mac)
    assert chain_ok(rt)


def test_concurrent_deliveries_of_one_interaction_and_person_make_each_once(
    rt: Runtime,
) -> None:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers: there are no row locks to race")
    phone = interaction_in(1).phone_e164
    for round_ in range(5):
        start = threading.Barrier(4)
        results: list[intake.Intake] = []
        failures: list[BaseException] = []

        def deliver(n: int, start: threading.Barrier = start) -> None:
            try:
                start.wait()
                results.append(receive(rt, n, phone_e164=phone))
            except BaseException as exc:  # reported below
                failures.append(exc)

        ids = [round_ * 10, round_ * 10, round_ * 10 + 1, round_ * 10 + 1]  # each id twice
        threads = [threading.Thread(target=deliver, args=(n,)) for n in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures, failures
        assert sorted(r.created for r in results) == [False, False, True, True]
    with rt.db.read_only() as session:
        assert session.execute(select(func.count()).select_from(Person)).scalar_one() == 1
        interactions = session.execute(select(func.count()).select_from(Interaction))
        assert interactions.scalar_one() == 10
    assert chain_ok(rt)
