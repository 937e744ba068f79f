"""tilfreds on PostgreSQL through the real Kannel (Debian's bearerbox and smsbox) to the SMSC
simulator: the worker sends a Norwegian two-segment invitation that arrives whole with æøå
intact; it is marked delivered in the database only once Kannel has reported BOTH parts delivered
to tilfreds' callback route (tilfreds sends the parts itself, each with its own dlr-url: Kannel
asks a receipt for the first part only of a text it splits), and failed, with the SMSC's error
code, when one part is undeliverable. Replies "4" and "STOPP" injected at the SMSC come to the
route through Kannel's MO get-url and reach the invitations domain: the STOPP number is suppressed
and its waiting message cancelled (P3, P7). A two-way survey is answered through Kannel, "4"
recorded as the score, a garbled reply asked again, STOPP midway (P4, P7, P8). Skipped without
Kannel, unless TILFREDS_REQUIRE_PEERS=1 (CI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.peers.flow import (
    check_invitation_arrived_whole,
    check_replies,
    check_two_way,
    invite,
    long_invitation,
    serving,
    status_of,
    wait,
)
from tests.peers.kannel import PORT_BASE, Ports, simulator, start_kannel
from tests.peers.smsc import Smsc
from tests.two_way import use_two_way_survey
from tilfreds.invitations.models import Invitation, Message, MessagePart
from tilfreds.people.models import Interaction
from tilfreds.runtime import Runtime
from tilfreds.sms import kannel
from tilfreds.sms.transport import callback_path
from tilfreds.worker import Worker

WEB_PORT = PORT_BASE + 15
BASE = f"http://127.0.0.1:{WEB_PORT}"


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    server = simulator()
    yield server
    server.stop()


@contextmanager
def sending_through_kannel(rt: Runtime, smsc: Smsc, folder: Path) -> Iterator[Worker]:
    """tilfreds' Kannel transport and web app, and Kannel (started) sending replies to its
    inbound route; yields the worker."""
    secret = rt.settings.sms_callback_secret = "e2e-kannel-callback-secret"
    peer_url = f"http://127.0.0.1:{Ports.from_base(PORT_BASE).sendsms}/cgi-bin/sendsms"
    rt.settings.sms_transport = "kannel"
    rt.settings.kannel_sendsms_url = peer_url
    rt.settings.kannel_username, rt.settings.kannel_password = "tilfreds", "ks-pass"
    rt.settings.kannel_smsc = "sim"
    rt.settings.kannel_callback_base_url = BASE
    rt.settings.kannel_provider_name, rt.settings.kannel_provider_country = "Test SMSC", "NO"
    rt.transport = kannel.build(rt.settings)
    peer = start_kannel(folder, smsc, BASE + callback_path(secret, "kannel", "inbound"))
    worker = Worker(rt)
    try:
        with serving(rt, WEB_PORT):
            yield worker
    finally:
        worker.close()
        peer.stop()


def message_of(rt: Runtime, phone: str) -> tuple[str, str | None, dict[str, str | None]]:
    """(status, error code, {part id: state}) of the one message to ``phone``'s person."""
    with rt.db.read_only() as session:
        mid, status, code = session.execute(
            select(Message.id, Message.status, Message.error_code)
            .join(Invitation, Message.invitation_id == Invitation.id)
            .join(Interaction, Interaction.id == Invitation.interaction_id)
            .where(Interaction.external_id == f"ext-{int(phone[-8:]) - 40000000}")
        ).one()
        parts = session.execute(
            select(MessagePart.provider_id, MessagePart.state).where(MessagePart.message_id == mid)
        ).all()
    return str(status), code, {pid.removeprefix(f"{mid}/"): state for pid, state in parts}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p3_p7_through_kannel_sent_whole_delivered_by_every_part_and_replies_reach_invitations(
    rt: Runtime, smsc: Smsc, tmp_path: Path
) -> None:
    smsc.held_part = 2  # the second part's receipt waits until the first one is recorded
    with sending_through_kannel(rt, smsc, tmp_path) as worker:
        survey = long_invitation(rt)
        sent, answered = invite(rt, 1), invite(rt, 2)
        objecting = invite(rt, 3, delay=timedelta(days=1))  # still waiting at the STOPP
        assert worker.drain() == 2
        check_invitation_arrived_whole(smsc, sent, survey)
        first_delivered = wait(lambda: message_of(rt, sent)[2].get("1") == "delivered")
        assert first_delivered, message_of(rt, sent)
        assert message_of(rt, sent) == ("submitted", None, {"1": "delivered", "2": "enroute"})
        smsc.release_receipts()
        assert wait(lambda: status_of(rt, sent)[1] == "delivered"), message_of(rt, sent)
        assert message_of(rt, sent)[2] == {"1": "delivered", "2": "delivered"}
        check_replies(rt, smsc, answered=answered, objecting=objecting)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p3_through_kannel_one_undeliverable_part_fails_the_message_with_its_code(
    rt: Runtime, smsc: Smsc, tmp_path: Path
) -> None:
    smsc.undeliverable_part = 2
    with sending_through_kannel(rt, smsc, tmp_path) as worker:
        survey = long_invitation(rt)
        sent = invite(rt, 1)
        assert worker.drain() == 1
        check_invitation_arrived_whole(smsc, sent, survey)
        assert wait(lambda: status_of(rt, sent)[1] == "failed"), message_of(rt, sent)
        assert wait(lambda: message_of(rt, sent)[2].get("1") == "delivered")
        assert message_of(rt, sent) == ("failed", "001", {"1": "delivered", "2": "failed"})


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p4_p7_p8_a_two_way_survey_answered_by_replies_through_kannel(
    rt: Runtime, smsc: Smsc, tmp_path: Path
) -> None:
    use_two_way_survey(rt)
    with sending_through_kannel(rt, smsc, tmp_path) as worker:
        answering, objecting = invite(rt, 21), invite(rt, 22)
        assert worker.drain() == 2
        check_two_way(rt, smsc, worker, answering=answering, objecting=objecting)
