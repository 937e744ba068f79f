"""Which commits may return before the disk has them (PostgreSQL ``synchronous_commit = off``):
a submitted answer only (a crash can lose it whole, and its link stays open to answer again).
A decline (P8) and an objection (P7) always wait for the disk: losing one would contact a person
who said no."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event

from tests.factories import PHONE, send_and_get_code, statements
from tilfreds.runtime import Runtime


@contextmanager
def settings_at_commit(rt: Runtime) -> Iterator[list[str]]:
    """``synchronous_commit`` as each COMMIT finds it: what the transaction really set."""
    seen: list[str] = []

    def show(conn: Connection) -> None:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SHOW synchronous_commit")
        seen.append(cursor.fetchone()[0])
        cursor.close()

    event.listen(rt.db.engine, "commit", show)
    try:
        yield seen
    finally:
        event.remove(rt.db.engine, "commit", show)


def _async_commits(seen: list[str]) -> int:
    return sum("synchronous_commit" in s for s in seen)


@pytest.fixture
def pg_rt(rt: Runtime) -> Runtime:
    if rt.db.dialect != "postgresql":
        pytest.skip("SQLite has no synchronous_commit: every commit waits for its file")
    rt.settings.fatigue_days = 0  # one person asked about several interactions
    return rt


def test_an_answer_commits_without_waiting_for_the_disk(client: TestClient, pg_rt: Runtime) -> None:
    code = send_and_get_code(client, pg_rt, external_id="case-answer")
    with statements(pg_rt.db) as seen, settings_at_commit(pg_rt) as at_commit:
        assert client.post(f"/s/{code}", data={"csat": "4"}).status_code == 303
    assert _async_commits(seen) == 1
    assert at_commit == ["off"]


def test_p8_a_decline_waits_for_the_disk(client: TestClient, pg_rt: Runtime) -> None:
    code = send_and_get_code(client, pg_rt, external_id="case-decline")
    with statements(pg_rt.db) as seen, settings_at_commit(pg_rt) as at_commit:
        assert client.post(f"/s/{code}/decline", data={}).status_code == 303
    assert seen and _async_commits(seen) == 0
    assert at_commit == ["on"]


def test_p7_an_objection_waits_for_the_disk(client: TestClient, pg_rt: Runtime) -> None:
    send_and_get_code(client, pg_rt, external_id="case-objection")
    with statements(pg_rt.db) as seen:
        stop = client.post("/api/v1/dev/inbound", json={"from": PHONE, "text": "STOPP"})
    assert stop.json() == {"outcome": "objection"}
    assert seen and _async_commits(seen) == 0
