"""Counts what one engine sends to its database, from SQLAlchemy's events, so a benchmark can
report statements and round trips per request or per message. Measures no time itself.

A round trip is one wait for the server: each statement (an ``executemany`` is one, since psycopg
pipelines it), each BEGIN, COMMIT and ROLLBACK (psycopg sends BEGIN on its own before the first
statement of a transaction; on SQLite our ``begin`` hook sends it as a statement, so it is counted
there once, as a statement), and the ``SELECT 1`` of ``pool_pre_ping`` at each pool checkout. A
connection in autocommit (``Database.one_read``) sends no BEGIN or ROLLBACK, so its transaction
events are not counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, event


class RoundTrips:
    """Attach to an engine, run the work, read ``counts`` (or ``per(n)``), detach."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: Counter[str] = Counter()
        self._listeners: list[tuple[Any, str, Any]] = []

    def _on(self, target: Any, name: str, fn: Any) -> None:
        event.listen(target, name, fn)
        self._listeners.append((target, name, fn))

    def attach(self) -> RoundTrips:
        postgres = self.engine.dialect.name == "postgresql"
        pre_ping = bool(getattr(self.engine.pool, "_pre_ping", False))

        def statement(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, many: bool) -> None:
            word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
            self.counts["statements"] += 1
            self.counts[f"statement:{word}"] += 1
            if many:
                self.counts["executemany"] += 1

        def sent(conn: Any) -> bool:  # False: the driver sends nothing for it (autocommit)
            return bool(conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT")

        def begin(conn: Any) -> None:
            if postgres and sent(conn):  # SQLite's BEGIN is a statement (counted above)
                self.counts["begin"] += 1

        def commit(conn: Any) -> None:
            if sent(conn):
                self.counts["commit"] += 1

        def rollback(conn: Any) -> None:
            if sent(conn):
                self.counts["rollback"] += 1

        def checkout(_dbapi: Any, _record: Any, _proxy: Any) -> None:
            self.counts["checkout"] += 1
            if pre_ping:
                self.counts["ping"] += 1

        self._on(self.engine, "before_cursor_execute", statement)
        self._on(self.engine, "begin", begin)
        self._on(self.engine, "commit", commit)
        self._on(self.engine, "rollback", rollback)
        self._on(self.engine.pool, "checkout", checkout)
        return self

    def detach(self) -> None:
        for target, name, fn in self._listeners:
            event.remove(target, name, fn)
        self._listeners.clear()

    def reset(self) -> None:
        self.counts.clear()

    @property
    def round_trips(self) -> int:
        c = self.counts
        return c["statements"] + c["begin"] + c["commit"] + c["rollback"] + c["ping"]

    def summary(self) -> dict[str, int]:
        """The counts as plain numbers, ``round_trips`` included, for a report or a JSON answer."""
        return {**dict(self.counts), "round_trips": self.round_trips}
