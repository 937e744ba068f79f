"""The SMPP transport against the SMSC simulator (tests/peers/smsc.py) over real TCP.

Proves P3 (the evaluation is sent by SMS: texts arrive intact and whole, each message gets an
honest outcome, nothing is lost when the SMSC throttles or drops the connection) and P7 (a
customer's reply, also a long one, reaches tilfreds whole).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.peers.smsc import RMSGQFUL, RTHROTTLED, Smsc
from tilfreds.config import Settings
from tilfreds.sms.smpp import SmppTransport, build
from tilfreds.sms.transport import (
    InboundSms,
    InDoubt,
    NotTaken,
    OutboundSms,
    Receipt,
    ReceiptState,
    Rejected,
    Submitted,
    TransportError,
)

TO = "+4791234567"
SENDER = "2270"


class Recorder:
    """A TransportEvents that keeps what it is given (one list per call, as batches)."""

    def __init__(self) -> None:
        self.receipt_batches: list[list[Receipt]] = []
        self.messages: list[InboundSms] = []
        self.fail = False
        self.lock = threading.Lock()

    def receipts(self, receipts: Sequence[Receipt]) -> None:
        if self.fail:
            raise RuntimeError("database down")
        with self.lock:
            self.receipt_batches.append(list(receipts))

    def inbound(self, messages: Sequence[InboundSms]) -> None:
        with self.lock:
            self.messages.extend(messages)

    def all_receipts(self) -> list[Receipt]:
        with self.lock:
            return [r for batch in self.receipt_batches for r in batch]


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    server = Smsc(users={"tilfreds": "secret"}).start()
    yield server
    server.stop()


@pytest.fixture
def connect(smsc: Smsc) -> Iterator[Callable[..., tuple[SmppTransport, Recorder]]]:
    made: list[SmppTransport] = []

    def make(**settings: Any) -> tuple[SmppTransport, Recorder]:
        values: dict[str, Any] = {
            "smpp_port": smsc.port,
            "smpp_system_id": "tilfreds",
            "smpp_password": "secret",
            "smpp_provider_name": "Test SMSC AS",
            "smpp_provider_country": "no",
            "smpp_throttle_seconds": 0.05,
            "smpp_response_seconds": 10,
        } | settings
        transport = build(Settings(**values))
        events = Recorder()
        transport.start(events)
        made.append(transport)
        return transport, events

    yield make
    for transport in made:
        transport.close()


def sms(body: str, n: int = 0) -> OutboundSms:
    return OutboundSms(to=TO, body=body, sender=SENDER, reference=f"m{n}")


def test_p3_norwegian_gsm7_ucs2_and_two_segment_texts_arrive_intact_and_whole(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    transport, _ = connect()
    texts = [
        "Hei Åse! Hvordan var besøket hos oss? Svar 1-5. Svar STOPP for å reservere deg. {€}",
        "Tack för besöket – “hur var det”?",  # en dash and typographic quotes force UCS-2
        "Hvordan var besøket i dag? " * 7,  # 189 septets: two segments
    ]
    outcomes = transport.send_window([sms(t, i) for i, t in enumerate(texts)])
    assert all(isinstance(o, Submitted) for o in outcomes), outcomes
    submitted = [o for o in outcomes if isinstance(o, Submitted)]
    assert [(o.segments, o.encoding) for o in submitted] == [
        (1, "GSM-7"),
        (1, "UCS-2"),
        (2, "GSM-7"),
    ]
    assert smsc.wait_for(lambda: len(smsc.received) == 3)
    got = {m.text: m for m in smsc.received}
    assert set(got) == set(texts)
    assert got[texts[2]].segments == 2
    assert got[texts[2]].message_ids == list(submitted[2].provider_ids)
    assert {m.destination for m in smsc.received} == {TO[1:]}
    assert {m.source for m in smsc.received} == {SENDER}


@pytest.mark.parametrize(
    ("id_style", "text_style", "tlvs", "bases"),
    [
        ("hex", None, True, {}),
        ("dec", None, True, {}),
        # ids in hex in submit_sm_resp, in decimal in the receipt text, no TLVs
        ("hex", "dec", False, {"smpp_submit_id_base": 16, "smpp_receipt_id_base": 10}),
    ],
)
def test_p3_receipts_reach_the_events_in_batches_under_the_submitted_ids(
    smsc: Smsc,
    connect: Callable[..., tuple[SmppTransport, Recorder]],
    id_style: str,
    text_style: str | None,
    tlvs: bool,
    bases: dict[str, int],
) -> None:
    smsc.id_style, smsc.receipt_text_id_style, smsc.receipt_tlvs = id_style, text_style, tlvs
    transport, events = connect(**bases)
    outcomes = transport.send_window([sms(f"Melding {i}", i) for i in range(40)])
    ids = {pid for o in outcomes if isinstance(o, Submitted) for pid in o.provider_ids}
    assert len(ids) == 40
    assert smsc.wait_for(lambda: len(events.all_receipts()) == 40)
    receipts = events.all_receipts()
    assert {r.provider_id for r in receipts} == ids
    assert {r.state for r in receipts} == {ReceiptState.DELIVERED}
    assert {r.transport for r in receipts} == {"smpp"}
    assert all(r.at is not None for r in receipts)
    assert smsc.wait_for(lambda: len(smsc.deliver_statuses) == 40)
    assert set(smsc.deliver_statuses) == {0}


def test_p3_a_failed_receipt_is_read_and_an_unrecorded_receipt_is_not_acknowledged(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    smsc.receipt_stat = "UNDELIV"
    transport, events = connect()
    transport.send_window([sms("Hei", 1)])
    assert smsc.wait_for(lambda: len(events.all_receipts()) == 1)
    assert events.all_receipts()[0].state == ReceiptState.FAILED
    events.fail = True  # the database is down: the SMSC must deliver again later
    transport.send_window([sms("Hei igjen", 2)])
    assert smsc.wait_for(lambda: len(smsc.deliver_statuses) == 2)
    assert smsc.deliver_statuses == [0, 0x64]  # ESME_RX_T_APPN: try again


def test_p7_replies_and_concatenated_replies_are_reassembled_and_decoded(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    _, events = connect()
    long_reply = "Jeg var veldig fornøyd med behandlingen, men ventetiden var lang. " * 3
    smsc.inject_mo("4791234567", SENDER, "STOPP")
    smsc.inject_mo("4791234567", SENDER, long_reply, segments=2)
    smsc.inject_mo("4791234567", SENDER, "Tusen takk “veldig bra” 👍", segments=3, ucs2=True)
    assert smsc.wait_for(lambda: len(events.messages) == 3)
    assert [m.text for m in events.messages] == [
        "STOPP",
        long_reply,
        "Tusen takk “veldig bra” 👍",
    ]
    assert {(m.sender, m.to, m.transport) for m in events.messages} == {(TO, SENDER, "smpp")}


@pytest.mark.parametrize("status", [RTHROTTLED, RMSGQFUL])
def test_p3_throttled_messages_are_not_taken_and_go_out_after_the_back_off(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]], status: int
) -> None:
    transport, _ = connect(smpp_window=1)
    smsc.faults.throttle_status, smsc.faults.throttle_next = status, 1
    first = transport.send_window([sms("A", 1), sms("B", 2), sms("C", 3)])
    # the first answer throttles the bind: nothing more is written until the back-off ends
    assert all(isinstance(o, NotTaken) for o in first), first
    assert smsc.received == []
    for _ in range(200):
        again = transport.send_window([sms("A", 1), sms("B", 2), sms("C", 3)])
        if not any(isinstance(o, NotTaken) for o in again):
            break
        time.sleep(0.02)
    assert all(isinstance(o, Submitted) for o in again), again
    assert smsc.wait_for(lambda: len(smsc.received) == 3)
    assert sorted(m.text for m in smsc.received) == ["A", "B", "C"]


def test_p3_connection_dropped_mid_window_written_unanswered_in_doubt_unwritten_not_taken(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    transport, _ = connect(smpp_window=4)
    smsc.faults.drop_at_submit = 6  # the 6th submit_sm is read, then the connection drops
    window = [sms(f"Melding {i}", i) for i in range(12)]
    outcomes = transport.send_window(window)
    taken = {m.text for m in smsc.received}
    for message, outcome in zip(window, outcomes, strict=True):
        if isinstance(outcome, Submitted):
            assert message.body in taken
        if isinstance(outcome, NotTaken):
            assert message.body not in taken
    # answered ones first, then those written but unanswered (at most a window); the rest were
    # not taken, or sent on the new connection if it was bound again before they were written
    kinds = "".join(type(o).__name__[0] for o in outcomes)
    assert re.fullmatch(r"S{1,5}I{1,4}[NS]*", kinds), kinds
    # it binds again by itself and sends the rest
    rest = window[5:]
    for _ in range(200):
        outcomes = transport.send_window(rest)
        if all(isinstance(o, Submitted) for o in outcomes):
            break
        time.sleep(0.05)
    assert all(isinstance(o, Submitted) for o in outcomes), outcomes
    assert smsc.binds == 2


def test_p3_out_of_order_and_late_answers_match_their_messages(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    smsc.faults.out_of_order, smsc.faults.delay = True, 0.01
    transport, _ = connect(smpp_window=8, smpp_binds=3)
    window = [sms(f"Svar {i}", i) for i in range(30)]
    outcomes = transport.send_window(window)
    ids_by_text = {m.text: m.message_ids for m in smsc.received}
    for message, outcome in zip(window, outcomes, strict=True):
        assert isinstance(outcome, Submitted)
        assert list(outcome.provider_ids) == ids_by_text[message.body]
    assert smsc.binds == 3


def test_p3_permanent_and_transient_refusals_are_rejected_with_the_smsc_code(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    transport, _ = connect(smpp_window=1)
    smsc.faults.throttle_status, smsc.faults.throttle_next = 0x0B, 1  # bad destination
    bad = transport.send_window([sms("A", 1)])[0]
    assert isinstance(bad, Rejected) and bad.permanent and bad.error_code == "0x0000000B"
    smsc.faults.throttle_status, smsc.faults.throttle_next = 0x08, 1  # system error
    flaky = transport.send_window([sms("B", 2)])[0]
    assert isinstance(flaky, Rejected) and not flaky.permanent


def test_p3_enquire_link_is_answered_and_sent_when_idle(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    connect(smpp_enquire_link_seconds=0.1)
    assert smsc.wait_for(lambda: smsc.enquire_links >= 2)
    smsc.send_enquire_link()
    assert smsc.wait_for(lambda: smsc.enquire_link_resps >= 1)


def test_p3_close_unbinds_and_a_wrong_password_is_a_transport_error(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    transport, _ = connect()
    transport.close()
    assert smsc.unbinds == 1
    with pytest.raises(TransportError):
        connect(smpp_password="wrong")


def test_p13_the_smsc_operator_is_declared_as_processor() -> None:
    with pytest.raises(TransportError):
        build(Settings(smpp_system_id="x"))
    transport = build(
        Settings(smpp_system_id="x", smpp_provider_name="SMSC AS", smpp_provider_country="se")
    )
    assert (transport.provider.name, transport.provider.country) == ("SMSC AS", "SE")


def self_signed(directory: Path) -> Path:
    """A certificate for 127.0.0.1 with its key, in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smsc.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "smsc.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_p3_smpp_over_tls_sends_and_receives(tmp_path: Path) -> None:
    pem = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    server = Smsc(users={"tilfreds": "secret"}).start(tls=context)
    transport = build(
        Settings(
            smpp_port=server.port,
            smpp_system_id="tilfreds",
            smpp_password="secret",
            smpp_tls=True,
            smpp_tls_ca_file=str(pem),
            smpp_provider_name="Test SMSC AS",
            smpp_provider_country="NO",
        )
    )
    events = Recorder()
    try:
        transport.start(events)
        outcomes = transport.send_window([sms(f"Kryptert æøå {i}", i) for i in range(20)])
        assert all(isinstance(o, Submitted) for o in outcomes), outcomes
        assert server.wait_for(lambda: len(events.all_receipts()) == 20)
        assert {m.text for m in server.received} == {f"Kryptert æøå {i}" for i in range(20)}
    finally:
        transport.close()
        server.stop()


def test_p3_while_the_smsc_is_down_nothing_is_taken_and_it_binds_again_when_back(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    transport, _ = connect()
    port = smsc.port
    smsc.stop()
    assert smsc.wait_for(lambda: not any(b.usable for b in transport.binds))
    down = transport.send_window([sms("A", 1), sms("B", 2)])
    assert all(isinstance(o, NotTaken) for o in down), down
    back = Smsc(users={"tilfreds": "secret"}).start(port=port)
    try:
        assert back.wait_for(lambda: back.binds == 1, timeout=15)
        outcomes = transport.send_window([sms("A", 1), sms("B", 2)])
        assert all(isinstance(o, Submitted) for o in outcomes), outcomes
        assert back.wait_for(lambda: {m.text for m in back.received} == {"A", "B"})
    finally:
        back.stop()


def test_p3_a_window_waiting_behind_one_the_smsc_never_answers_is_given_back_unsent(
    smsc: Smsc, connect: Callable[..., tuple[SmppTransport, Recorder]]
) -> None:
    """The next window is handed over while the last one's answers are due; when they do not
    come in time (the SMSC stalled), the connection is renewed: the last window is in doubt
    and the next was never written (not taken: it keeps its attempts)."""
    # the link looks alive (no enquire_link is due) while submit_sm answers are late
    transport, _ = connect(smpp_window=2, smpp_response_seconds=0.5, smpp_enquire_link_seconds=600)
    smsc.faults.delay = 20  # answers far later than the transport waits
    first = transport.hand([sms("A", 1), sms("B", 2)])
    second = transport.hand([sms("C", 3), sms("D", 4)])  # waits for room, then gives up
    assert all(isinstance(o, NotTaken) for o in second.outcomes())
    assert all(isinstance(o, InDoubt) for o in first.outcomes())
    assert smsc.wait_for(lambda: smsc.submits == 2)  # C and D never reached it
