"""The dev phone is a development tool: it answers a browser on this machine when the server
listens on loopback, or an operator with a token; its reply form refuses cross-site posts; and its
inbound API does not tell whether a number has open invitations (P3, P7)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.factories import PHONE, interaction_payload
from tests.test_cli import env_for
from tilfreds import cli
from tilfreds.api.deps import SESSION_COOKIE
from tilfreds.app import create_app
from tilfreds.clock import FrozenClock
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.sms.transport import OutboundSms, Outcome, PerMessage
from tilfreds.web.devphone import FORM_LIFETIME
from tilfreds.worker import Worker

LOCAL = "http://127.0.0.1:8000"
PUBLIC = "http://192.0.2.10:8000"  # a documentation address: what a LAN or the internet sees


@contextmanager
def browser(rt: Runtime, listen_host: str | None, base_url: str = LOCAL) -> Iterator[TestClient]:
    """A client with no credentials, on an app started to listen on ``listen_host``."""
    app = create_app(rt, listen_host=listen_host)
    with TestClient(app, base_url=base_url, follow_redirects=False) as c:
        yield c


@pytest.fixture
def link_on_phone(client: TestClient, rt: Runtime) -> str:
    """One survey SMS on the dev phone, and a second invitation queued for the same number."""
    rt.settings.fatigue_days = 0  # the same number is invited twice
    client.post("/api/v1/interactions", json=interaction_payload(external_id="first"))
    assert Worker(rt).drain() == 1
    client.post("/api/v1/interactions", json=interaction_payload(external_id="second"))
    with rt.db.read_only() as session:
        [sms] = dev.inbox(session, rt.keys)
    return re.findall(r"https://\S+/s/\S+", sms.body)[0]


def replies_received(rt: Runtime) -> int:
    with rt.db.read_only() as session:
        return sum(m.direction == "in" for m in dev.inbox(session, rt.keys))


def no_objection_was_recorded(rt: Runtime) -> bool:
    """Nothing reached the number's records: no reply on the phone, and the queued invitation
    still goes out (an objection would have closed it)."""
    return replies_received(rt) == 0 and Worker(rt).drain() == 1


def form_token(c: TestClient) -> str:
    page = c.get("/dev/phone")
    assert page.status_code == 200
    return re.findall(r'name="csrf" value="([^"]+)"', page.text)[0]


@pytest.mark.parametrize("listen_host", ["0.0.0.0", "::", "192.0.2.10", None])
def test_p3_beyond_loopback_the_dev_phone_is_hidden_and_shows_no_survey_link(
    rt: Runtime, link_on_phone: str, listen_host: str | None
) -> None:
    with browser(rt, listen_host, PUBLIC) as c:
        page = c.get("/dev/phone")
        missing = c.get("/no-such-page")
        assert page.status_code == missing.status_code == 404 and page.text == missing.text
        reply = c.post("/dev/phone/reply", data={"phone": PHONE, "text": "STOPP"})
        assert reply.status_code == 404
        outbox = c.get("/api/v1/dev/outbox")
        assert outbox.status_code == 401 and outbox.json()["error"]["code"] == "unauthorized"
        inbound = c.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "STOPP"})
        assert inbound.status_code == 401 and "outcome" not in inbound.text
        for response in (page, reply, outbox, inbound):
            assert link_on_phone not in response.text
    assert no_objection_was_recorded(rt)


@pytest.mark.parametrize(
    ("listen_host", "base_url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("127.0.0.2", "http://127.0.0.2:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
        ("127.0.0.1", "http://localhost:8000"),
    ],
)
def test_p3_on_a_loopback_bind_the_dev_phone_shows_its_messages(
    rt: Runtime, link_on_phone: str, listen_host: str, base_url: str
) -> None:
    with browser(rt, listen_host, base_url) as c:
        assert link_on_phone in c.get("/dev/phone").text
        assert link_on_phone in c.get("/api/v1/dev/outbox").json()[0]["text"]


def test_a_loopback_bind_refuses_a_page_that_rebinds_its_own_domain_to_loopback(
    rt: Runtime, link_on_phone: str
) -> None:
    with browser(rt, "127.0.0.1", "http://attacker.example:8000") as c:
        assert c.get("/dev/phone").status_code == 404
        assert c.get("/api/v1/dev/outbox").status_code == 401


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_loopback_bind_refuses_what_a_proxy_forwarded(
    rt: Runtime, link_on_phone: str, header: str
) -> None:
    with browser(rt, "127.0.0.1") as c:
        c.headers[header] = "for=198.51.100.7" if header == "Forwarded" else "198.51.100.7"
        assert c.get("/dev/phone").status_code == 404
        assert c.get("/api/v1/dev/outbox").status_code == 401


def test_an_operator_token_opens_the_dev_phone_beyond_loopback(
    rt: Runtime, link_on_phone: str, admin_token: str
) -> None:
    with browser(rt, "0.0.0.0", PUBLIC) as c:
        bearer = {"Authorization": f"Bearer {admin_token}"}
        assert link_on_phone in c.get("/dev/phone", headers=bearer).text
        assert c.get("/api/v1/dev/outbox", headers=bearer).status_code == 200
        c.cookies.set(SESSION_COOKIE, admin_token)
        assert link_on_phone in c.get("/dev/phone").text
        assert c.get("/api/v1/dev/outbox").status_code == 200


def test_a_wrong_token_is_as_good_as_none(rt: Runtime, link_on_phone: str) -> None:
    with browser(rt, "0.0.0.0", PUBLIC) as c:
        c.headers["Authorization"] = "Bearer tf_not-a-token"
        c.cookies.set(SESSION_COOKIE, "tf_not-a-token")
        assert c.get("/dev/phone").status_code == 404
        assert c.get("/api/v1/dev/outbox").status_code == 401


class OtherTransport(PerMessage):
    name = "smpp"

    def send(self, sms: OutboundSms) -> Outcome:
        raise AssertionError("nothing is sent in this test")


def test_without_the_dev_transport_there_is_no_dev_phone_even_on_loopback(
    rt: Runtime, admin_token: str
) -> None:
    rt.transport = OtherTransport()
    with browser(rt, "127.0.0.1") as c:
        c.headers["Authorization"] = f"Bearer {admin_token}"
        assert c.get("/dev/phone").status_code == 404
        outbox = c.get("/api/v1/dev/outbox")
        assert outbox.status_code == 404 and outbox.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # a browser, after no-referrer
        {"Origin": LOCAL},
        {},
    ],
)
def test_p7_a_reply_from_the_page_is_played_as_the_customers_sms(
    rt: Runtime, link_on_phone: str, headers: dict[str, str]
) -> None:
    with browser(rt, "127.0.0.1") as c:
        token = form_token(c)
        response = c.post(
            "/dev/phone/reply",
            data={"phone": PHONE, "text": "Stopp, takk!", "csrf": token},
            headers=headers,
        )
        assert response.status_code == 303 and response.headers["location"] == "/dev/phone"
    assert replies_received(rt) == 1
    # the queued invitation was closed by the objection: only its confirmation goes out
    assert Worker(rt).drain() == 1


@pytest.mark.parametrize("csrf", [None, "", "garbage", "1700000000.00", "²³.ab", "9" * 5000])
def test_a_reply_without_the_pages_form_token_changes_nothing(
    rt: Runtime, link_on_phone: str, csrf: str | None
) -> None:
    with browser(rt, "127.0.0.1") as c:
        data = {"phone": PHONE, "text": "STOPP"} | ({"csrf": csrf} if csrf is not None else {})
        assert c.post("/dev/phone/reply", data=data).status_code == 403
    assert no_objection_was_recorded(rt)


def test_a_form_token_from_an_earlier_day_changes_nothing(
    rt: Runtime, link_on_phone: str, clock: FrozenClock
) -> None:
    with browser(rt, "127.0.0.1") as c:
        token = form_token(c)
        clock.advance(FORM_LIFETIME + timedelta(seconds=1))
        data = {"phone": PHONE, "text": "STOPP", "csrf": token}
        assert c.post("/dev/phone/reply", data=data).status_code == 403
    assert no_objection_was_recorded(rt)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example"},
        {"Origin": "http://127.0.0.1:3000"},  # another dev server on this machine
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": LOCAL, "Sec-Fetch-Site": "same-site"},  # the browser's word wins
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_reply_posted_by_another_site_changes_nothing_even_with_a_token(
    rt: Runtime, link_on_phone: str, headers: dict[str, str]
) -> None:
    with browser(rt, "127.0.0.1") as c:
        data = {"phone": PHONE, "text": "STOPP", "csrf": form_token(c)}
        assert c.post("/dev/phone/reply", data=data, headers=headers).status_code == 403
        inbound = c.post(
            "/api/v1/dev/inbound", json={"from": PHONE, "text": "STOPP"}, headers=headers
        )
        assert inbound.status_code == 403
    assert no_objection_was_recorded(rt)


def test_a_console_session_needs_the_form_token_too(
    rt: Runtime, link_on_phone: str, admin_token: str
) -> None:
    with browser(rt, "0.0.0.0", PUBLIC) as c:
        c.cookies.set(SESSION_COOKIE, admin_token)
        assert c.post("/dev/phone/reply", data={"phone": PHONE, "text": "STOPP"}).status_code == 403
        assert no_objection_was_recorded(rt)
        data = {"phone": PHONE, "text": "STOPP", "csrf": form_token(c)}
        assert c.post("/dev/phone/reply", data=data).status_code == 303
    assert replies_received(rt) == 1


def test_p7_the_inbound_answer_does_not_tell_whether_a_number_has_open_invitations(
    client: TestClient, link_on_phone: str
) -> None:
    with_invitations = client.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "STOPP"})
    without = client.post("/api/v1/dev/inbound", json={"from": "+4741234599", "text": "STOPP"})
    assert with_invitations.json() == without.json() == {"outcome": "objection"}


def test_serve_gives_the_app_the_address_it_listens_on(
    rt: Runtime, link_on_phone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding 0.0.0.0 here would open a port to the network, so the socket is taken on loopback
    whatever the host, and uvicorn's server is replaced by one that keeps the app it was given,
    which is then asked through a client."""
    started: dict[str, object] = {}

    def loopback_socket(host: str, port: int, **_: object) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return sock

    def keep_app(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        started[server.config.host] = server.config.app
        for sock in sockets:
            sock.close()

    monkeypatch.setattr(cli, "_listen", loopback_socket)
    monkeypatch.setattr(uvicorn.Server, "run", keep_app)
    for host in ("0.0.0.0", "127.0.0.1"):
        result = CliRunner().invoke(cli.app, ["serve", "--host", host], env=env_for(rt))
        assert result.exit_code == 0, result.output
    for host, status in (("0.0.0.0", 404), ("127.0.0.1", 200)):
        c = TestClient(started[host], base_url=LOCAL)  # type: ignore[arg-type]
        assert c.get("/dev/phone").status_code == status  # no lifespan: no worker thread
