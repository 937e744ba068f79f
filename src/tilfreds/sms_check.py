"""``tilfreds sms test`` and ``tilfreds sms callbacks``: an operator checks an SMS set-up end to
end (start or bind, submit, receipt) and finds the callback URLs to give the provider (P3). The
provider is named at each run, so the operator sees who processes the messages (P13, P14).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from tilfreds.invitations.models import MessagePart
from tilfreds.runtime import Runtime
from tilfreds.sms.transport import (
    CALLBACK_KINDS,
    InDoubt,
    NotTaken,
    OutboundSms,
    Rejected,
    Submitted,
    callback_path,
)

Say = Callable[[str], None]
FINAL = ("delivered", "failed", "expired")
# test messages carry a reference no message of the queue will have for a long while
TEST_REFERENCE_BASE = 10**12


@dataclass(frozen=True)
class Step:
    ok: bool
    line: str


def _ms(since: float) -> str:
    return f"{(time.monotonic() - since) * 1000:.0f} ms"


def send_test(
    rt: Runtime, *, to: str, text: str, wait_seconds: float, say: Say, poll: float = 0.2
) -> bool:
    """Send one SMS through the configured transport, saying each step; True when it was taken
    and (unless ``wait_seconds`` is 0) its receipt says delivered."""
    transport = rt.transport
    provider = transport.provider
    say(f"transport {transport.name}; provider {provider.name} ({provider.country})")
    started = time.monotonic()
    try:
        transport.start(rt.events)
    except Exception as exc:  # what the operator must see: bind refused, host unreachable
        say(f"FAIL start: {type(exc).__name__}: {exc}")
        return False
    say(f"ok   start (bind/connect) in {_ms(started)}")
    try:
        sms = OutboundSms(
            to=to,
            body=text,
            sender=rt.settings.sms_sender,
            reference=str(TEST_REFERENCE_BASE + secrets.randbelow(TEST_REFERENCE_BASE)),
        )
        submitting = time.monotonic()
        [outcome] = transport.send_window([sms])
        if not isinstance(outcome, Submitted):
            say(f"FAIL submit: {_describe(outcome)}")
            return False
        say(
            f"ok   submit in {_ms(submitting)}: provider ids {', '.join(outcome.provider_ids)}; "
            f"{outcome.segments} segment(s), {outcome.encoding}"
        )
        if wait_seconds <= 0:
            return True
        return _await_receipt(rt, outcome.provider_ids, wait_seconds, say, poll)
    finally:
        transport.close()


def _describe(outcome: Rejected | NotTaken | InDoubt | Submitted) -> str:
    if isinstance(outcome, Rejected):
        code = f" (error code {outcome.error_code})" if outcome.error_code else ""
        kind = "permanently" if outcome.permanent else "for now"
        return f"rejected {kind}: {outcome.reason}{code}"
    if isinstance(outcome, NotTaken):
        return f"not taken (the provider is busy or not connected): {outcome.reason}"
    if isinstance(outcome, InDoubt):
        return f"in doubt (the answer was lost): {outcome.reason}"
    return "submitted"


def _await_receipt(
    rt: Runtime, ids: Sequence[str], wait_seconds: float, say: Say, poll: float
) -> bool:
    """Watch the receipts recorded for ``ids`` (by this process's session, or by the web
    server's callback route), then forget them: they belong to no message."""
    name = rt.transport.name
    waiting = time.monotonic()
    deadline = waiting + wait_seconds
    seen: dict[str, str | None] = {}
    try:
        while time.monotonic() < deadline:
            with rt.db.read_only() as session:
                rows = session.execute(
                    select(MessagePart.provider_id, MessagePart.state, MessagePart.error_code)
                    .where(MessagePart.transport == name, MessagePart.provider_id.in_(ids))
                    .where(MessagePart.state.is_not(None))
                ).all()
            for pid, state, code in rows:
                if seen.get(pid) != state:
                    seen[pid] = state
                    error = f", error code {code}" if code else ""
                    say(f"     receipt for {pid}: {state}{error} after {_ms(waiting)}")
            if len(ids) == sum(1 for pid in ids if seen.get(pid) in FINAL):
                delivered = all(seen[pid] == "delivered" for pid in ids)
                say(
                    ("ok   delivered" if delivered else "FAIL not delivered") + f" ({_ms(waiting)})"
                )
                return delivered
            time.sleep(poll)
        say(
            f"FAIL no final receipt within {wait_seconds:g} s: check that the provider sends "
            "delivery receipts (docs/sms.md)"
        )
        return False
    finally:
        with rt.db.unit_of_work() as session:
            session.execute(
                delete(MessagePart).where(
                    MessagePart.transport == name,
                    MessagePart.provider_id.in_(ids),
                    MessagePart.message_id.is_(None),
                )
            )


def callback_urls(rt: Runtime) -> dict[str, str] | None:
    """The URLs to give the configured transport's provider, by kind; None when it takes no
    HTTP callbacks (dev, SMPP: receipts come over its own session)."""
    if getattr(rt.transport, "parse_callback", None) is None:
        return None
    base = (rt.settings.public_url or "<TILFREDS_PUBLIC_URL>").rstrip("/")
    secret, name = rt.settings.sms_callback_secret, rt.transport.name
    return {kind: base + callback_path(secret, name, kind) for kind in CALLBACK_KINDS}
