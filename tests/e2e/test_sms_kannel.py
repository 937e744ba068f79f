"""tilfreds on PostgreSQL through the real Kannel (Debian's bearerbox and smsbox) to the SMSC
simulator: the worker sends a Norwegian two-segment invitation that arrives whole with æøå
intact, Kannel's delivery report to tilfreds' callback route marks it delivered in the database,
and replies "4" and "STOPP" injected at the SMSC come to the route through Kannel's MO get-url and
reach the invitations domain: the STOPP number is suppressed and its waiting message cancelled
(P3, P7); a two-way survey is then answered through Kannel, "4" recorded as the score (P4, P8).
Skipped without Kannel, unless TILFREDS_REQUIRE_PEERS=1 (CI)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

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
from tilfreds.runtime import Runtime
from tilfreds.sms import kannel
from tilfreds.sms.transport import callback_path
from tilfreds.worker import Worker

WEB_PORT = PORT_BASE + 15


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    server = simulator()
    yield server
    server.stop()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p3_p7_through_kannel_sent_whole_delivered_and_replies_reach_invitations(
    rt: Runtime, smsc: Smsc, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{WEB_PORT}"
    secret = rt.settings.sms_callback_secret = "e2e-kannel-callback-secret"
    peer_url = f"http://127.0.0.1:{Ports.from_base(PORT_BASE).sendsms}/cgi-bin/sendsms"
    rt.settings.sms_transport = "kannel"
    rt.settings.kannel_sendsms_url = peer_url
    rt.settings.kannel_username, rt.settings.kannel_password = "tilfreds", "ks-pass"
    rt.settings.kannel_smsc = "sim"
    rt.settings.kannel_callback_base_url = base
    rt.settings.kannel_provider_name, rt.settings.kannel_provider_country = "Test SMSC", "NO"
    rt.transport = kannel.build(rt.settings)
    inbound = base + callback_path(secret, "kannel", "inbound")
    peer = start_kannel(tmp_path, smsc, inbound)
    worker = Worker(rt)
    try:
        with serving(rt, WEB_PORT):
            survey = long_invitation(rt)
            sent, answered = invite(rt, 1), invite(rt, 2)
            objecting = invite(rt, 3, delay=timedelta(days=1))  # still waiting at the STOPP
            assert worker.drain() == 2
            check_invitation_arrived_whole(smsc, sent, survey)
            assert wait(lambda: status_of(rt, sent)[1] == "delivered"), status_of(rt, sent)
            check_replies(rt, smsc, answered=answered, objecting=objecting)
            worker.drain()  # the objection's confirmation
            use_two_way_survey(rt)  # then a two-way survey, answered through Kannel's MO url
            two_way = invite(rt, 21), invite(rt, 22)
            assert worker.drain() == 2
            check_two_way(rt, smsc, worker, answering=two_way[0], objecting=two_way[1])
    finally:
        worker.close()
        peer.stop()
