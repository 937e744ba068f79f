"""Shared fixtures: every database test runs on SQLite and on PostgreSQL (real servers, no mocks).

PostgreSQL is taken from TILFREDS_TEST_PG_URL (default: the local server, database
``tilfreds_test``, recreated per run). When it is unreachable its tests are skipped, unless
TILFREDS_REQUIRE_POSTGRES=1 (as in CI), which turns that into a failure.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from tests.postgres import prepare_postgres
from tilfreds import migrate
from tilfreds.app import create_app
from tilfreds.audit import service as audit
from tilfreds.audit.models import AuditHead
from tilfreds.audit.service import GENESIS, HEAD_ID
from tilfreds.clock import FrozenClock
from tilfreds.config import Settings
from tilfreds.crypto import Keys, generate_master_key
from tilfreds.db import Database
from tilfreds.operators.service import create_token
from tilfreds.runtime import Runtime
from tilfreds.sms.dev import DevTransport
from tilfreds.surveys.service import ensure_default_survey
from tilfreds.tables import metadata

PG_URL = os.environ.get(
    "TILFREDS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/tilfreds_test"
)
SECRET = generate_master_key()
KEYS = Keys.from_master(base64.urlsafe_b64decode(SECRET))
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        url = PG_URL
        try:
            prepare_postgres(url)
        except Exception as exc:  # unreachable server
            if os.environ.get("TILFREDS_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"PostgreSQL is required but unreachable: {exc}")
            pytest.skip(f"PostgreSQL unreachable at {url}: {exc}")
    db = Database(url, session_info=audit.session_info(KEYS))
    migrate.upgrade(db)
    yield db
    db.dispose()


def wipe(db: Database) -> None:
    with db.unit_of_work() as session:
        for table in reversed(metadata.sorted_tables):
            if table.name != "audit_head":
                session.execute(delete(table))
        session.execute(delete(AuditHead))
        session.add(AuditHead(id=HEAD_ID, seq=0, mac=GENESIS))


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database.url,
        secret_key=SECRET,
        public_url="https://survey.example.no",
    )


@pytest.fixture
def rt(database: Database, settings: Settings) -> Iterator[Runtime]:
    wipe(database)
    keys = KEYS
    clock = FrozenClock(T0)
    runtime = Runtime(
        settings=settings,
        db=database,
        keys=keys,
        clock=clock,
        transport=DevTransport(database, keys, clock),
    )
    with database.unit_of_work() as session:
        ensure_default_survey(session, now=T0)
    yield runtime


@pytest.fixture
def clock(rt: Runtime) -> FrozenClock:
    assert isinstance(rt.clock, FrozenClock)
    return rt.clock


@pytest.fixture
def admin_token(rt: Runtime) -> str:
    with rt.db.unit_of_work() as session:
        return create_token(session, name="tests", role="admin", now=T0)


@pytest.fixture
def client(rt: Runtime, admin_token: str) -> Iterator[TestClient]:
    with TestClient(create_app(rt), follow_redirects=False) as c:
        c.headers["Authorization"] = f"Bearer {admin_token}"
        yield c
