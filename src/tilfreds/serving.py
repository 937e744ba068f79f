"""``tilfreds serve --workers N``: N web processes answering on one socket (PostgreSQL only).

One Python process checks a batch of interactions on one core; with N processes, N batches are
checked side by side. The parent binds the socket, checks the schema and keys once, then
uvicorn's supervisor starts the processes (each builds its own runtime and database pool from
the same settings), restarts one that dies and stops them all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import gc
import socket
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

if TYPE_CHECKING:
    import uvicorn

# a batch of interactions makes tens of thousands of young objects that live until it is written:
# with the default threshold (700) the collector ran over and over through them, a fifth of
# intake's CPU. The objects alive at start (modules, metadata) are frozen out of its way.
GC_THRESHOLDS = (50_000, 20, 20)


# uvicorn's compiled HTTP parser and event loop, named rather than left to "auto": the pure-Python
# h11 parser and asyncio's own loop cost a survey page about a quarter of its server CPU
# (docs/benchmarks-history.md, section 9), and a missing package should stop the server, not
# slow it.
HTTP = "httptools"
LOOP = "uvloop"


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """The ``uvicorn.Config`` every ``tilfreds serve`` process runs under."""
    import uvicorn

    return uvicorn.Config(
        app, http=HTTP, loop=LOOP, log_level="info", proxy_headers=True, **options
    )


def tune_gc() -> None:
    """Called once a process has loaded what it keeps for its whole life."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def app_in_worker(host: str, public_url: str) -> FastAPI:
    """The app of one web process: its own runtime and pool, no send worker (PostgreSQL runs
    ``tilfreds worker`` processes)."""
    from tilfreds.app import create_app
    from tilfreds.config import load_settings
    from tilfreds.runtime import build_runtime

    rt = build_runtime(load_settings())
    rt.settings.public_url = public_url
    app = create_app(rt, run_worker=False, listen_host=host)
    tune_gc()
    return app


def serve_workers(sock: socket.socket, *, host: str, public_url: str, workers: int) -> None:
    from uvicorn.supervisors import Multiprocess

    config = uvicorn_config(
        partial(app_in_worker, host, public_url),
        factory=True,
        host=host,
        port=sock.getsockname()[1],
        workers=workers,
    )
    Multiprocess(config, sockets=[sock]).run()
