"""Sample data for ``tilfreds demo``: a fortnight of answered surveys and three fresh invitations.

Everything goes through the same services as real traffic; history is marked sent without
reaching the dev phone, so the phone shows only the fresh invitations.
"""

from __future__ import annotations

import random
from datetime import timedelta

from tilfreds.invitations import jobs, outcomes
from tilfreds.invitations.intake import InteractionIn, receive_interaction
from tilfreds.responses import service as responses
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import Submitted
from tilfreds.surveys.service import ensure_default_survey

FRESH = (
    ("demo-fresh-1", "Kari Nordmann", "+4741234567", "nb", "phone", "payment plan"),
    ("demo-fresh-2", "Sven Svensson", "+46701234567", "sv", "chat", "invoice question"),
    ("demo-fresh-3", "Emma Virtanen", "+358401234567", "fi", "letter", "debt settled"),
)
HISTORY = 40
_CHANNELS = ("phone", "chat", "letter", "web")
_REASONS = ("payment plan", "invoice question", "debt settled", "complaint", "address change")
_SCORES = (1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5)


def seed(rt: Runtime, *, rng: random.Random | None = None) -> int:
    """Add the sample data once (idempotent on external ids); returns the interactions added."""
    rng = rng or random.Random(2270)  # noqa: S311 - sample data, not security
    now = rt.clock.now()
    added = 0
    with rt.db.unit_of_work() as session:
        ensure_default_survey(session, now=now)
    for i in range(HISTORY):
        when = now - timedelta(days=14) + timedelta(hours=8 * i)
        data = InteractionIn(
            external_id=f"demo-hist-{i:03d}",
            survey=None,
            name=f"Demo Person {i}",
            phone_e164=f"+47{48000000 + i}",
            locale=rng.choice(("nb", "nb", "nn", "en")),
            channel=rng.choice(_CHANNELS),
            reason=rng.choice(_REASONS),
            occurred_at=when,
            case_ref=f"C-{10000 + i}",
        )
        with rt.db.unit_of_work() as session:
            intake = receive_interaction(
                session, rt.keys, data, timing=rt.timing(), now=when, actor="demo"
            )
            if not intake.created:
                continue
            added += 1
            claimed = jobs.claim(
                session, worker_id="demo", now=when, limit=10, lease=timedelta(minutes=5)
            )
            jobs.start_sending(session, worker_id="demo", ids=claimed, lease_until=when)
            outcomes.record_outcomes(
                session,
                worker_id="demo",
                transport="demo",
                outcomes={
                    message_id: Submitted(provider_ids=(f"history-{message_id}",))
                    for message_id in claimed
                },
                now=when,
            )
            if rng.random() < 0.7 and intake.invitation is not None:
                form = {
                    "csat": str(rng.choice(_SCORES)),
                    "contact": "yes" if rng.random() < 0.3 else "no",
                }
                responses.submit(
                    session,
                    code=intake.invitation.code,
                    form=form,
                    now=when + timedelta(minutes=rng.randint(2, 300)),
                )
    for external_id, name, phone, locale, channel, reason in FRESH:
        data = InteractionIn(
            external_id=external_id,
            survey=None,
            name=name,
            phone_e164=phone,
            locale=locale,
            channel=channel,
            reason=reason,
            occurred_at=now,
            case_ref="C-DEMO",
        )
        with rt.db.unit_of_work() as session:
            added += receive_interaction(
                session, rt.keys, data, timing=rt.timing(), now=now, actor="demo"
            ).created
    return added
