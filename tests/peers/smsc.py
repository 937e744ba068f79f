"""An SMPP 3.4 SMSC simulator: the far end of the SMPP adapter's tests and benchmark, and the SMSC
that Jasmin and Kannel connect to in the peer tests (P3: the evaluation goes out by SMS).

It binds ESMEs (transceiver, transmitter, receiver; system_id and password checked), answers
submit_sm with a message id (hex or decimal), sends delivery receipts as deliver_sm when
registered_delivery asks, records each message it took, reassembled by its UDH and decoded
independently of tilfreds' own codec (GSM 03.38 table from smpplib, UCS-2 via Python), injects
mobile-originated messages (split into concatenated segments if asked), and answers enquire_link.
Fault switches: drop the connection at the Nth submit, answer ESME_RTHROTTLED/ESME_RMSGQFUL for
the next N submits, delay responses, answer out of order.

PDUs are coded by hand with ``struct`` so one core sustains thousands of submit_sm/s; each
connection is a ``Session`` (``tests/peers/smsc_session.py``).
In-process: ``Smsc(...).start()`` runs it on its own event loop thread. As a process:
``python -m tests.peers.smsc --port 27750 --user tilfreds:secret``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.peers.smpp_wire import (
    DELIVER_SM,
    ENQUIRE_LINK,
    RMSGQFUL,
    RTHROTTLED,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_ID,
    Sm,
    build_sm,
    decode,
    gsm_encode,
    split_udh,
)
from tests.peers.smsc_session import Session

# what the peer tests import from here
__all__ = ["RMSGQFUL", "RTHROTTLED", "Faults", "Received", "Smsc", "build_sm"]


@dataclass
class Received:
    """One message the SMSC took, whole (all its segments) and decoded."""

    system_id: str
    source: str
    destination: str
    text: str
    data_coding: int
    segments: int
    message_ids: list[str]
    source_ton: int = 0


@dataclass
class Faults:
    drop_at_submit: int | None = None  # close the connection on receiving the Nth submit from now
    throttle_next: int = 0  # answer the next N submits with throttle_status (any error status)
    throttle_status: int = RTHROTTLED
    delay: float = 0.0  # seconds before each response
    out_of_order: bool = False  # answer the PDUs of one read in reverse order


@dataclass
class Smsc:
    users: dict[str, str] | None = None  # system_id -> password; None accepts anyone
    id_style: str = "hex"  # "hex" or "dec" in submit_sm_resp
    receipt_text_id_style: str | None = None  # the id in the receipt text, if it differs
    receipt_tlvs: bool = True
    receipt_stat: str = "DELIVRD"
    receipt_delay: float = 0.0
    undeliverable_part: int | None = None  # this part of each long message: stat:UNDELIV
    held_part: int | None = None  # this part's receipts wait for ``release_receipts``
    held_receipts: list[tuple[Session, bytes]] = field(default_factory=list)
    record: bool = True
    record_file: str | None = None
    id_base: int = 0x10000000
    faults: Faults = field(default_factory=Faults)
    received: list[Received] = field(default_factory=list)
    submits: int = 0
    enquire_links: int = 0
    enquire_link_resps: int = 0
    unbinds: int = 0
    deliver_statuses: list[int] = field(default_factory=list)  # our deliver_sm answered so
    binds: int = 0
    _sessions: list[Session] = field(default_factory=list)
    _parts: dict[tuple[str, str, str, int, int], dict[int, bytes]] = field(default_factory=dict)
    _part_ids: dict[tuple[str, str, str, int, int], dict[int, str]] = field(default_factory=dict)
    _pending_receipts: dict[str, list[bytes]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    port: int = 0

    # running ---------------------------------------------------------------------------------
    async def serve(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: Session(self), host, port, ssl=tls, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def start(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> Smsc:
        """Serve on a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.serve(host, port, tls))
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="smsc", daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        def shut() -> None:
            assert self._server is not None
            self._server.close()
            for s in list(self._sessions):
                s.transport.abort()
            loop.call_soon(loop.stop)  # after the aborts have closed their sockets

        loop.call_soon_threadsafe(shut)

    def call(self, fn: Callable[[], None]) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # test controls ---------------------------------------------------------------------------
    def drop_connections(self) -> None:
        def drop() -> None:
            for s in list(self._sessions):
                s.transport.abort()

        self.call(drop)

    def send_enquire_link(self) -> None:
        def enquire() -> None:
            for s in list(self._sessions):
                s.request(ENQUIRE_LINK, b"")

        self.call(enquire)

    def inject_mo(
        self, source: str, destination: str, text: str, *, segments: int = 1, ucs2: bool = False
    ) -> None:
        """A customer's message to one receiving session, in ``segments`` concatenated parts."""
        data = text.encode("utf-16-be") if ucs2 else gsm_encode(text)
        unit = 2 if ucs2 else 1
        count = max(1, min(segments, len(data) // unit))
        size = -(-len(data) // unit // count) * unit
        parts = [data[i : i + size] for i in range(0, len(data), size)]
        bodies = []
        for n, part in enumerate(parts, 1):
            if len(parts) == 1:
                bodies.append(build_sm(source, destination, part, data_coding=8 if ucs2 else 0))
            else:
                udh = bytes([5, 0, 3, 0x42, len(parts), n])
                bodies.append(
                    build_sm(
                        source,
                        destination,
                        udh + part,
                        esm_class=0x40,
                        data_coding=8 if ucs2 else 0,
                    )
                )

        def send() -> None:
            session = next((s for s in self._sessions if s.receives), None)
            assert session is not None, "no receiving session bound"
            for body in bodies:
                session.request(DELIVER_SM, body)

        self.call(send)

    def release_receipts(self) -> None:
        """Send the receipts ``held_part`` kept back (and keep no more)."""

        def release() -> None:
            self.held_part = None
            for origin, pdu in self.held_receipts:
                self.queue_receipt(origin, pdu)
            self.held_receipts.clear()

        self.call(release)

    # protocol --------------------------------------------------------------------------------
    def next_id(self) -> tuple[str, int]:
        self.submits += 1
        n = self.id_base + self.submits
        return (format(n, "x") if self.id_style == "hex" else str(n)), n

    @staticmethod
    def part_of(sm: Sm) -> int | None:
        """Which part of a long message ``sm`` is (1, 2, ...), by its UDH; None if alone."""
        concat, _ = split_udh(sm.esm_class, sm.short_message)
        return None if concat is None else concat[2]

    def receipt(self, system_id: str, sm: Sm, message_id: str, number: int) -> bytes:
        now = datetime.now(UTC).strftime("%y%m%d%H%M")
        style = self.receipt_text_id_style or self.id_style
        text_id = format(number, "x") if style == "hex" else str(number)
        stat, err = self.receipt_stat, "000"
        failing = self.undeliverable_part
        if failing is not None and self.part_of(sm) == failing:
            stat, err = "UNDELIV", "001"
        state = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}.get(stat, 7)
        short = (
            f"id:{text_id} sub:001 dlvrd:{'001' if state == 2 else '000'} submit date:{now}"
            f" done date:{now} stat:{stat} err:{err} text:"
        ).encode()
        tlvs = (
            (TLV_RECEIPTED_ID, message_id.encode() + b"\x00"),
            (TLV_MESSAGE_STATE, bytes([state])),
        )
        return build_sm(
            sm.destination, sm.source, short, esm_class=0x04, tlvs=tlvs if self.receipt_tlvs else ()
        )

    def take(self, system_id: str, sm: Sm, message_id: str, source_ton: int) -> None:
        udh, payload = split_udh(sm.esm_class, sm.short_message)
        if udh is None:
            whole, ids = payload, [message_id]
        else:
            reference, total, sequence = udh
            key = (system_id, sm.source, sm.destination, reference, total)
            self._parts.setdefault(key, {})[sequence] = payload
            self._part_ids.setdefault(key, {})[sequence] = message_id
            if len(self._parts[key]) < total:
                return
            parts, part_ids = self._parts.pop(key), self._part_ids.pop(key)
            whole = b"".join(parts[i] for i in sorted(parts))
            ids = [part_ids[i] for i in sorted(part_ids)]
        text = decode(whole, sm.data_coding)
        self._store(
            Received(
                system_id,
                sm.source,
                sm.destination,
                text,
                sm.data_coding,
                len(ids),
                ids,
                source_ton,
            )
        )

    def _store(self, message: Received) -> None:
        self.received.append(message)
        if self.record_file:
            with open(self.record_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(message.__dict__, ensure_ascii=False) + "\n")

    def queue_receipt(self, origin: Session, pdu_body: bytes) -> None:
        """To the session the message came on if it can receive and is still there, else to
        another receiving session of the same system_id, else kept until one binds."""
        system_id = origin.system_id
        session = origin if origin.receives and origin in self._sessions else None
        session = session or next(
            (s for s in self._sessions if s.receives and s.system_id == system_id), None
        )
        if session is None:
            self._pending_receipts.setdefault(system_id, []).append(pdu_body)
        else:
            session.request(DELIVER_SM, pdu_body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--user", action="append", help="system_id:password (default: anyone)")
    parser.add_argument("--id-style", choices=["hex", "dec"], default="hex")
    parser.add_argument("--receipt-text-id-style", choices=["hex", "dec"])
    parser.add_argument("--receipt-delay", type=float, default=0.0)
    parser.add_argument(
        "--no-record", action="store_true", help="do not reassemble or keep messages"
    )
    parser.add_argument("--record-file", help="append each message taken as a JSON line")
    parser.add_argument("--tls-cert", help="PEM certificate+key: serve SMPP over TLS")
    args = parser.parse_args()
    users = dict(u.split(":", 1) for u in args.user) if args.user else None
    smsc = Smsc(
        users=users,
        id_style=args.id_style,
        receipt_text_id_style=args.receipt_text_id_style,
        receipt_delay=args.receipt_delay,
        record=not args.no_record,
        record_file=args.record_file,
    )
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert)

    async def run() -> None:
        await smsc.serve(args.host, args.port, tls)
        print(f"smsc listening on {args.host}:{smsc.port}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
