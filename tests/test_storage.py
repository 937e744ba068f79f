"""Phone numbers and names are never stored in clear text (P9, and the ground for P18)."""

from __future__ import annotations

import sqlite3
import subprocess

from fastapi.testclient import TestClient
from sqlalchemy import make_url

from tests.factories import interaction_payload
from tilfreds.runtime import Runtime
from tilfreds.worker import Worker

# every way the number is commonly written: E.164, with and without +, national, spaced
PHONE_FORMS = (
    "+4741234567",
    "4741234567",
    "004741234567",
    "41234567",
    "+47 412 34 567",
    "+47 41 23 45 67",
    "412 34 567",
    "41 23 45 67",
)
NAME_FORMS = ("Kari Nordmann", "Kari", "Nordmann")


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


def test_p9_dump_of_whole_database_holds_no_form_of_the_phone_number_or_the_name(
    client: TestClient, rt: Runtime
) -> None:
    client.post("/api/v1/interactions", json=interaction_payload())
    Worker(rt).drain()
    code = client.get("/api/v1/dev/outbox").json()[0]["text"].split("/s/")[1].split()[0]
    assert client.post(f"/s/{code}", data={"csat": "5", "contact": "yes"}).status_code == 303
    client.post("/api/v1/dev/inbound", json={"from": "+4741234567", "text": "STOPP"})
    text = dump(rt)
    assert "case-1001-call-1" in text  # the dump is real and holds this run's rows
    # as written, in lower and in upper case (ciphertexts and hashes are hex: no false alarms)
    forms = {f for form in (*PHONE_FORMS, *NAME_FORMS) for f in (form, form.lower(), form.upper())}
    leaks = sorted(form for form in forms if form in text)
    assert not leaks, leaks
