"""One ESME connection of the SMSC simulator (``tests/peers/smsc.py``): the SMPP 3.4 PDUs it
reads and answers, with the fault switches of ``Faults`` applied to the answers."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from tests.peers.smpp_wire import (
    BIND_RX,
    BIND_TRX,
    BIND_TX,
    DELIVER_SM,
    ENQUIRE_LINK,
    GENERIC_NACK,
    HEADER,
    RESP,
    RINVBNDSTS,
    RINVPASWD,
    RINVSYSID,
    ROK,
    SUBMIT_SM,
    UNBIND,
    cstr,
    parse_sm,
)

if TYPE_CHECKING:
    from tests.peers.smsc import Smsc


class Session(asyncio.Protocol):
    """One ESME's connection: binds, answers submit_sm (with the simulator's fault switches),
    takes the message and queues its receipt, answers enquire_link and unbind."""

    def __init__(self, smsc: Smsc) -> None:
        self.smsc = smsc
        self.buffer = b""
        self.system_id = ""
        self.bound = 0
        self.sequence = 0
        self.transport: asyncio.Transport

    @property
    def receives(self) -> bool:
        return self.bound in (BIND_RX, BIND_TRX)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.smsc._sessions.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.smsc._sessions:
            self.smsc._sessions.remove(self)

    def request(self, command: int, body: bytes) -> None:
        if self.transport.is_closing():
            return
        self.sequence += 1
        self.transport.write(HEADER.pack(16 + len(body), command, 0, self.sequence) + body)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 16:
            length, command, status, sequence = HEADER.unpack_from(buf, pos)
            if len(buf) - pos < length:
                break
            body = buf[pos + 16 : pos + length]
            pos += length
            if self.handle(command, status, sequence, body, out) is False:
                self.buffer = b""
                return
        self.buffer = buf[pos:]
        if not out:
            return
        faults = self.smsc.faults
        if faults.out_of_order:
            out.reverse()
        if faults.delay:
            asyncio.get_running_loop().call_later(faults.delay, self._write, b"".join(out))
        else:
            self.transport.write(b"".join(out))

    def _write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    def handle(
        self, command: int, status: int, sequence: int, body: bytes, out: list[bytes]
    ) -> bool:
        smsc = self.smsc
        if command == DELIVER_SM | RESP:
            smsc.deliver_statuses.append(status)
            return True
        if command == ENQUIRE_LINK | RESP:
            smsc.enquire_link_resps += 1
            return True
        if command & RESP:
            return True  # unbind_resp
        if command in (BIND_RX, BIND_TX, BIND_TRX):
            system_id, pos = cstr(body, 0)
            password, _ = cstr(body, pos)
            sid = system_id.decode()
            status = ROK
            if smsc.users is not None:
                if sid not in smsc.users:
                    status = RINVSYSID
                elif smsc.users[sid] != password.decode():
                    status = RINVPASWD
            if status == ROK:
                self.system_id, self.bound = sid, command
                smsc.binds += 1
            out.append(HEADER.pack(21, command | RESP, status, sequence) + b"smsc\x00")
            if status == ROK and self.receives:
                for pdu in smsc._pending_receipts.pop(sid, []):
                    self.request(DELIVER_SM, pdu)
            return True
        if command == ENQUIRE_LINK:
            smsc.enquire_links += 1
            out.append(HEADER.pack(16, ENQUIRE_LINK | RESP, ROK, sequence))
            return True
        if command == UNBIND:
            smsc.unbinds += 1
            self.transport.write(b"".join(out) + HEADER.pack(16, UNBIND | RESP, ROK, sequence))
            out.clear()
            self.transport.close()
            return False
        if command == SUBMIT_SM:
            return self.submit(sequence, body, out)
        out.append(HEADER.pack(16, GENERIC_NACK, 0x03, sequence))
        return True

    def submit(self, sequence: int, body: bytes, out: list[bytes]) -> bool:
        smsc, faults = self.smsc, self.smsc.faults
        if self.bound not in (BIND_TX, BIND_TRX):
            out.append(HEADER.pack(17, SUBMIT_SM | RESP, RINVBNDSTS, sequence) + b"\x00")
            return True
        if faults.drop_at_submit is not None:
            faults.drop_at_submit -= 1
            if faults.drop_at_submit <= 0:
                faults.drop_at_submit = None
                self.transport.write(b"".join(out))  # what was answered before the drop
                out.clear()
                self.transport.abort()
                return False
        if faults.throttle_next > 0:
            faults.throttle_next -= 1
            out.append(
                HEADER.pack(17, SUBMIT_SM | RESP, faults.throttle_status, sequence) + b"\x00"
            )
            return True
        message_id, number = smsc.next_id()
        mid = message_id.encode() + b"\x00"
        out.append(HEADER.pack(16 + len(mid), SUBMIT_SM | RESP, ROK, sequence) + mid)
        sm = parse_sm(body)
        if smsc.record:
            source_ton = body[body.index(b"\x00") + 1]
            smsc.take(self.system_id, sm, message_id, source_ton)
        if sm.registered_delivery & 0x03:
            pdu = smsc.receipt(self.system_id, sm, message_id, number)
            if smsc.held_part is not None and smsc.part_of(sm) == smsc.held_part:
                smsc.held_receipts.append((self, pdu))
            elif smsc.receipt_delay:
                asyncio.get_running_loop().call_later(
                    smsc.receipt_delay, smsc.queue_receipt, self, pdu
                )
            else:
                smsc.queue_receipt(self, pdu)
        return True
