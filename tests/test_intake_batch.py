"""``POST /api/v1/interactions/batch``: each bad row its own error, good rows received, idempotent
on external_id, one audit entry per batch, unknown fields refused (P10), phone numbers read in
the region of the customer's language, objectors and flagged cases skipped (P7)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import interaction_payload
from tilfreds.audit.models import AuditEntry
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.schemas import BATCH_MAX_ROWS
from tilfreds.people.models import Interaction, Person
from tilfreds.runtime import Runtime

BATCH = "/api/v1/interactions/batch"


def count(rt: Runtime, model: type) -> int:
    with rt.db.read_only() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def row(n: int, **overrides: Any) -> dict[str, Any]:
    customer = {"name": "Kari Nordmann", "phone": f"412 {n // 100:02d} {n % 100:03d}"}
    return interaction_payload(external_id=f"b-{n}", customer=customer) | overrides


def test_a_batch_schedules_every_row_with_one_audit_entry(client: TestClient, rt: Runtime) -> None:
    before = count(rt, AuditEntry)
    r = client.post(BATCH, json={"interactions": [row(n) for n in range(50)]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["created"], body["existing"], body["refused"]) == (50, 50, 0, 0)
    assert [x["row"] for x in body["results"]] == list(range(1, 51))
    assert {x["outcome"] for x in body["results"]} == {"scheduled"}
    assert (count(rt, Person), count(rt, Interaction), count(rt, Invitation)) == (50, 50, 50)
    assert count(rt, Message) == 50
    assert count(rt, AuditEntry) == before + 1  # not one per row
    with rt.db.read_only() as session:
        entry = (
            session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc())).scalars().first()
        )
    assert entry is not None and entry.action == "interaction.batch_received"


def test_a_repeated_batch_creates_nothing_and_says_so_per_row(
    client: TestClient, rt: Runtime
) -> None:
    rows = [row(n) for n in range(10)]
    client.post(BATCH, json={"interactions": rows})
    audit_before = count(rt, AuditEntry)
    again = client.post(BATCH, json={"interactions": [*rows, rows[0]]}).json()
    assert (again["created"], again["existing"]) == (0, 11)
    assert [x["created"] for x in again["results"]] == [False] * 11
    assert (count(rt, Interaction), count(rt, Message)) == (10, 10)
    assert count(rt, AuditEntry) == audit_before  # nothing changed, nothing to audit


def test_a_row_repeated_within_one_batch_is_received_once(client: TestClient, rt: Runtime) -> None:
    body = client.post(BATCH, json={"interactions": [row(1), row(1), row(1)]}).json()
    assert [x["created"] for x in body["results"]] == [True, False, False]
    assert len({x["id"] for x in body["results"]}) == 1
    assert count(rt, Interaction) == 1


def test_p10_each_bad_row_gets_its_own_error_and_the_good_rows_are_received(
    client: TestClient, rt: Runtime
) -> None:
    secret = "01017012345"
    rows = [
        row(1),
        row(2, national_id=secret),  # unknown field
        row(3, customer={"name": "Kari", "phone": "22 33 44 55"}),  # a landline
        row(4, flags=["dispute", "gossip"]),  # unknown flag
        "not an object",
        row(6, occurred_at="yesterday"),
        row(7, survey="nope"),
        row(8),
    ]
    r = client.post(BATCH, json={"interactions": rows})
    assert r.status_code == 200
    body = r.json()
    assert [x["row"] for x in body["results"]] == [1, 8]
    errors = {e["row"]: (e["field"], e["code"]) for e in body["errors"]}
    assert errors == {
        2: (None, "invalid_input"),
        3: ("customer.phone", "invalid_input"),
        4: ("flags.1", "invalid_input"),
        5: (None, "invalid_input"),
        6: ("occurred_at", "invalid_input"),
        7: ("survey", "not_found"),
    }
    assert secret not in r.text and "gossip" not in r.text and "22 33" not in r.text
    assert (count(rt, Interaction), count(rt, Person)) == (2, 2)


def test_p7_flags_and_objections_skip_rows_and_store_nothing_about_the_person(
    client: TestClient, rt: Runtime
) -> None:
    from tests.test_intake_rules import _object

    _object(rt)  # objects for the factory's phone, 412 34 567
    rows = [
        interaction_payload(external_id="objector"),
        row(2, flags=["hardship", "dispute"]),
        row(3),
    ]
    body = client.post(BATCH, json={"interactions": rows}).json()
    outcomes = [(x["outcome"], x["skip_reasons"]) for x in body["results"]]
    assert outcomes[0] == ("skipped", ["objection"])
    assert outcomes[1][0] == "skipped" and set(outcomes[1][1]) >= {"flag_dispute", "flag_hardship"}
    assert outcomes[2] == ("scheduled", [])
    assert (count(rt, Person), count(rt, Invitation)) == (1, 1)


def test_phone_numbers_are_read_in_the_region_of_the_customers_language(
    client: TestClient, rt: Runtime
) -> None:
    from tilfreds.people.models import Person

    local = {"nb": "412 34 567", "sv": "070-123 45 67", "da": "20 12 34 56", "fi": "041 234 5678"}
    expected = {"nb": "+4741234567", "sv": "+46701234567", "da": "+4520123456",
                "fi": "+358412345678"}  # fmt: skip
    rows = [
        row(n, customer={"name": "Kari", "phone": phone, "locale": locale})
        for n, (locale, phone) in enumerate(local.items())
    ]
    body = client.post(BATCH, json={"interactions": rows}).json()
    assert body["refused"] == 0, body["errors"]
    with rt.db.read_only() as session:
        people = session.execute(select(Person)).scalars().all()
        found = {
            p.locale: rt.keys.decrypt(p.phone_cipher, context=f"people.phone/{p.phone_index}")
            for p in people
        }
    assert found == expected
    # English speakers' numbers are read in the configured default region (NO)
    english = row(9, customer={"name": "Kari", "phone": "412 34 999", "locale": "en"})
    assert client.post(BATCH, json={"interactions": [english]}).json()["refused"] == 0


def test_a_person_in_several_rows_is_asked_once_about_the_first_interaction(
    client: TestClient, rt: Runtime
) -> None:
    same = {"name": "Kari Nordmann", "phone": "412 34 567"}
    # listed newest first: the one that happened first (the last row) is the one asked about
    rows = [row(n, customer=same, occurred_at=f"2026-11-25T0{8 - n}:00:00+00:00") for n in range(5)]
    body = client.post(BATCH, json={"interactions": rows}).json()
    assert body["created"] == 5 and count(rt, Person) == 1
    outcomes = [(x["row"], x["outcome"], x["skip_reasons"]) for x in body["results"]]
    assert outcomes == [(n, "skipped", ["fatigue"]) for n in range(1, 5)] + [(5, "scheduled", [])]
    assert count(rt, Invitation) == 1


def test_more_than_10000_rows_are_refused_whole_in_the_error_shape(
    client: TestClient, rt: Runtime
) -> None:
    small = {"external_id": "x"}
    r = client.post(BATCH, json={"interactions": [small] * (BATCH_MAX_ROWS + 1)})
    assert r.status_code in (413, 422)
    assert r.json()["error"]["code"] in ("invalid_input", "payload_too_large")
    assert r.json()["error"]["field"] == "interactions"
    assert count(rt, Interaction) == 0


def test_garbage_batch_bodies_are_4xx_never_500(client: TestClient) -> None:
    for raw in (b"", b"{", b"[]", b"null", b'{"interactions": 5}', b'{"interactions": []}',
                b'{"rows": []}', "ø".encode("latin-1")):  # fmt: skip
        r = client.post(BATCH, content=raw, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (raw, r.status_code)
        assert set(r.json()["error"]) >= {"code", "message"}
    # rows that are not interactions are each refused, in a 200 that stores nothing
    for raw in (b'{"interactions": [1, null]}', b'{"interactions": [{"external_id": "\\ud800"}]}'):
        r = client.post(BATCH, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["created"] == 0, raw
        assert r.json()["refused"] == r.json()["received"]
