"""What the tests that run ``tilfreds worker`` processes share: due messages to send, and the
environment a worker process needs to reach the test database through the dev transport."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from tests.factories import interaction_in
from tilfreds.invitations.intake import receive_interaction
from tilfreds.runtime import Runtime


def queue_invitations(rt: Runtime, count: int) -> None:
    """Due now by the system clock, which the worker processes read (not the tests' frozen one)."""
    now = datetime.now(UTC)
    with rt.db.unit_of_work() as session:
        for n in range(count):
            data = interaction_in(n, occurred_at=now - timedelta(hours=1))
            receive_interaction(session, rt.keys, data, timing=rt.timing(), now=now, actor="test")


def worker_env(rt: Runtime, **settings: str) -> dict[str, str]:
    """The process environment, plus ``TILFREDS_<NAME>`` for each keyword."""
    return {
        **os.environ,
        "TILFREDS_DATABASE_URL": rt.db.url,
        "TILFREDS_SECRET_KEY": rt.settings.secret_key,
        "TILFREDS_PUBLIC_URL": "https://survey.example.no",
        "TILFREDS_DEV_TRANSPORT_ON_SERVER": "1",
        **{f"TILFREDS_{name.upper()}": value for name, value in settings.items()},
    }
