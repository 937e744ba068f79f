"""The Kannel transport against the real Kannel (Debian's bearerbox and smsbox) in front of the
SMSC simulator: what tilfreds sends arrives intact at the SMSC, Kannel's delivery reports and the
customers' replies come back to tilfreds' callback URLs and read right, and each kind of answer
from Kannel gives the outcome the worker needs (P3, P7). Skipped without Kannel, unless
TILFREDS_REQUIRE_PEERS=1 (CI)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.peers.kannel import PORT_BASE, Kannel, simulator, start_kannel
from tests.peers.smsc import Smsc
from tilfreds.sms.kannel import MO_QUERY, KannelTransport
from tilfreds.sms.transport import (
    CallbackRequest,
    InboundSms,
    InDoubt,
    NotTaken,
    OutboundSms,
    Provider,
    Receipt,
    ReceiptState,
    Rejected,
    Submitted,
    callback_path,
)

SECRET = "kannel-test-callback-secret"
CALLBACK_PORT = PORT_BASE + 14


class Recorder(ThreadingHTTPServer):
    """tilfreds' callback route as Kannel sees it: records each call, answers 200."""

    def __init__(self, port: int) -> None:
        self.calls: list[CallbackRequest] = []
        super().__init__(("127.0.0.1", port), _Handler)

    def events(self, kannel: KannelTransport) -> list[Receipt | InboundSms]:
        return [event for call in list(self.calls) for event in kannel.parse_callback(call)]


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        _, _, _, kind, token = url.path.split("/")
        self.server.calls.append(
            CallbackRequest(kind, token, "GET", dict(parse_qsl(url.query)), {}, b"")
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder(CALLBACK_PORT)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def smsc() -> Iterator[Smsc]:
    server = simulator()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, smsc: Smsc, recorder: Recorder
) -> Iterator[Kannel]:
    base = f"http://127.0.0.1:{CALLBACK_PORT}"
    inbound = base + callback_path(SECRET, "kannel", "inbound")
    peer = start_kannel(tmp_path_factory.mktemp("kannel"), smsc, inbound)
    yield peer
    peer.stop()


def transport(url: str, *, password: str = "ks-pass") -> KannelTransport:
    return KannelTransport(
        sendsms_url=url,
        username="tilfreds",
        password=password,
        callback_base_url=f"http://127.0.0.1:{CALLBACK_PORT}",
        callback_secret=SECRET,
        provider=Provider("Test SMSC", "NO"),
        smsc="sim",
        in_flight=4,
    )


@pytest.fixture
def kannel(gateway: Kannel) -> Iterator[KannelTransport]:
    t = transport(gateway.sendsms_url)
    yield t
    t.close()


def sms(n: int, body: str) -> OutboundSms:
    return OutboundSms(to=f"+47912{n:05d}", body=body, sender="2270", reference=f"ref-{n}")


def arrived(smsc: Smsc, to: str) -> str:
    assert smsc.wait_for(lambda: any(m.destination == to.lstrip("+") for m in smsc.received))
    return next(m.text for m in smsc.received if m.destination == to.lstrip("+"))


NORWEGIAN = "Hei Åse! Hvordan var besøket hos Ærlig Øl & Bær? Svar 1-5, eller STOPP."
LONG = "Takk for besøket på kontoret vårt i Tromsø. " * 4  # 180 GSM-7 characters: two parts


def test_p3_norwegian_text_and_two_segments_arrive_whole_with_receipts(
    kannel: KannelTransport, smsc: Smsc, recorder: Recorder
) -> None:
    window = [sms(1, NORWEGIAN), sms(2, LONG), sms(3, "Привет Åse ☺")]
    outcomes = kannel.send_window(window)
    assert outcomes == [
        Submitted(("ref-1",), segments=1, encoding="GSM-7"),
        Submitted(("ref-2/1", "ref-2/2"), segments=2, encoding="GSM-7"),
        Submitted(("ref-3",), segments=1, encoding="UCS-2"),
    ]
    assert arrived(smsc, window[0].to) == NORWEGIAN
    assert arrived(smsc, window[1].to) == LONG
    assert arrived(smsc, window[2].to) == "Привет Åse ☺"
    two = next(m for m in smsc.received if m.destination == window[1].to.lstrip("+"))
    assert (two.segments, two.data_coding) == (2, 0)

    def delivered() -> set[str]:
        return {
            e.provider_id
            for e in recorder.events(kannel)
            if isinstance(e, Receipt) and e.state is ReceiptState.DELIVERED
        }

    everything = {"ref-1", "ref-2/1", "ref-2/2", "ref-3"}  # each part of ref-2 has its receipt
    assert smsc.wait_for(lambda: everything <= delivered(), timeout=15)


def test_p3_each_part_of_a_long_message_reports_alone_and_a_failed_one_says_so(
    kannel: KannelTransport, smsc: Smsc, recorder: Recorder
) -> None:
    """Kannel asks a receipt for the first part only when it splits a text itself; tilfreds sends
    the parts itself, so the SMSC's UNDELIV for the second part comes back as that part's."""
    smsc.undeliverable_part = 2
    try:
        long_ucs2 = "Hvordan var besøket? 😀 " * 4  # UCS-2 (the emoji), 96 units: two parts
        window = [sms(4, LONG), sms(5, long_ucs2)]
        assert kannel.send_window(window) == [
            Submitted(("ref-4/1", "ref-4/2"), segments=2, encoding="GSM-7"),
            Submitted(("ref-5/1", "ref-5/2"), segments=2, encoding="UCS-2"),
        ]
        assert arrived(smsc, window[0].to) == LONG
        assert arrived(smsc, window[1].to) == long_ucs2

        def final() -> dict[str, tuple[ReceiptState, str | None]]:
            return {
                e.provider_id: (e.state, e.error_code)
                for e in recorder.events(kannel)
                if isinstance(e, Receipt)
                and e.reference in ("ref-4", "ref-5")
                and e.state is not ReceiptState.ENROUTE
            }

        assert smsc.wait_for(lambda: len(final()) == 4, timeout=15), final()
        assert final() == {
            "ref-4/1": (ReceiptState.DELIVERED, None),
            "ref-4/2": (ReceiptState.FAILED, "001"),
            "ref-5/1": (ReceiptState.DELIVERED, None),
            "ref-5/2": (ReceiptState.FAILED, "001"),
        }
    finally:
        smsc.undeliverable_part = None


def test_p7_replies_from_the_smsc_reach_tilfreds_as_inbound(
    kannel: KannelTransport, gateway: Kannel, smsc: Smsc, recorder: Recorder
) -> None:
    smsc.inject_mo("4798700001", "2270", "STOPP")
    smsc.inject_mo("4798700002", "2270", "4 Veldig bra, takk! æøå", segments=1)
    smsc.inject_mo("4798700003", "2270", "Отлично 👍", ucs2=True)

    def replies() -> dict[str, str]:
        return {e.sender: e.text for e in recorder.events(kannel) if isinstance(e, InboundSms)}

    expected = {
        "+4798700001": "STOPP",
        "+4798700002": "4 Veldig bra, takk! æøå",
        "+4798700003": "Отлично 👍",
    }
    assert smsc.wait_for(lambda: expected.items() <= replies().items(), timeout=15), replies()
    assert f"?{MO_QUERY}" in (gateway.folder / "kannel.conf").read_text()


def test_p3_a_wrong_password_takes_nothing_and_sends_nothing(gateway: Kannel, smsc: Smsc) -> None:
    before = len(smsc.received)
    t = transport(gateway.sendsms_url, password="wrong")
    try:
        outcomes = t.send_window([sms(10, "Hei"), sms(11, "Hei")])
    finally:
        t.close()
    assert [type(o) for o in outcomes] == [NotTaken, NotTaken]
    assert "403" in outcomes[0].reason  # type: ignore[union-attr]
    assert len(smsc.received) == before


def test_p3_a_message_kannel_refuses_is_rejected_alone(kannel: KannelTransport) -> None:
    outcomes = kannel.send_window([sms(20, "Hei"), OutboundSms("", "Hei", "2270", "ref-bad")])
    assert isinstance(outcomes[0], Submitted)
    assert isinstance(outcomes[1], Rejected) and outcomes[1].permanent
    assert outcomes[1].error_code == "400"


def test_p3_kannel_not_listening_takes_nothing(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = transport(f"http://127.0.0.1:{port}/cgi-bin/sendsms")
    try:
        outcomes = t.send_window([sms(30, "Hei"), sms(31, "Hei"), sms(32, "Hei")])
    finally:
        t.close()
    assert all(isinstance(o, NotTaken) for o in outcomes)


def test_p3_an_answer_lost_after_sending_leaves_the_message_in_doubt() -> None:
    """A gateway that reads the whole request, then drops the connection without answering."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def drop() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.close()

        threading.Thread(target=drop, daemon=True).start()
        t = transport(f"http://127.0.0.1:{port}/cgi-bin/sendsms")
        try:
            outcomes = t.send_window([sms(40, "Hei")])
        finally:
            t.close()
    assert [type(o) for o in outcomes] == [InDoubt]


def test_p3_a_window_is_sent_with_several_requests_open_at_once() -> None:
    """A gateway that answers nothing until four requests are open at the same time."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        open_at_once: list[int] = []

        def serve() -> None:
            conns = []
            for _ in range(4):
                conn, _ = server.accept()
                conn.recv(65536)
                conns.append(conn)
            open_at_once.append(len(conns))
            for conn in conns:
                conn.sendall(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 24\r\n\r\n0: Accepted for delivery"
                )
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        t = transport(f"http://127.0.0.1:{port}/cgi-bin/sendsms")
        try:
            outcomes = t.send_window([sms(50 + n, "Hei") for n in range(4)])
        finally:
            t.close()
    assert open_at_once == [4]
    assert [o.provider_id for o in outcomes if isinstance(o, Submitted)] == [
        f"ref-{50 + n}" for n in range(4)
    ]


def test_p3_a_long_message_kannel_stops_taking_halfway_fails_and_is_not_sent_again() -> None:
    """A gateway that takes the first part and answers 503 to the second: the first part went
    out, so sending the message again would repeat it; it fails, with the code ``partial``."""
    answers = iter([(202, b"0: Accepted for delivery"), (503, b"4: Temporal failure")])

    class Halfway(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = next(answers)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Halfway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    t = transport(f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/sendsms")
    try:
        (outcome,) = t.send_window([sms(60, LONG)])
    finally:
        t.close()
        server.shutdown()
        server.server_close()
    assert isinstance(outcome, Rejected)
    assert (outcome.permanent, outcome.error_code) == (True, "partial")
