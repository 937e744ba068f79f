"""Statements sent to PostgreSQL together, in psycopg's pipeline mode, on a session's connection.

Each statement the usual way costs a round trip: the thread sends it, releases the GIL, waits for
the answer and then waits again for the GIL, which another thread may hold for up to the
interpreter's switch interval. The send worker's transaction a window (see ``tilfreds.worker``)
is its critical path and was mostly such waits (docs/benchmarks.md §6), so its statements go out
together: psycopg sends them at once and reads the answers in one sync. (A BEGIN they open the
transaction with is not among them: psycopg sends it first, with a sync of its own, and waits for
its answer, as libpq's trace of the intake shows. Alone, a round trip on this machine's loopback
costs far less than that wait: docs/benchmarks.md §6.) SQLAlchemy has no pipeline mode of its
own (its results read the cursor's description right after each execute, which a pipeline only
has after the sync), so the statements are compiled by SQLAlchemy once and run on the driver's
cursors.

An error in any of them raises at the sync, as the SQLAlchemy error the same statement would have
raised (a ``DataError``, an ``OperationalError``...), and the caller's unit of work rolls the
whole transaction back, as it would after the same error outside a pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiled: SQLCompiler

    def params(self, given: Mapping[str, Any]) -> MutableMapping[str, Any]:
        """The statement's parameters as SQLAlchemy would hand them to psycopg: the given
        values with the statement's own literals, through each type's bind processor."""
        params = self.compiled.construct_params(dict(given))
        # SQLAlchemy keeps the processors private; they turn enums into their database values
        for name, process in self.compiled._bind_processors.items():
            if name in params and callable(process):
                params[name] = process(params[name])
        return params


@cache
def compiled(statement: Any, dialect: Dialect) -> _Compiled:
    """``statement`` as SQLAlchemy compiles it for ``dialect``: its SQL and, by ``params``, the
    parameters to hand the driver. Once per statement and engine (the statements run this way are
    built once, see ``jobs.statements``)."""
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    return _Compiled(compiled.string, compiled)


def run_together(
    session: Session, steps: Sequence[tuple[Any, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Run ``steps`` (statement, parameters) in order in the session's transaction on
    PostgreSQL, sent together and answered in one sync; the rows each returned (none for a
    statement without RETURNING). A single statement runs on the driver without pipeline mode,
    whose entry and extra sync cost more than it saves there (BEGIN and one SELECT: 131-137 us
    wall against 207-208 us in pipeline mode)."""
    connection = session.connection()
    driver, dialect = connection.connection.driver_connection, connection.dialect
    assert driver is not None
    cursors = []
    try:
        with driver.pipeline() if len(steps) > 1 else nullcontext():
            for statement, given in steps:
                done = compiled(statement, dialect)
                cursor = driver.cursor()
                cursor.execute(done.sql, done.params(given))
                cursors.append(cursor)
    except psycopg.Error as exc:
        # wrapped as SQLAlchemy would; which statement failed is not known at the sync, so none
        # is named (and, as always, no parameters are shown)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, hide_parameters=True, dialect=dialect
        ) from exc
    # whether a statement returned rows, from its result's status: ``cursor.description`` would
    # build a Column object for every column just to be tested for emptiness
    return [cursor.fetchall() if _has_rows(cursor) else [] for cursor in cursors]


def _has_rows(cursor: psycopg.Cursor[Any]) -> bool:
    result = cursor.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK
