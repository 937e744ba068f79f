"""The servers the respondent benchmark compares, each run as ``python -m bench.respondent_servers``
in as many processes as asked, all listening on one loopback port (``SO_REUSEPORT``: the kernel
spreads the connections over the processes): the real tilfreds app (``bench.servers``), and a bare
Starlette app with the same two routes (the limit). Each process stops on SIGTERM or by itself
after ``--max-seconds``."""

from __future__ import annotations

import argparse
import os
import socket
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bench.servers import HOST, tilfreds_app

BARE_PAGE = "<!doctype html><title>Survey</title><form method=post><button>Send</button></form>"


def bare_app() -> Starlette:
    """The limit: a plain ``def`` GET that answers a fixed page and a POST that reads the form
    and hands it to a plain function before redirecting, so both pay the thread-pool hop and the
    form parsing tilfreds pays, and nothing else."""

    def show(request: Request) -> Response:
        return HTMLResponse(BARE_PAGE)

    def accept(code: str, form: dict[str, str]) -> str:
        return f"/s/{code}/thanks?lang={form.get('lang', 'nb')}"

    async def submit(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        target = await run_in_threadpool(accept, request.path_params["code"], form)
        return RedirectResponse(target, status_code=303)

    return Starlette(
        routes=[
            Route("/s/{code}", show, methods=["GET"]),
            Route("/s/{code}", submit, methods=["POST"]),
        ]
    )


def shared_socket(port: int) -> socket.socket:
    """A listening socket on ``port`` that other processes may bind too. Its protocol is named:
    asyncio sets TCP_NODELAY only on accepted sockets whose ``proto`` is TCP, and without it a
    page sent in two writes waits 40 ms for the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.respondent_servers")
    parser.add_argument("app", choices=["tilfreds", "bare"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    if args.app == "tilfreds" and not os.environ.get("TILFREDS_DATABASE_URL"):
        parser.error("the tilfreds server needs TILFREDS_DATABASE_URL")
    app = tilfreds_app() if args.app == "tilfreds" else bare_app()
    # info: the parent waits for each process's "Application startup complete"; no access log
    config = uvicorn.Config(
        app, log_level="info", access_log=False, lifespan="on", timeout_keep_alive=120
    )
    server = uvicorn.Server(config)

    def stop_eventually() -> None:
        server.should_exit = True

    watchdog = threading.Timer(args.max_seconds, stop_eventually)
    watchdog.daemon = True
    watchdog.start()
    try:
        server.run(sockets=[shared_socket(args.port)])
    finally:
        watchdog.cancel()


if __name__ == "__main__":
    main()
