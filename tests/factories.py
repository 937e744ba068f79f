"""Plain factory functions for test data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tilfreds.db import Database
from tilfreds.invitations.intake import InteractionIn
from tilfreds.invitations.models import Invitation, Message
from tilfreds.invitations.states import MessagePurpose, MessageStatus
from tilfreds.runtime import Runtime
from tilfreds.sms import dev
from tilfreds.worker import Worker

PHONE = "+4741234567"


def interaction_payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": "case-1001-call-1",
        "customer": {"name": "Kari Nordmann", "phone": "412 34 567", "locale": "nb-NO"},
        "channel": "phone",
        "reason": "payment plan",
        "occurred_at": "2026-11-25T08:30:00+00:00",
        "case_ref": "C-1001",
    }
    body.update(overrides)
    return body


def interaction_in(n: int = 1, **overrides: Any) -> InteractionIn:
    from datetime import UTC, datetime

    values: dict[str, Any] = {
        "external_id": f"ext-{n}",
        "survey": None,
        "name": f"Person {n}",
        "phone_e164": f"+47{40000000 + n}",
        "locale": "nb",
        "channel": "phone",
        "reason": "payment plan",
        "occurred_at": datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
        "case_ref": f"C-{n}",
    }
    values.update(overrides)
    return InteractionIn(**values)


def queue_reminder(session: Session, *, send_after: datetime, now: datetime) -> None:
    """A reminder waiting for the (only) invitation, as reminder scheduling will queue it."""
    invitation = session.execute(select(Invitation)).scalar_one()
    session.add(
        Message(
            invitation_id=invitation.id,
            person_id=invitation.person_id,
            purpose=MessagePurpose.REMINDER,
            status=MessageStatus.QUEUED,
            send_after=send_after,
            attempts=0,
            created_at=now,
        )
    )


def send_and_get_code(client: TestClient, rt: Runtime, **overrides: object) -> str:
    """Post one interaction, let the worker send its invitation, and return the link's code."""
    assert (
        client.post("/api/v1/interactions", json=interaction_payload(**overrides)).status_code
        == 201
    )
    assert Worker(rt).drain() == 1
    with rt.db.read_only() as session:
        body = dev.inbox(session, rt.keys)[0].body
    match = re.search(r"https://survey\.example\.no/s/(\w+)", body)
    assert match, body
    return match.group(1)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL ``db`` sends while the block runs, each with its whitespace collapsed."""
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", log)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", log)
