"""The SMS providers' callback route (P3, P7): a forged call gets 403 and changes nothing, a
repeated call changes nothing the second time, input never gets a 500 or an echo, and a transport
that takes no callbacks has no route. The transport is a test double for the route itself; real
adapters are tested against their providers' emulators."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.test_worker import intake
from tilfreds.app import create_app
from tilfreds.invitations.models import InboundSeen, Message
from tilfreds.people.models import Suppression
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import (
    CallbackRefused,
    CallbackRequest,
    InboundSms,
    OutboundSms,
    Outcome,
    PerMessage,
    Provider,
    Receipt,
    ReceiptState,
    Submitted,
    callback_path,
    check_basic_auth,
    check_token,
)
from tilfreds.worker import Worker

SECRET = "a-test-callback-secret"


class Hooked(PerMessage):
    """Reads ``{"id", "state"}`` receipts and ``{"id", "from", "to", "text"}`` replies, after
    checking the URL's token."""

    name = "hooked"
    provider = Provider(name="test gateway", country="DK")

    def send(self, sms: OutboundSms) -> Outcome:
        return Submitted(provider_ids=(f"h{sms.reference}",))

    def parse_callback(self, request: CallbackRequest) -> list[Receipt | InboundSms]:
        check_token(request, secret=SECRET, transport=self.name)
        try:
            data = json.loads(request.body)
        except ValueError as exc:
            raise CallbackRefused(400, "not JSON") from exc
        if request.kind == "receipt":
            return [Receipt(self.name, data["id"], ReceiptState(data["state"]))]
        return [
            InboundSms(
                self.name,
                sender=data["from"],
                to=data["to"],
                text=data["text"],
                received_at=datetime(2026, 11, 25, tzinfo=UTC),
                provider_id=data["id"],
            )
        ]


@pytest.fixture
def hooked(rt: Runtime) -> Iterator[TestClient]:
    rt.transport = Hooked()
    rt.settings.sms_callback_secret = SECRET
    with TestClient(create_app(rt)) as c:
        yield c


def url(kind: str, transport: str = "hooked") -> str:
    return callback_path(SECRET, transport, kind)


def one_sent(rt: Runtime) -> int:
    intake(rt, 1)
    Worker(rt).drain()
    with rt.db.read_only() as session:
        return session.execute(select(Message.id)).scalar_one()


def status_of(rt: Runtime) -> str:
    with rt.db.read_only() as session:
        return session.execute(select(Message.status)).scalar_one().value


def test_p3_a_receipt_from_the_provider_marks_the_message_delivered_once(
    hooked: TestClient, rt: Runtime
) -> None:
    mid = one_sent(rt)
    body = {"id": f"h{mid}", "state": "delivered"}
    for _ in range(2):  # providers retry: the second delivery changes nothing
        answer = hooked.post(url("receipt"), json=body)
        assert answer.status_code == 200 and answer.json() == {"received": 1}
        assert status_of(rt) == "delivered"


def test_p3_a_forged_callback_gets_403_and_changes_nothing(hooked: TestClient, rt: Runtime) -> None:
    mid = one_sent(rt)
    forged = url("inbound").rsplit("/", 1)[0] + "/not-the-token"
    stop = {"id": "in-1", "from": "+4741234567", "to": "2270", "text": "STOPP"}
    answer = hooked.post(forged, json=stop)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    receipt_token = url("receipt").rsplit("/", 1)[1]  # a token of another of our URLs
    answer = hooked.post(
        f"/sms/hooked/inbound/{receipt_token}", json={"id": f"h{mid}", "state": "failed"}
    )
    assert answer.status_code == 403
    with rt.db.read_only() as session:
        assert session.execute(select(func.count()).select_from(Suppression)).scalar() == 0
        assert session.execute(select(func.count()).select_from(InboundSeen)).scalar() == 0
    assert status_of(rt) == "submitted"


def test_p7_a_stopp_reply_over_a_callback_counts_once(hooked: TestClient, rt: Runtime) -> None:
    stop = {"id": "in-1", "from": "4741234567", "to": "2270", "text": "STOPP"}
    for _ in range(3):
        assert hooked.post(url("inbound"), json=stop).status_code == 200
    with rt.db.read_only() as session:
        assert session.execute(select(func.count()).select_from(Suppression)).scalar() == 1
        assert session.execute(select(func.count()).select_from(InboundSeen)).scalar() == 1


@pytest.mark.parametrize(
    "path",
    [
        "/sms/dev/receipt/x",  # not the configured transport
        "/sms/hooked/status/x",  # no such kind
    ],
)
def test_callbacks_for_anything_but_the_configured_transport_are_404(
    hooked: TestClient, path: str
) -> None:
    answer = hooked.post(path, content=b"{}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_a_transport_without_callbacks_has_no_callback_route(client: TestClient) -> None:
    answer = client.get("/sms/dev/receipt/" + url("receipt").rsplit("/", 1)[1])
    assert answer.status_code == 404


@pytest.mark.parametrize(
    "body",
    [b"not json \xff", b'{"id": "h1"}', b'{"id": "h1", "state": "<script>"}', b"[]"],
)
def test_unreadable_callbacks_get_400_without_echo_and_change_nothing(
    hooked: TestClient, rt: Runtime, body: bytes
) -> None:
    one_sent(rt)
    answer = hooked.post(url("receipt"), content=body)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"
    assert "script" not in answer.text and "json" not in answer.text.lower()
    assert status_of(rt) == "submitted"


def test_a_callback_body_over_the_limit_is_refused_in_the_error_shape(
    hooked: TestClient, rt: Runtime
) -> None:
    answer = hooked.post(url("receipt"), content=b"x" * (rt.settings.max_body_bytes + 1))
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        (basic("gw", "s3cret"), True),
        (basic("gw", "wrong"), False),
        (basic("other", "s3cret"), False),
        ({"authorization": "Bearer s3cret"}, False),
        ({"authorization": "Basic not-base64!"}, False),
        ({}, False),
    ],
)
def test_basic_auth_for_callbacks(headers: dict[str, str], ok: bool) -> None:
    request = CallbackRequest("receipt", "", "POST", {}, headers, b"")
    if ok:
        check_basic_auth(request, username="gw", password="s3cret")
    else:
        with pytest.raises(CallbackRefused) as refused:
            check_basic_auth(request, username="gw", password="s3cret")
        assert refused.value.status == 403


def test_each_callback_url_has_its_own_token() -> None:
    paths = {callback_path(SECRET, t, k) for t in ("kannel", "sinch") for k in ("receipt", "in")}
    assert len(paths) == 4
    assert callback_path("another secret", "sinch", "receipt") not in paths
