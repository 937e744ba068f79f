"""Counts what one engine sends to its database, so a benchmark can report statements and round
trips per request or per message. Measures no time itself.

On PostgreSQL the count comes from libpq's own trace of every connection checked out while
attached: a round trip is one wait for the server, i.e. one ReadyForQuery it sends back (a
statement sent the usual way, psycopg's BEGIN and COMMIT, a ping, or a whole pipeline up to its
Sync), and a statement is each Execute (extended protocol) or Query (simple protocol) the client
sends. So statements sent together in a pipeline and the bearer token's autocommit read are
counted as what they are, which SQLAlchemy's events cannot see.

On SQLite (no server, no wire) the count comes from SQLAlchemy's events: each statement (our
``begin`` hook sends BEGIN as one), COMMIT and ROLLBACK.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

_CONTROL = {"BEGIN": "begin", "COMMIT": "commit", "ROLLBACK": "rollback"}
# the fields of libpq's trace lines read here (a statement's text may go on over more lines)
_PARSE = re.compile(r'\s*"([^"]*)"\s+"\s*([^\s"]*)')  # statement name, first word of its text
_BIND = re.compile(r'\s*"[^"]*"\s+"([^"]*)"')  # (portal,) statement name
_QUERY = re.compile(r'\s*"\s*([^\s";]*)')  # first word of its text


class RoundTrips:
    """Attach to an engine, run the work, read ``summary()``, detach."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts: Counter[str] = Counter()
        self._listeners: list[tuple[Any, str, Any]] = []
        self._postgres = engine.dialect.name == "postgresql"
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._traced: dict[int, Any] = {}  # id of a DBAPI connection -> that connection
        self._lock = threading.Lock()

    def _on(self, target: Any, name: str, fn: Any) -> None:
        event.listen(target, name, fn)
        self._listeners.append((target, name, fn))

    def attach(self) -> RoundTrips:
        if self._postgres:
            self._dir = tempfile.TemporaryDirectory(prefix="tilfreds-trips-")
            self._on(self.engine, "checkout", self._trace)
        else:
            self._on(self.engine, "before_cursor_execute", self._statement)
            self._on(self.engine, "commit", lambda _conn: self._count("commit"))
            self._on(self.engine, "rollback", lambda _conn: self._count("rollback"))
        return self

    def _trace(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        """Trace a connection from its first checkout while attached until ``detach``."""
        with self._lock:
            if id(dbapi_conn) in self._traced or self._dir is None:
                return
            path = Path(self._dir.name) / f"{len(self._traced)}.trace"
            # libpq writes through a stream of its own on this descriptor, which it never closes:
            # one left open per connection traced (a counting run checks out a handful)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            dbapi_conn.pgconn.trace(fd)
            self._traced[id(dbapi_conn)] = dbapi_conn

    def _statement(self, _c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        self._count("statements")
        self._count(f"statement:{word}")

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def detach(self) -> None:
        for target, name, fn in self._listeners:
            event.remove(target, name, fn)
        self._listeners.clear()
        with self._lock:
            for conn in self._traced.values():
                if not conn.closed:
                    conn.pgconn.untrace()  # flushes its stream
            self._traced.clear()

    def reset(self) -> None:
        self.counts.clear()

    def summary(self) -> dict[str, int]:
        """The counts as plain numbers, ``round_trips`` included, for a report or a JSON
        answer (after ``detach`` on PostgreSQL, whose traces it reads)."""
        counts = Counter(self.counts)
        if self._dir is not None:
            for path in sorted(Path(self._dir.name).glob("*.trace")):
                counts.update(_read_trace(path.read_text(errors="replace")))
            self._dir.cleanup()
            self._dir = None
        else:
            counts["round_trips"] = counts["statements"] + counts["commit"] + counts["rollback"]
        return dict(counts)


def _read_trace(text: str) -> Counter[str]:
    """Round trips and statements (by their first word) in one connection's libpq trace."""
    counts: Counter[str] = Counter()
    prepared: dict[str, str] = {}  # statement name -> its first word
    bound = "?"
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 4:  # the rest of a statement's text, wrapped
            continue
        direction, kind, rest = fields[1], fields[3], "\t".join(fields[4:])
        if direction == "B":
            counts["round_trips"] += kind == "ReadyForQuery"
        elif kind == "Parse" and (parsed := _PARSE.match(rest)):
            prepared[parsed[1]] = parsed[2].upper() or "?"
        elif kind == "Bind" and (binding := _BIND.match(rest)):
            bound = prepared.get(binding[1], "?")
        elif kind == "Execute":
            _statement(counts, bound)
        elif kind == "Query" and (query := _QUERY.match(rest)):
            _statement(counts, query[1].upper() or "?")
    return counts


def _statement(counts: Counter[str], word: str) -> None:
    if word in _CONTROL:
        counts[_CONTROL[word]] += 1
    else:
        counts["statements"] += 1
        counts[f"statement:{word}"] += 1
