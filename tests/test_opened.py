"""The funnel's "opened" step (P2): a GET of the link records nothing (link scanners and previews
fetch links), the page's beacon records the first time a person has the page in front of them,
and an answer or a decline from the page counts as opened also without JavaScript."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.factories import send_and_get_code
from tilfreds.clock import FrozenClock
from tilfreds.invitations.models import Invitation
from tilfreds.runtime import Runtime

EXTERNAL_ID = "case-1001-call-1"  # interaction_payload's


def opened_at(rt: Runtime) -> datetime | None:
    with rt.db.read_only() as session:
        return session.execute(select(Invitation.opened_at)).scalar_one()


def funnel_of(client: TestClient) -> dict[str, object]:
    body = client.get(f"/api/v1/interactions/{EXTERNAL_ID}").json()
    assert body["funnel"]["opened_at"] == body["opened_at"]
    funnel: dict[str, object] = body["funnel"]
    return funnel


def test_p2_a_get_of_the_link_records_nothing(client: TestClient, rt: Runtime) -> None:
    code = send_and_get_code(client, rt)
    for _ in range(3):  # a link scanner, a preview, the person
        page = client.get(f"/s/{code}")
        assert page.status_code == 200
        assert '<script src="/static/opened.js" defer></script>' in page.text
    assert opened_at(rt) is None
    assert funnel_of(client)["outcome"] == "delivered"  # the dev transport delivers at once


def test_p2_a_head_of_the_link_is_answered_and_records_nothing(
    client: TestClient, rt: Runtime
) -> None:
    """Link checkers often send HEAD: it is answered as the GET is (headers, no body), and like
    the GET it records nothing."""
    code = send_and_get_code(client, rt)
    head = client.head(f"/s/{code}")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"].startswith("text/html")
    assert head.headers["cache-control"] == "no-store"
    assert opened_at(rt) is None
    assert funnel_of(client)["outcome"] == "delivered"


def test_p2_the_beacon_records_opened_once(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    code = send_and_get_code(client, rt)
    first = clock.now()
    beacon = client.post(f"/s/{code}/opened", headers={"Sec-Fetch-Site": "same-origin"})
    assert (beacon.status_code, beacon.content) == (204, b"")
    clock.advance(timedelta(minutes=5))
    assert client.post(f"/s/{code}/opened").status_code == 204  # again: changes nothing
    assert opened_at(rt) == first
    funnel = funnel_of(client)
    assert (funnel["outcome"], funnel["reasons"]) == ("opened", [])
    assert datetime.fromisoformat(str(funnel["opened_at"])) == first
    # the answer after it keeps the first time, and the outcome moves on
    assert client.post(f"/s/{code}", data={"csat": "4", "contact": "no"}).status_code == 303
    assert opened_at(rt) == first
    assert funnel_of(client)["outcome"] == "answered"


def test_p2_another_site_cannot_mark_a_link_opened(client: TestClient, rt: Runtime) -> None:
    code = send_and_get_code(client, rt)
    forged = client.post(f"/s/{code}/opened", headers={"Sec-Fetch-Site": "cross-site"})
    assert forged.status_code == 403
    other = client.post(f"/s/{code}/opened", headers={"Origin": "https://evil.example"})
    assert other.status_code == 403
    assert opened_at(rt) is None


def test_p2_an_answer_without_javascript_counts_as_opened(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    code = send_and_get_code(client, rt)
    assert client.post(f"/s/{code}", data={"csat": "5", "contact": "no"}).status_code == 303
    assert opened_at(rt) == clock.now()
    assert funnel_of(client)["outcome"] == "answered"


def test_p2_a_decline_counts_as_opened(client: TestClient, rt: Runtime, clock: FrozenClock) -> None:
    code = send_and_get_code(client, rt)
    assert client.post(f"/s/{code}/decline", data={"lang": "nb"}).status_code == 303
    assert opened_at(rt) == clock.now()
    assert funnel_of(client)["outcome"] == "declined"


def test_the_beacon_leaves_a_closed_invitation_and_bad_codes_alone(
    client: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    code = send_and_get_code(client, rt)
    with rt.db.unit_of_work() as session:
        session.execute(update(Invitation).values(expires_at=clock.now()))
    assert client.post(f"/s/{code}/opened").status_code == 204
    assert opened_at(rt) is None
    assert client.post("/s/Unknown1234/opened").status_code == 204  # nothing told, nothing done
    bad = client.post("/s/no%20such%20code/opened")
    assert bad.status_code == 404 and "no such code" not in bad.text
