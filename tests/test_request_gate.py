"""The body size limit and the token check happen before any route reads the body, on the
TestClient and on a real uvicorn server fed by a raw socket."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import interaction_payload
from tilfreds.api.routes import router as api_router
from tilfreds.app import create_app
from tilfreds.errors import Unauthorized
from tilfreds.runtime import Runtime

LIMIT = 64 * 1024


def small_limit(rt: Runtime) -> Runtime:
    return dataclasses.replace(
        rt, settings=rt.settings.model_copy(update={"max_body_bytes": LIMIT})
    )


class Body:
    """A streamed request body that records how much of it the server took."""

    def __init__(self, total: int, chunk: int = 16 * 1024) -> None:
        self.total, self.chunk, self.taken = total, chunk, 0

    def __iter__(self) -> Iterator[bytes]:
        while self.taken < self.total:
            self.taken += self.chunk
            yield b" " * self.chunk


@pytest.fixture
def limited(rt: Runtime, admin_token: str) -> Iterator[TestClient]:
    with TestClient(create_app(small_limit(rt)), follow_redirects=False) as c:
        c.headers["Authorization"] = f"Bearer {admin_token}"
        yield c


def test_a_body_without_a_token_is_refused_before_it_is_read(limited: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer tf_wrong"}):
        body = Body(LIMIT // 2)
        response = limited.post(
            "/api/v1/interactions",
            content=iter(body),
            headers={**headers, "content-type": "application/json"},
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert body.taken == 0


def test_a_declared_length_over_the_limit_is_413_at_once(limited: TestClient) -> None:
    for path in ("/api/v1/interactions", "/api/v1/dev/inbound"):
        response = limited.post(path, content=b"{" + b" " * LIMIT + b"}")
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert str(LIMIT) in response.json()["error"]["message"]
    page = limited.post("/login", content=b"token=" + b"x" * LIMIT)
    assert page.status_code == 413 and page.headers["X-Frame-Options"] == "DENY"


def test_a_streamed_body_over_the_limit_is_413_with_a_token(limited: TestClient) -> None:
    body = Body(4 * LIMIT)
    response = limited.post(
        "/api/v1/interactions", content=iter(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_streamed_form_over_the_limit_is_413_on_a_page(limited: TestClient) -> None:
    body = Body(4 * LIMIT)
    response = limited.post(
        "/dev/phone/reply",
        content=iter(body),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413 and "<html" in response.text


def test_a_body_within_the_limit_is_received(limited: TestClient) -> None:
    raw = json.dumps(interaction_payload()).encode()
    headers = {"content-type": "application/json"}
    assert limited.post("/api/v1/interactions", content=raw, headers=headers).status_code == 201


def test_the_token_is_looked_up_once_and_off_the_event_loop(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[bool] = []
    one_row = rt.db.one_row  # where the token is read (on PostgreSQL past SQLAlchemy's events)

    def looked_up(statement: Any, params: Any) -> Any:
        if "api_tokens" in str(statement):
            try:
                asyncio.get_running_loop()
                lookups.append(True)
            except RuntimeError:
                lookups.append(False)
        return one_row(statement, params)

    monkeypatch.setattr(rt.db, "one_row", looked_up)
    assert client.post("/api/v1/interactions", json=interaction_payload()).status_code == 201
    assert client.get("/api/v1/surveys").status_code == 200
    assert lookups == [False, False]  # one lookup per request, none on the loop's thread


def test_token_routes_refuse_when_no_gate_has_authenticated(rt: Runtime, admin_token: str) -> None:
    bare = FastAPI()  # the API's routes without the app's middleware
    bare.state.runtime = rt
    bare.include_router(api_router)
    with TestClient(bare) as c, pytest.raises(Unauthorized):
        c.get("/api/v1/surveys", headers={"Authorization": f"Bearer {admin_token}"})


def test_the_dev_phone_api_keeps_its_own_access(rt: Runtime) -> None:
    """The bearer gate leaves /api/v1/dev to the dev phone's own rule: open on a loopback bind."""
    from tilfreds.app import create_app

    local = TestClient(create_app(rt, listen_host="127.0.0.1"), base_url="http://127.0.0.1")
    response = local.post("/api/v1/dev/inbound", json={"from": "+4741234567", "text": "hei"})
    assert response.status_code == 200, response.text


# --- a real server ---------------------------------------------------------------------------


class Consumed:
    """Outermost ASGI layer: counts the body bytes the application took from the server."""

    def __init__(self, app: Any) -> None:
        self.app, self.bytes = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting() -> Any:
            message = await receive()
            self.bytes += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


@pytest.fixture
def server(rt: Runtime) -> Iterator[tuple[int, Consumed]]:
    app = Consumed(create_app(small_limit(rt)))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a fixed port, test after test
    sock.bind(("127.0.0.1", int(os.environ.get("TILFREDS_TEST_HTTP_PORT", "0"))))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield sock.getsockname()[1], app
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


def stream(port: int, head: dict[str, str], total: int) -> tuple[int, dict[str, Any], int]:
    """POST a chunked body of ``total`` bytes, stopping when the answer comes; returns the
    status, the JSON answer and how many bytes were sent."""
    conn = socket.create_connection(("127.0.0.1", port))
    lines = [f"{k}: {v}" for k, v in {"Host": "x", **head, "Transfer-Encoding": "chunked"}.items()]
    conn.sendall(
        ("POST /api/v1/interactions HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode()
    )
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    conn.setblocking(False)
    sent, pending = 0, b""
    while sent < total:
        readable, writable, _ = select.select([conn], [conn], [], 10)
        if readable:
            break
        assert writable, "the server neither answered nor took more"
        pending = pending or chunk
        n = conn.send(pending)
        sent, pending = sent + n, pending[n:]
    conn.setblocking(True)
    conn.settimeout(30)
    if sent >= total:  # all sent unanswered: end the body, so the answer comes now
        conn.sendall(b"0\r\n\r\n")
    raw = b""
    while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
        data = conn.recv(65536)
        assert data, raw
        raw += data
    conn.close()
    head_text, _, body = raw.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), json.loads(body), sent


def test_on_a_real_server_a_large_body_without_a_token_is_not_read(
    server: tuple[int, Consumed],
) -> None:
    port, app = server
    status, body, sent = stream(port, {"Content-Type": "application/json"}, 256 * 1024 * 1024)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert app.bytes == 0 and sent < 256 * 1024 * 1024


def test_on_a_real_server_an_oversize_body_with_a_token_is_cut_off(
    server: tuple[int, Consumed], admin_token: str
) -> None:
    port, app = server
    head = {"Content-Type": "application/json", "Authorization": f"Bearer {admin_token}"}
    status, body, sent = stream(port, head, 256 * 1024 * 1024)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert LIMIT < app.bytes < LIMIT + 512 * 1024 and sent < 256 * 1024 * 1024


def test_on_a_real_server_a_declared_gigabyte_is_refused_unread(
    server: tuple[int, Consumed],
) -> None:
    port, app = server
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(
        b"POST /api/v1/interactions HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n{"
    )
    answer = conn.recv(65536)
    conn.close()
    assert answer.startswith(b"HTTP/1.1 413") and app.bytes == 0
