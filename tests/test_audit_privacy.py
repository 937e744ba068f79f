"""The audit log names fields, never values (P18: it outlives erasure, so it must hold nothing
personal): ``record`` refuses anything but names and ids, and a whole flow leaves no trace of the
person's name or number in any audit column."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.factories import interaction_payload
from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditEntry, AuditHead
from tilfreds.people.models import Person
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.worker import Worker

NAME, PHONE = "Kari Nordmann", "+4741234567"
VALUES = [NAME, PHONE, "41234567", "kari@example.no", "name=Kari", "name Kari", ""]


def _record(rt: Runtime, **overrides: object) -> None:
    args: dict[str, object] = {
        "actor": "system",
        "action": "person.registered",
        "subject_type": "person",
        "subject_id": 1,
        "at": rt.clock.now(),
        "fields": ["name"],
    }
    with rt.db.unit_of_work() as session:
        audit.record(session, **(args | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (where, value)
        for where in ("fields", "actor", "action", "subject_type", "subject_id")
        for value in VALUES
        # a number without its country code looks like any row id: the flow scan below covers it
        if (where, value) != ("subject_id", "41234567")
    ],
)
def test_p18_record_refuses_a_value_where_a_name_belongs(
    rt: Runtime, where: str, value: str
) -> None:
    with rt.db.read_only() as session:
        before = session.execute(select(AuditHead.seq)).scalar_one()
    with pytest.raises(ValueError, match=f"audit {where.replace('_', ' ').rstrip('s')}") as exc:
        _record(rt, **{where: [value] if where == "fields" else value})
    assert value not in str(exc.value) or not value  # the refusal never echoes the value
    with rt.db.read_only() as session:
        assert session.execute(select(AuditHead.seq)).scalar_one() == before


def _code(rt: Runtime) -> str:
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        body = dev.inbox(session, rt.keys)[0].body
    match = re.search(r"/s/(\w+)", body)
    assert match, body
    return match.group(1)


def test_p18_a_whole_flow_leaves_no_name_or_number_in_the_audit_log(
    client: TestClient, rt: Runtime
) -> None:
    customer = {"name": NAME, "phone": "412 34 567", "locale": "nb-NO"}
    assert (
        client.post("/api/v1/interactions", json=interaction_payload(customer=customer)).status_code
        == 201
    )
    answered = client.post(f"/s/{_code(rt)}", data={"csat": "2", "contact": "yes"})
    assert answered.status_code == 303
    rt.settings.fatigue_days = 0  # asked again about the next interaction (no fatigue window)
    again = interaction_payload(external_id="case-1002", customer=customer)
    assert client.post("/api/v1/interactions", json=again).status_code == 201
    _code(rt)
    stop = client.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "STOPP"})
    assert stop.json() == {"outcome": "objection"}

    with rt.db.read_only() as session:
        person = session.execute(select(Person)).scalar_one()
        entries = session.execute(select(AuditEntry.__table__)).all()
        head = session.execute(select(AuditHead.__table__)).all()
    assert {e.action for e in entries} >= {
        "person.registered",
        "interaction.received",
        "response.submitted",
        "suppression.added",
    }
    digits = PHONE.lstrip("+")
    needles = ["Kari", "Nordmann", digits[2:], person.phone_index, person.phone_index[9:]]
    for row in [*entries, *head]:
        text = " ".join(str(value) for value in row)
        assert not [n for n in needles if n.lower() in text.lower()], row
