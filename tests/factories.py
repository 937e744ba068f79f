"""Plain factory functions for test data."""

from __future__ import annotations

from typing import Any

from tilfreds.invitations.intake import InteractionIn

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
