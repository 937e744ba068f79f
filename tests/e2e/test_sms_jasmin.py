"""The SMPP transport through Jasmin 0.11.0, a real SMPP gateway, to the SMSC simulator: texts
arrive intact and whole, Jasmin's delivery receipts come back for the ids Jasmin gave, and
customers' replies injected at the SMSC come back through Jasmin (P3, P7). Jasmin is started by
tests/peers/jasmin.py; without it these tests skip, unless TILFREDS_REQUIRE_PEERS=1 (CI)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.peers.flow import (
    check_invitation_arrived_whole,
    check_replies,
    check_two_way,
    invite,
    long_invitation,
    status_of,
    wait,
)
from tests.peers.jasmin import Jasmin
from tests.test_smpp import Recorder
from tests.two_way import use_two_way_survey
from tilfreds.config import Settings
from tilfreds.runtime import Runtime
from tilfreds.sms.smpp import SmppTransport, build
from tilfreds.sms.transport import OutboundSms, ReceiptState, Submitted
from tilfreds.worker import Worker

NORWEGIAN = "Hei Åse! Hvordan var besøket hos Ærlig Øl & Bær? Svar 1-5, eller STOPP."
LONG = "Takk for besøket på kontoret vårt i Tromsø. " * 4  # 180 septets: two segments
SWEDISH_UCS2 = "Tack för besöket – “hur var det”?"  # the dash and quotes force UCS-2


def jasmin_settings(jasmin: Jasmin, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "smpp_host": jasmin.host,
        "smpp_port": jasmin.port,
        "smpp_system_id": jasmin.system_id,
        "smpp_password": jasmin.password,
        "smpp_provider_name": "Test SMSC behind Jasmin",
        "smpp_provider_country": "NO",
    }
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
def through_jasmin(jasmin: Jasmin) -> Iterator[tuple[SmppTransport, Recorder]]:
    transport = build(jasmin_settings(jasmin))
    events = Recorder()
    transport.start(events)
    yield transport, events
    transport.close()


def test_p3_texts_arrive_intact_and_whole_and_jasmins_receipts_come_back(
    jasmin: Jasmin, through_jasmin: tuple[SmppTransport, Recorder]
) -> None:
    transport, events = through_jasmin
    to = ["+4791100001", "+4791100002", "+4791100003"]
    texts = [NORWEGIAN, LONG, SWEDISH_UCS2]
    outcomes = transport.send_window(
        [OutboundSms(t, body, "2270", f"j{n}") for n, (t, body) in enumerate(zip(to, texts))]
    )
    assert all(isinstance(o, Submitted) for o in outcomes), outcomes
    submitted = [o for o in outcomes if isinstance(o, Submitted)]
    assert [(o.segments, o.encoding) for o in submitted] == [
        (1, "GSM-7"),
        (2, "GSM-7"),
        (1, "UCS-2"),
    ]
    smsc = jasmin.smsc
    assert smsc.wait_for(lambda: {m.destination for m in smsc.received} >= {t[1:] for t in to})
    got = {m.destination: m for m in smsc.received}
    assert [got[t[1:]].text for t in to] == texts
    assert got[to[1][1:]].segments == 2
    ids = {pid for o in submitted for pid in o.provider_ids}  # Jasmin's ids, one per segment

    def delivered() -> set[str]:
        return {r.provider_id for r in events.all_receipts() if r.state is ReceiptState.DELIVERED}

    assert smsc.wait_for(lambda: ids <= delivered(), timeout=30), (ids, events.all_receipts())


def test_p7_replies_at_the_smsc_come_back_through_jasmin(
    jasmin: Jasmin, through_jasmin: tuple[SmppTransport, Recorder]
) -> None:
    _, events = through_jasmin
    smsc = jasmin.smsc
    smsc.inject_mo("4791100011", "2270", "4")
    smsc.inject_mo("4791100012", "2270", "STOPP")
    smsc.inject_mo("4791100013", "2270", "Det var veldig bra, tusen takk! æøå " * 5, segments=2)

    def replies() -> dict[str, str]:
        return {m.sender[-8:]: m.text for m in events.messages}

    expected = {
        "91100011": "4",
        "91100012": "STOPP",
        "91100013": "Det var veldig bra, tusen takk! æøå " * 5,
    }
    assert smsc.wait_for(lambda: replies() == expected, timeout=30), replies()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p3_p7_the_worker_through_jasmin_sends_whole_gets_delivered_and_replies_reach_invitations(
    rt: Runtime, jasmin: Jasmin
) -> None:
    """On PostgreSQL: the invitation goes out whole, Jasmin's receipt over the worker's SMPP
    session marks it delivered, and "4" and "STOPP" come back over the same session."""
    rt.transport = build(jasmin_settings(jasmin))
    worker = Worker(rt)
    try:
        survey = long_invitation(rt)
        sent, answered = invite(rt, 1), invite(rt, 2)
        objecting = invite(rt, 3, delay=timedelta(days=1))  # still waiting at the STOPP
        assert worker.drain() == 2
        check_invitation_arrived_whole(jasmin.smsc, sent, survey)
        assert wait(lambda: status_of(rt, sent)[1] == "delivered"), status_of(rt, sent)
        check_replies(rt, jasmin.smsc, answered=answered, objecting=objecting)
    finally:
        worker.close()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_p4_p7_p8_a_two_way_survey_answered_by_replies_through_jasmin(
    rt: Runtime, jasmin: Jasmin
) -> None:
    """A whole conversation over the worker's SMPP session (a garbled reply asked again, "4"
    recorded as the score) and another stopped midway by STOPP."""
    rt.transport = build(jasmin_settings(jasmin))
    use_two_way_survey(rt)
    worker = Worker(rt)
    try:
        answering, objecting = invite(rt, 21), invite(rt, 22)
        assert worker.drain() == 2
        check_two_way(rt, jasmin.smsc, worker, answering=answering, objecting=objecting)
    finally:
        worker.close()
