"""Checks run the same way against each HTTP provider's adapter and emulator, with the real
worker and database: throttling keeps messages queued and sends each once (P3), and a STOPP
posted by the provider reaches the invitations domain (P7)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from hypothesis import strategies as st
from sqlalchemy import select

from tests.peers.http_emulator import CallbackRoute, HttpEmulator, callback_request
from tests.test_worker import intake, statuses
from tilfreds.invitations.inbound import receive_sms
from tilfreds.invitations.models import Invitation, Message
from tilfreds.runtime import Runtime
from tilfreds.sms.http import HttpTransport
from tilfreds.sms.transport import CallbackRefused, InboundSms
from tilfreds.worker import Worker


def throttled_then_sent_once(
    rt: Runtime, emulator: HttpEmulator, transport: HttpTransport, sent: Callable[[], list[str]]
) -> None:
    """The provider answers 429 to the first pass: nothing is lost, no attempt is used, the
    worker backs off and then each message goes out exactly once; ``sent`` lists the references
    the emulator took."""
    rt.settings.worker_backoff_seconds = 0.01
    rt.transport = transport
    intake(rt, 1, 2, 3)
    emulator.fail_next(429, times=3)
    worker = Worker(rt)
    first = worker.run_once()
    assert first.busy and first.claimed == 3
    with rt.db.read_only() as session:
        rows = session.execute(select(Message)).scalars().all()
        assert {(m.status, m.attempts) for m in rows} == {("queued", 0)}
    worker.drain()
    assert {s for s, _ in statuses(rt)} == {"submitted"}
    with rt.db.read_only() as session:
        rows = session.execute(select(Message).order_by(Message.id)).scalars().all()
        assert sorted(sent()) == sorted(str(m.id) for m in rows)  # once each
        assert {(m.transport, m.attempts) for m in rows} == {(transport.name, 1)}
        assert all(m.provider_id for m in rows)


def stopp_reaches_invitations(
    rt: Runtime, route: CallbackRoute, emulator: HttpEmulator, inject: Callable[[str], object]
) -> None:
    """A customer answers STOPP; the provider posts it to our inbound URL; what the adapter reads
    is what the invitations domain acts on: the invitation is closed as objected."""
    intake(rt, 1)
    inject("+4740000001")  # interaction_in(1)'s number
    emulator.wait_callbacks()
    [reply] = [e for e in route.events if isinstance(e, InboundSms)]
    with rt.db.unit_of_work() as session:
        outcome = receive_sms(
            session, rt.keys, phone_e164=reply.sender, text=reply.text, now=rt.clock.now()
        )
    assert outcome.kind == "objection" and outcome.closed_invitations == 1
    with rt.db.read_only() as session:
        assert session.execute(select(Invitation.status)).scalar_one() == "objected"


def through_the_real_route(
    rt: Runtime,
    emulator: HttpEmulator,
    transport: HttpTransport,
    base_url: str,
    inject: Callable[[str], object],
) -> None:
    """Sent by the worker, reported by the provider to tilfreds's own callback route (served by
    uvicorn): each message is marked delivered, once, however often the report comes; a forged
    report changes nothing; a STOPP closes the invitation."""
    intake(rt, 1, 2)
    Worker(rt).drain()
    callbacks = emulator.wait_callbacks()
    assert callbacks and {cb.attempts[-1] for cb in callbacks} == {200}
    assert statuses(rt) == [("delivered", None), ("delivered", None)]
    receipt_url = transport._auth.urls(base_url)["receipt"]
    forged = [
        receipt_url.rsplit("/", 1)[0] + "/" + "A" * 32,  # a guessed token
        transport._auth.urls(base_url)["inbound"],  # the other URL's token
    ]
    for url in forged:
        answer = httpx.post(url, json=callbacks[0].payload)  # without the Basic auth, too
        assert answer.status_code == 403 and "payload" not in answer.text
    assert httpx.post(receipt_url, content=b"{", auth=callbacks[0].auth).status_code == 400
    assert statuses(rt) == [("delivered", None), ("delivered", None)]
    inject("+4740000001")
    emulator.wait_callbacks()
    with rt.db.read_only() as session:
        objected = session.execute(select(Invitation.status).order_by(Invitation.id)).scalars()
        assert list(objected) == ["objected", "sent"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mangled(draw: st.DrawFn, example: dict[str, object]) -> bytes:
    """A documented payload with fields replaced, dropped or added, or raw bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    payload = dict(example)
    for key in draw(st.lists(st.sampled_from(sorted(example)), max_size=3)):
        if draw(st.booleans()):
            payload[key] = draw(JSON)
        else:
            payload.pop(key, None)
    return json.dumps(payload).encode()


def reads_or_refuses_with_400(
    transport: HttpTransport, kind: str, body: bytes, auth: tuple[str, str]
) -> None:
    """What a provider posts, with the right token and credentials, is read or refused as not
    understood (400): never another error."""
    request = callback_request(transport._auth.tokens, None, kind=kind, auth=auth, body=body)
    try:
        transport.parse_callback(request)
    except CallbackRefused as refused:
        assert refused.status == 400
