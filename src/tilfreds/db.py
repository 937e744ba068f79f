"""Engine, declarative base and the unit of work: the one place that commits.

SQLite is the embedded default (foreign keys on, WAL, every transaction BEGIN IMMEDIATE so that
read-then-write never fails on a stale snapshot); PostgreSQL is the scale-out. Only portable types.
"""

from __future__ import annotations

import os
import select as io
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    any_,
    bindparam,
    create_engine,
    event,
    exc,
    make_url,
)
from sqlalchemy import cast as cast_
from sqlalchemy import func as sqlfunc
from sqlalchemy import select as select_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from tilfreds.pipelined import compiled

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READ_ONLY = "tilfreds_read_only"  # execution option: this transaction will not write


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class IntArray(TypeDecorator[list[int]]):
    """A list of integers (PostgreSQL): bound as one text in the array literal's form and cast to
    ``integer[]`` by the statement. psycopg dumps a list element by element in Python; a text it
    hands over at once (the send worker binds ten such lists a batch)."""

    impl = Text
    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return cast_(bindvalue, ARRAY(Integer))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return "{" + ",".join([str(int(n)) for n in value]) + "}"  # int(): nothing else gets in


class TextArray(TypeDecorator[list[str | None]]):
    """A list of texts (or None) bound as ``IntArray`` binds integers: one text in the array
    literal's form, cast to ``varchar[]`` by the statement. Each element is quoted; a quote or
    a backslash in one is escaped (checked once for the whole list: provider ids have none)."""

    impl = Text
    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return cast_(bindvalue, ARRAY(String))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        texts = [str(v) for v in value if v is not None]
        if len(texts) < len(value):  # NULL unquoted; a quoted "NULL" is the text
            return "{" + ",".join("NULL" if v is None else _quoted([str(v)]) for v in value) + "}"
        return "{" + _quoted(texts) + "}" if texts else "{}"


def _quoted(texts: list[str]) -> str:
    """Texts as the quoted, comma-separated elements of an array literal."""
    joined = "".join(texts)
    if '"' in joined or "\\" in joined:
        texts = [t.replace("\\", "\\\\").replace('"', '\\"') for t in texts]
    return '"' + '","'.join(texts) + '"'


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it as a class var


def insert_new(session: Session, model: type[Base], *conflict_columns: str) -> Any:
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` for the session's database (both dialects
    speak it): a duplicate from a concurrent transaction is skipped instead of failing ours."""
    dialect = session.get_bind().dialect.name
    table = cast(Table, model.__table__)
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return statement.on_conflict_do_nothing(index_elements=list(conflict_columns))


def ids_in(postgres: bool, column: Any, name: str = "ids") -> ColumnElement[bool]:
    """``column IN (:name)``, the list bound when executed; on PostgreSQL ``column = ANY(:name)``:
    one array parameter whatever the count, so one statement text, which psycopg parses once and
    the server keeps prepared."""
    if postgres:
        return cast(ColumnElement[bool], column == any_(bindparam(name, type_=IntArray())))
    return cast(ColumnElement[bool], column.in_(bindparam(name, expanding=True)))


def ids_in_once(postgres: bool, column: Any, name: str = "ids") -> ColumnElement[bool]:
    """``ids_in`` for a test made on every row a statement touches (a ``CASE`` in what it
    sets): on PostgreSQL the bound text is cast to an array once, by a sub-select (an InitPlan).
    Cast in the expression itself it is cast again on every row and at every use, since
    ``array_in`` is only stable and the planner does not fold it: for 500 rows and an array of
    100, milliseconds a statement."""
    if not postgres:
        return ids_in(postgres, column, name)
    once = select_(bindparam(name, type_=IntArray())).scalar_subquery()
    return cast(ColumnElement[bool], column == any_(cast_(once, ARRAY(Integer))))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # readers take no lock at all under WAL; writers take the write lock up front
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _create_private(sqlite_url: str) -> None:
    """Create the database file readable by its owner only, before SQLite creates it with the
    umask's mode: SQLite gives the WAL and SHM files the database file's mode."""
    path = make_url(sqlite_url).database
    if path and path != ":memory:" and not path.startswith("file:"):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


PING_AFTER_IDLE_SECONDS = 10.0
_CHECKED_IN = "tilfreds_checked_in"  # pool record info: when the connection was last returned


def _ping_when_stale(engine: Engine) -> None:
    """Replace a dead pooled connection at checkout, as ``pool_pre_ping`` does, without its
    ``SELECT 1`` round trip on every checkout: ping only a connection that sat idle a while (a
    silent network drop) or whose socket has something to read while idle (a restarted or
    terminated server says so and closes it). A failed ping makes the pool connect afresh."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_CHECKED_IN)
        if returned is None:  # connected just now
            return
        try:
            idle = time.monotonic() - returned > PING_AFTER_IDLE_SECONDS
            if idle or io.select([dbapi_conn], [], [], 0)[0]:
                engine.dialect.do_ping(dbapi_conn)
        except Exception as error:
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    if url.startswith("sqlite"):
        _create_private(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=max(1, pool_size // 4))
    _ping_when_stale(engine)
    return engine


class Database:
    """An engine and its session factory. Built by entrypoints from settings, never global."""

    def __init__(
        self, url: str, *, session_info: Mapping[str, object] | None = None, pool_size: int = 5
    ) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        # what every session carries for the services, e.g. the keys that seal the audit chain
        self.session_info = dict(session_info or {})
        self._sessions = sessionmaker(
            self.engine, expire_on_commit=False, info=dict(self.session_info)
        )

    def set_session_info(self, info: Mapping[str, object]) -> None:
        """Give every session made from now on ``info`` too (the keys exist only once the
        database has been asked which keys it was sealed with)."""
        self.session_info.update(info)
        self._sessions.configure(info=dict(self.session_info))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: committed when the block ends normally, rolled back otherwise."""
        session = self._sessions()
        try:
            session.begin()
            yield session
            # Session.commit() releases any savepoint still open before the outermost commit, so
            # before_commit hooks (the audit append) see that commit last, with none open
            session.commit()
        finally:
            session.close()  # rolls back whatever was not committed

    @contextmanager
    def read_only(self) -> Iterator[Session]:
        """A session whose work is never committed (reports, pages that only read); on SQLite it
        takes no write lock, so it never waits for the worker. Closing it rolls back without
        expiring what was loaded, so results stay readable afterwards."""
        session = self._sessions()
        try:
            session.connection(execution_options={READ_ONLY: True})
            yield session
        finally:
            session.close()

    @contextmanager
    def one_read(self) -> Iterator[Session]:
        """A session for one read-only statement (the bearer-token check of every API request):
        on PostgreSQL in autocommit, so the statement is its own transaction and costs one round
        trip instead of three (BEGIN, the statement, ROLLBACK). Elsewhere ``read_only``."""
        if self.dialect != "postgresql":
            with self.read_only() as session:
                yield session
            return
        session = self._sessions()
        try:
            session.connection(execution_options={READ_ONLY: True, "isolation_level": "AUTOCOMMIT"})
            yield session
        finally:
            session.close()

    def one_row(self, statement: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of one read-only statement (the bearer-token check of every API
        request). On PostgreSQL in autocommit on the pooled connection's driver, the statement
        compiled by SQLAlchemy once: one round trip, and none of a session's or of SQLAlchemy's
        execution work, which cost more than the read. Elsewhere in ``read_only``."""
        if self.dialect != "postgresql":
            with self.read_only() as session:
                row = session.connection().execute(statement, params).first()
                return None if row is None else tuple(row)
        sql = compiled(statement, self.engine.dialect)
        pooled = self.engine.raw_connection()
        try:
            driver: Any = pooled.driver_connection
            driver.autocommit = True  # the statement is its own transaction: no BEGIN, ROLLBACK
            try:
                found: tuple[Any, ...] | None = driver.execute(
                    sql.sql, sql.params(params)
                ).fetchone()
            finally:
                if driver.broken:  # the server went away: not back into the pool
                    pooled.invalidate()
                else:
                    driver.autocommit = False
        except psycopg.Error as error:  # raised as SQLAlchemy's error, as a session would
            raise exc.DBAPIError.instance(
                None, None, error, psycopg.Error, hide_parameters=True, dialect=self.engine.dialect
            ) from error
        finally:
            pooled.close()  # back to the pool (or, invalidated, closed)
        return found

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session in which every query sees the same committed state, however long it
        runs (REPEATABLE READ READ ONLY on PostgreSQL; on SQLite a read transaction under WAL
        already keeps the snapshot of its first read)."""
        session = self._sessions()
        options: dict[str, Any] = {READ_ONLY: True}
        if self.dialect == "postgresql":
            options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        try:
            session.connection(execution_options=options)
            yield session
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def unnest(**columns: Any) -> Any:
    """PostgreSQL: rows bound as one array a column and read back as the derived table ``v``:
    one statement text whatever the number of rows (psycopg parses it once, the server keeps it
    prepared), and no per-row parameter work in Python, where an executemany of the same rows
    spends most of its time."""
    # bound as one text each (``IntArray``, ``TextArray``)
    given: dict[Any, type[IntArray | TextArray]] = {Integer: IntArray, String: TextArray}
    arrays = (
        bindparam(name, type_=given[kind]())
        if kind in given
        else cast_(bindparam(name), ARRAY(kind))
        for name, kind in columns.items()
    )
    return sqlfunc.unnest(*arrays).table_valued(*columns).render_derived(name="v")
