"""Plumbing for the local emulators of HTTP SMS providers (Sinch, LINK Mobility): a real threaded
HTTP server, fault switches (an HTTP status for the next N sends, a slow answer), and callbacks
posted to the configured URLs from a background thread, retried with doubling delays as the
providers document (scaled down from seconds to tens of milliseconds)."""

from __future__ import annotations

import base64
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tilfreds.sms.transport import (
    CallbackRefused,
    CallbackRequest,
    Callbacks,
    InboundSms,
    Receipt,
)

Answer = tuple[int, dict[str, Any] | list[Any] | None]
PAYLOADS = Path(__file__).parent / "payloads"


@dataclass
class Callback:
    url: str
    payload: dict[str, Any]
    auth: tuple[str, str] | None
    attempts: list[int] = field(default_factory=list)  # HTTP status per attempt (0: no answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 refuses a burst of new connections


class HttpEmulator:
    """Subclasses implement ``route(method, path, headers, body) -> (status, json)``."""

    retry_delay = 0.05  # the first retry; doubled each time
    max_attempts = 6

    def __init__(self, port: int = 0) -> None:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answers in one segment, as a real server sends

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload = emulator.answer(self.command, self.path, headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = _Server(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._faults: list[int] = []
        self.delay = 0.0  # seconds before answering a send
        self._lock = threading.Lock()
        self._callbacks: queue.Queue[tuple[float, Callback] | None] = queue.Queue()
        self.delivered: list[Callback] = []  # every callback, whatever became of it
        self._pending = 0
        self._threads = [
            threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True),
            threading.Thread(target=self._deliver, daemon=True),
        ]

    def __enter__(self) -> HttpEmulator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._callbacks.put(None)

    # fault switches ---------------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` sends with ``status`` (429 throttled, 500, 503 …)."""
        with self._lock:
            self._faults.extend([status] * times)

    def _fault(self) -> int | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if self.delay:
            time.sleep(self.delay)
        fault = self._fault()
        if fault is not None:
            return fault, {"error": "injected fault"}
        return self.route(method, path, headers, body)

    def route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        raise NotImplementedError

    # callbacks --------------------------------------------------------------------------------
    def post_callback(
        self, url: str, payload: dict[str, Any], auth: tuple[str, str] | None
    ) -> None:
        with self._lock:
            self._pending += 1
        self._callbacks.put((time.monotonic(), Callback(url, payload, auth)))

    def _deliver(self) -> None:
        with httpx.Client(timeout=5) as client:
            while (item := self._callbacks.get()) is not None:
                due, cb = item
                if (wait := due - time.monotonic()) > 0:
                    time.sleep(wait)
                status = _post(client, cb)
                cb.attempts.append(status)
                # providers retry on 5xx, 429 and no answer; other 4xx are dropped
                if (status in (0, 429) or status >= 500) and len(cb.attempts) < self.max_attempts:
                    delay = self.retry_delay * 2 ** (len(cb.attempts) - 1)
                    self._callbacks.put((time.monotonic() + delay, cb))
                    continue
                with self._lock:
                    self.delivered.append(cb)
                    self._pending -= 1

    def wait_callbacks(self, timeout: float = 10.0) -> list[Callback]:
        """Block until every callback so far has succeeded or been given up."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if self._pending == 0:
                    return list(self.delivered)
            time.sleep(0.01)
        raise TimeoutError("callbacks still pending")


def _post(client: httpx.Client, cb: Callback) -> int:
    try:
        return client.post(cb.url, json=cb.payload, auth=cb.auth).status_code
    except httpx.HTTPError:
        return 0


def basic_auth(headers: dict[str, str]) -> tuple[str, str] | None:
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return None
    return user, password


def json_body(body: bytes) -> Any:
    """The decoded JSON, or ``None`` when the body is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def example(name: str) -> dict[str, Any]:
    """A documented example payload from ``payloads/``, without its ``_source`` note."""
    data = json.loads((PAYLOADS / name).read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def callback_request(
    tokens: Mapping[str, str],
    payload: object,
    *,
    kind: str = "receipt",
    token: str | None = None,
    auth: tuple[str, str] | None = None,
    body: bytes | None = None,
) -> CallbackRequest:
    """A call to our callback route as a provider makes it: the URL's token for ``kind`` (unless
    ``token`` forges one), Basic ``auth`` if given, ``payload`` as JSON (or a raw ``body``)."""
    headers = {}
    if auth:
        headers["authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    return CallbackRequest(
        kind=kind,
        token=tokens[kind] if token is None else token,
        method="POST",
        query={},
        headers=headers,
        body=json.dumps(payload).encode() if body is None else body,
    )


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` (tilfreds's own) on a real uvicorn server on a free local port; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class CallbackRoute:
    """Stands in for the web server's ``/sms/{transport}/{kind}/{token}`` route: hands each call
    to the transport's ``parse_callback`` and keeps what it reports; answers 200, or the status
    of the refusal."""

    def __init__(self) -> None:
        self.transport: Callbacks | None = None  # set once built with this route's base_url
        self.events: list[Receipt | InboundSms] = []
        self.refused: list[int] = []
        route = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answers in one segment, as a real server sends

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                _, _, _, kind, token = ([*self.path.split("?")[0].split("/"), "", ""])[:5]
                request = CallbackRequest(
                    kind=kind,
                    token=token,
                    method="POST",
                    query={},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                assert route.transport is not None
                try:
                    route.events.extend(route.transport.parse_callback(request))
                    status = 200
                except CallbackRefused as refusal:
                    route.refused.append(refusal.status)
                    status = refusal.status
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> CallbackRoute:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
