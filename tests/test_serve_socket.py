"""`tilfreds serve` listens on a socket it opens itself; connections accepted on it must send
at once (TCP_NODELAY), or every page uvicorn writes in two pieces (head, then body) waits for
the client's delayed ACK: 40 ms on Linux, measured by bench/respondent."""

from __future__ import annotations

import asyncio
import socket

import uvloop
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tilfreds.cli import _listen
from tilfreds.serving import uvicorn_config


def test_accepted_connections_do_not_wait_for_delayed_acks() -> None:
    sock = _listen("127.0.0.1", 0)
    sock.listen()

    async def nodelay_of_accepted() -> int:
        accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer)

        server = await asyncio.start_server(on_connect, sock=sock)
        async with server:
            _, client = await asyncio.open_connection(*sock.getsockname())
            writer = await asyncio.wait_for(accepted, timeout=10)
            value = int(
                writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
            client.close()
            writer.close()
            return value

    assert asyncio.run(nodelay_of_accepted()) != 0


def test_served_with_the_compiled_http_parser_and_event_loop() -> None:
    """uvicorn's pure-Python parser and asyncio's own loop cost a survey page a quarter of its
    server CPU; a missing package must stop `tilfreds serve`, not quietly slow it down."""

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        pass

    config = uvicorn_config(app)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    assert config.get_loop_factory() is uvloop.new_event_loop
