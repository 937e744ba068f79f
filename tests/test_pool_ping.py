"""A pooled PostgreSQL connection that the server dropped is replaced at checkout, unseen by the
caller, without a ``SELECT 1`` before every checkout (db.py's ``_ping_when_stale``)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text

from tilfreds.db import Database


def _backend_pid(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_the_server_terminated_is_replaced_at_checkout(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    db = Database(database.url, pool_size=1)
    try:
        victim = _backend_pid(db)  # now idle in the pool
        with database.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
            admin.commit()
        time.sleep(0.2)  # the server's goodbye reaches the pooled socket
        with db.unit_of_work() as session:  # no error: a fresh connection was made
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
    finally:
        db.dispose()


def test_a_live_pooled_connection_is_checked_out_without_a_ping(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("SQLite pools no server connections")
    db = Database(database.url, pool_size=1)
    sent: list[str] = []
    try:
        _backend_pid(db)
        event.listen(db.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        pings = 0
        original = db.engine.dialect.do_ping

        def counting_ping(conn: object) -> bool:
            nonlocal pings
            pings += 1
            return original(conn)

        db.engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
        for _ in range(5):
            with db.unit_of_work() as session:
                session.execute(text("SELECT 1"))
        assert pings == 0 and len(sent) == 5
    finally:
        db.dispose()


def test_a_connection_idle_for_long_is_pinged_before_use(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A network that dropped the connection silently gives no sign on the socket: after a long
    idle spell the connection is pinged anyway."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite pools no server connections")
    monkeypatch.setattr("tilfreds.db.PING_AFTER_IDLE_SECONDS", 0.0)
    db = Database(database.url, pool_size=1)
    pings = 0
    try:
        _backend_pid(db)
        original = db.engine.dialect.do_ping

        def counting_ping(conn: object) -> bool:
            nonlocal pings
            pings += 1
            return original(conn)

        db.engine.dialect.do_ping = counting_ping  # type: ignore[method-assign]
        with db.unit_of_work() as session:
            session.execute(text("SELECT 1"))
        assert pings == 1
    finally:
        db.dispose()
