"""``POST /api/v1/interactions``: idempotent intake, clear 4xx for bad input (P10), tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.factories import interaction_payload
from tilfreds.invitations.models import Invitation, Message
from tilfreds.people.models import Interaction, Person
from tilfreds.runtime import Runtime


def count(rt: Runtime, model: type) -> int:
    with rt.db.read_only() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_interaction_schedules_one_invitation_and_message(client: TestClient, rt: Runtime) -> None:
    r = client.post("/api/v1/interactions", json=interaction_payload())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True and body["invitation"]["status"] == "pending"
    assert "code" not in body["invitation"]  # the link is the respondent's secret
    assert (count(rt, Interaction), count(rt, Invitation), count(rt, Message)) == (1, 1, 1)


def test_same_external_id_again_changes_nothing(client: TestClient, rt: Runtime) -> None:
    first = client.post("/api/v1/interactions", json=interaction_payload()).json()
    changed = interaction_payload(
        reason="something else",
        customer={"name": "Someone Else", "phone": "+4798765432", "locale": "sv"},
    )
    again = client.post("/api/v1/interactions", json=changed)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["created"] is False
    assert (count(rt, Person), count(rt, Interaction), count(rt, Message)) == (1, 1, 1)


def test_same_person_in_two_interactions_is_one_person_asked_once_within_the_fatigue_window(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/interactions", json=interaction_payload(external_id="a"))
    second = client.post(
        "/api/v1/interactions",
        json=interaction_payload(
            external_id="b", customer={"name": "Kari Nordmann", "phone": "+47 412 34 567"}
        ),
    ).json()
    assert (second["outcome"], second["skip_reasons"]) == ("skipped", ["fatigue"])
    assert (count(rt, Person), count(rt, Invitation)) == (1, 1)


def test_p10_unknown_fields_are_refused(client: TestClient, rt: Runtime) -> None:
    for body in (
        interaction_payload(national_id="01017012345"),
        interaction_payload(customer={"name": "Kari", "phone": "41234567", "email": "k@x.no"}),
    ):
        r = client.post("/api/v1/interactions", json=body)
        assert r.status_code == 422
    assert count(rt, Person) == 0


def test_bad_phone_and_locale_get_clear_errors(client: TestClient, rt: Runtime) -> None:
    r = client.post(
        "/api/v1/interactions",
        json=interaction_payload(customer={"name": "Kari", "phone": "22 33 44 55"}),
    )
    assert r.status_code == 422
    assert r.json()["error"] == {
        "code": "invalid_input",
        "field": "phone",
        "message": "phone is not a mobile number, so it cannot receive SMS",
    }
    r = client.post(
        "/api/v1/interactions",
        json=interaction_payload(customer={"name": "Kari", "phone": "41234567", "locale": "de"}),
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "locale"
    assert count(rt, Person) == 0


def test_malformed_bodies_are_4xx_never_500(client: TestClient) -> None:
    for raw in (b"", b"{", b"[]", b'{"external_id": 5}', "ø".encode("latin-1")):
        r = client.post(
            "/api/v1/interactions", content=raw, headers={"content-type": "application/json"}
        )
        assert 400 <= r.status_code < 500, (raw, r.status_code)
    naive = interaction_payload(occurred_at="2026-11-25T08:30:00")
    assert client.post("/api/v1/interactions", json=naive).status_code == 422


def test_unknown_survey_is_404(client: TestClient) -> None:
    r = client.post("/api/v1/interactions", json=interaction_payload(survey="nope"))
    assert r.status_code == 404 and r.json()["error"]["field"] == "survey"


def test_surveys_lists_the_default(client: TestClient) -> None:
    surveys = client.get("/api/v1/surveys").json()
    assert [(s["slug"], s["is_default"]) for s in surveys] == [("csat", True)]
    assert [q["kind"] for q in surveys[0]["questions"]] == ["csat", "free_text", "contact_consent"]


def test_api_needs_a_valid_token(client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer tf_wrong"}):
        r = client.post("/api/v1/interactions", json=interaction_payload(), headers=headers)
        assert r.status_code == 401
        assert client.get("/api/v1/reports/summary", headers=headers).status_code == 401


def test_concurrent_duplicates_make_one_interaction_and_no_error(
    client: TestClient, rt: Runtime
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = interaction_payload(external_id="raced")
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(
            pool.map(
                lambda _: client.post("/api/v1/interactions", json=body).status_code, range(16)
            )
        )
    assert codes == [200] * 15 + [201]
    assert (count(rt, Person), count(rt, Interaction), count(rt, Message)) == (1, 1, 1)


def test_concurrent_intake_keeps_one_unbroken_audit_chain(client: TestClient, rt: Runtime) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tilfreds.audit.service import verify

    def post(n: int) -> int:
        # the same person in every call, so registrations race too
        body = interaction_payload(external_id=f"ext-{n % 12}")
        return client.post("/api/v1/interactions", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(post, range(40)))
    assert sorted(set(codes)) == [200, 201] and codes.count(201) == 12
    with rt.db.read_only() as session:
        result = verify(session)
    assert result.ok, result.problem
    assert (count(rt, Person), count(rt, Interaction)) == (1, 12)
