"""The two HTTP servers the intake benchmark compares, each run as ``python -m bench.servers``
under one uvicorn setup: the real tilfreds app, and a bare FastAPI ``POST /echo`` (the limit).
Loopback only; each stops on SIGTERM or by itself after ``--max-seconds``. The tilfreds server
also answers ``/__bench/count`` (start counting round trips) and ``/__bench/counts`` (read them)."""

from __future__ import annotations

import argparse
import base64
import os
import threading
from typing import Any

import uvicorn
from fastapi import FastAPI

HOST = "127.0.0.1"


def echo_app() -> FastAPI:
    """The limit: FastAPI parses the same JSON body into a dict and answers ``{}``. A plain
    ``def`` route, like tilfreds's, so both pay for the same thread-pool hop."""
    app = FastAPI()

    @app.post("/echo")
    def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {}

    return app


def tilfreds_app() -> FastAPI:
    """The real app on the database in ``TILFREDS_DATABASE_URL`` (already migrated by the parent),
    with the null transport and no in-process worker, so only intake is measured."""
    from bench.common import NullTransport
    from bench.roundtrips import RoundTrips
    from tilfreds.app import create_app
    from tilfreds.audit import service as audit
    from tilfreds.clock import SystemClock
    from tilfreds.config import Settings
    from tilfreds.crypto import Keys
    from tilfreds.db import Database
    from tilfreds.runtime import Runtime

    settings = Settings()  # TILFREDS_* from the parent
    keys = Keys.from_master(base64.urlsafe_b64decode(settings.secret_key))
    db = Database(settings.resolved_database_url, session_info=audit.session_info(keys))
    rt = Runtime(
        settings=settings, db=db, keys=keys, clock=SystemClock(), transport=NullTransport()
    )
    app = create_app(rt, run_worker=False)
    counter = RoundTrips(db.engine)

    # counting is off while the timed requests run; the parent turns it on for a few more after
    @app.post("/__bench/count", include_in_schema=False)
    def start_counting() -> dict[str, Any]:
        counter.detach()
        counter.reset()
        counter.attach()
        return {}

    @app.get("/__bench/counts", include_in_schema=False)
    def counts() -> dict[str, int]:
        counter.detach()
        return counter.summary()

    return app


def serve(app: FastAPI, *, port: int, max_seconds: float) -> None:
    config = uvicorn.Config(
        app, host=HOST, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)

    def stop_eventually() -> None:
        server.should_exit = True

    watchdog = threading.Timer(max_seconds, stop_eventually)
    watchdog.daemon = True
    watchdog.start()
    try:
        server.run()
    finally:
        watchdog.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("app", choices=["tilfreds", "echo"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    if args.app == "tilfreds" and not os.environ.get("TILFREDS_DATABASE_URL"):
        parser.error("the tilfreds server needs TILFREDS_DATABASE_URL")
    app = tilfreds_app() if args.app == "tilfreds" else echo_app()
    serve(app, port=args.port, max_seconds=args.max_seconds)


if __name__ == "__main__":
    main()
