"""Phone numbers and names are never stored in clear text (P9, and the ground for P18)."""

from __future__ import annotations

import sqlite3
import subprocess

from fastapi.testclient import TestClient
from sqlalchemy import make_url

from tests.factories import interaction_payload
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

PHONE_FORMS = ("+4741234567", "4741234567", "41234567", "412 34 567")


def dump(rt: Runtime) -> str:
    url = make_url(rt.db.url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database))
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return subprocess.run(
        ["pg_dump", "--data-only", libpq], check=True, capture_output=True, text=True
    ).stdout


def test_p9_dump_of_whole_database_holds_no_phone_number_or_full_name(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    Worker(rt).drain()
    code = client.get("/api/v1/dev/outbox").json()[0]["text"].split("/s/")[1].split()[0]
    assert client.post(f"/s/{code}", data={"csat": "5", "contact": "yes"}).status_code == 303
    client.post("/api/v1/dev/inbound", json={"from": "+4741234567", "text": "STOPP"})
    text = dump(rt)
    assert "case-1001-call-1" in text  # the dump is real and holds this run's rows
    for form in PHONE_FORMS:
        assert form not in text, form
    assert "Nordmann" not in text
