"""Statements sent to PostgreSQL together, in psycopg's pipeline mode, on a session's connection.

Each statement the usual way costs a round trip: the thread sends it, releases the GIL, waits for
the answer and then waits again for the GIL, which another thread may hold for up to the
interpreter's switch interval. The send worker's transaction a window (see ``tilfreds.worker``)
is its critical path and was mostly such waits (docs/benchmarks-history.md §6), so its statements
go out together: psycopg sends them at once and reads the answers in one sync; a transaction
opened and committed here has its BEGIN and COMMIT in the same sync (a BEGIN psycopg opens itself
goes first, with a sync of its own, as libpq's trace of the intake shows). (Alone, a round trip
on this machine's loopback costs far less than that wait: docs/benchmarks-history.md §6.)
SQLAlchemy has no pipeline mode of its own (its results read the cursor's description right
after each execute, which a pipeline only has after the sync), so the statements are compiled by
SQLAlchemy once and run on the driver's cursors.

An error in any of them raises at the sync, as the SQLAlchemy error the same statement would have
raised (a ``DataError``, an ``OperationalError``...), and the caller's unit of work rolls the
whole transaction back, as it would after the same error outside a pipeline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

IDLE, INERROR = TransactionStatus.IDLE, TransactionStatus.INERROR
# execution option: plan this statement afresh each time it runs here. psycopg prepares a
# statement run five times, and PostgreSQL may then keep one plan for it, made with the sizes of
# the tables then: a plan made while a table was empty can read all of it for each row looked up
REPLAN = "tilfreds_replan"


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
    session: Session, steps: Sequence[tuple[Any, Mapping[str, Any]]], *, commit: bool = False
) -> list[list[tuple[Any, ...]]]:
    """Run ``steps`` (statement, parameters) in order in the session's transaction on
    PostgreSQL, sent together and answered in one sync; the rows each returned (none for a
    statement without RETURNING). A single statement of a transaction already open runs on the
    driver without pipeline mode, whose entry and extra sync cost more than it saves there
    (BEGIN and one SELECT: 131-137 us wall against 207-208 us in pipeline mode).

    ``commit``: the transaction ends with them, its COMMIT answered in the same sync (one wait
    fewer; psycopg's own ``commit()`` would sync once more). So it must have nothing left for
    the session's commit to write (ORM changes, audit entries: refused), and the caller writes
    nothing more in it. A failing statement aborts the rest of the pipeline, the COMMIT with
    it, and the transaction is rolled back whole as without ``commit``."""
    if commit and (session.new or session.dirty or session.deleted or _audit_due(session)):
        raise RuntimeError("run_together(commit=True) in a transaction with writes still due")
    connection = session.connection()
    driver, dialect = connection.connection.driver_connection, connection.dialect
    assert driver is not None
    cursors = []
    # a transaction this call opens and commits: its BEGIN queued here too. psycopg, left to
    # open it, sends BEGIN and waits for its answer before the statements (a wait of its own);
    # in autocommit it leaves BEGIN to us
    whole = commit and not driver.autocommit and driver.info.transaction_status == IDLE
    if whole:
        driver.autocommit = True
    try:
        with driver.pipeline() if len(steps) > 1 or commit else contextlib.nullcontext():
            if whole:
                driver.cursor().execute(b"BEGIN")
            for statement, given in steps:
                done = compiled(statement, dialect)
                cursor = driver.cursor()
                replan = statement.get_execution_options().get(REPLAN)
                cursor.execute(done.sql, done.params(given), prepare=False if replan else None)
                cursors.append(cursor)
            if commit:  # behind the statements: skipped when one of them fails
                driver.cursor().execute(b"COMMIT")
    except psycopg.Error as exc:
        if whole and driver.info.transaction_status == INERROR:
            with contextlib.suppress(psycopg.Error):  # the statement's error is the one to see
                driver.rollback()  # in autocommit psycopg would not: the transaction is ours
        # wrapped as SQLAlchemy would; which statement failed is not known at the sync, so none
        # is named (and, as always, no parameters are shown)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, hide_parameters=True, dialect=dialect
        ) from exc
    finally:
        if whole and driver.info.transaction_status == IDLE:
            driver.autocommit = False
    if commit:  # SQLAlchemy's bookkeeping: psycopg finds the transaction over, and sends nothing
        session.commit()
    # whether a statement returned rows, from its result's status: ``cursor.description`` would
    # build a Column object for every column just to be tested for emptiness
    return [cursor.fetchall() if _has_rows(cursor) else [] for cursor in cursors]


def _has_rows(cursor: psycopg.Cursor[Any]) -> bool:
    result = cursor.pgresult
    return result is not None and result.status == psycopg.pq.ExecStatus.TUPLES_OK


def _audit_due(session: Session) -> bool:
    # imported here: the audit's models import tilfreds.db, which imports this module
    from tilfreds.audit import service as audit

    return audit.pending(session)
