"""SMPP 3.4 PDUs on the wire: framing, and the few PDUs the adapter writes and reads.

Command ids, status codes and TLV tags come from smpplib; the bind is smpplib's PDU. The two PDUs
on the hot path (submit_sm out, deliver_sm in) are packed by hand: smpplib's generic PDU code
costs ~75 µs per submit_sm here, more than the rest of a message's way through the worker.
Keeps P3 (the evaluation is sent by SMS).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from smpplib import command_codes, consts, smpp

HEADER = struct.Struct(">IIII")
_TLV = struct.Struct(">HH")


def _code(name: str) -> int:
    return int(command_codes.get_command_code(name))


BIND_TRANSCEIVER = _code("bind_transceiver")
BIND_TRANSCEIVER_RESP = _code("bind_transceiver_resp")
SUBMIT_SM = _code("submit_sm")
SUBMIT_SM_RESP = _code("submit_sm_resp")
DELIVER_SM = _code("deliver_sm")
DELIVER_SM_RESP = _code("deliver_sm_resp")
ENQUIRE_LINK = _code("enquire_link")
ENQUIRE_LINK_RESP = _code("enquire_link_resp")
UNBIND = _code("unbind")
UNBIND_RESP = _code("unbind_resp")
GENERIC_NACK = _code("generic_nack")

ROK = int(consts.SMPP_ESME_ROK)
RTHROTTLED = int(consts.SMPP_ESME_RTHROTTLED)
RMSGQFUL = int(consts.SMPP_ESME_RMSGQFUL)
RX_T_APPN = int(consts.SMPP_ESME_RX_T_APPN)  # temporary application error: deliver again later
RINVCMDID = int(consts.SMPP_ESME_RINVCMDID)
BUSY = frozenset({RTHROTTLED, RMSGQFUL})
# errors about the message itself: sending it again cannot help
PERMANENT = frozenset(
    {
        0x01,  # message length invalid
        0x0A,  # source address invalid
        0x0B,  # destination address invalid
        0x33,  # number of destinations invalid
        0x43,  # esm_class invalid
        0x48,  # source TON invalid
        0x49,  # source NPI invalid
        0x50,  # destination TON invalid
        0x51,  # destination NPI invalid
        0x62,  # expiry time invalid
        0xC0,  # optional parameter invalid
        0xC1,  # optional parameter not allowed
        0xC2,  # optional parameter length invalid
    }
)
AUTH_FAILURES = frozenset({0x0D, 0x0E, 0x0F})  # bind failed, password invalid, system_id invalid

TLV_RECEIPTED_MESSAGE_ID = int(consts.OPTIONAL_PARAMS["receipted_message_id"])
TLV_MESSAGE_STATE = int(consts.OPTIONAL_PARAMS["message_state"])
TLV_NETWORK_ERROR_CODE = int(consts.OPTIONAL_PARAMS["network_error_code"])
TLV_MESSAGE_PAYLOAD = int(consts.OPTIONAL_PARAMS["message_payload"])
TLV_SAR_MSG_REF_NUM = int(consts.OPTIONAL_PARAMS["sar_msg_ref_num"])
TLV_SAR_TOTAL_SEGMENTS = int(consts.OPTIONAL_PARAMS["sar_total_segments"])
TLV_SAR_SEGMENT_SEQNUM = int(consts.OPTIONAL_PARAMS["sar_segment_seqnum"])

ESM_UDHI = 0x40
ESM_RECEIPT = 0x04  # SMSC delivery receipt (message type bits 2-5)


def header_only(command: int, sequence: int, status: int = ROK) -> bytes:
    return HEADER.pack(16, command, status, sequence)


def deliver_sm_resp(sequence: int, status: int = ROK) -> bytes:
    return HEADER.pack(17, DELIVER_SM_RESP, status, sequence) + b"\x00"


def bind_transceiver(sequence: int, system_id: str, password: str, system_type: str) -> bytes:
    pdu = smpp.make_pdu(
        "bind_transceiver",
        sequence=sequence,
        system_id=system_id,
        password=password,
        system_type=system_type,
        interface_version=0x34,
    )
    return bytes(pdu.generate())


@dataclass(frozen=True)
class Address:
    ton: int
    npi: int
    digits: bytes


def submit_sm(
    sequence: int,
    source: Address,
    destination: Address,
    short_message: bytes,
    *,
    esm_class: int,
    data_coding: int,
) -> bytes:
    """A submit_sm asking for a delivery receipt (registered_delivery 1)."""
    body = b"".join(
        (
            b"\x00",  # service_type: default
            bytes((source.ton, source.npi)),
            source.digits,
            b"\x00",
            bytes((destination.ton, destination.npi)),
            destination.digits,
            b"\x00",
            # esm_class, protocol_id, priority_flag, schedule_delivery_time "", validity ""
            bytes((esm_class, 0, 0, 0, 0)),
            # registered_delivery, replace_if_present, data_coding, sm_default_msg_id, length
            bytes((1, 0, data_coding, 0, len(short_message))),
            short_message,
        )
    )
    return HEADER.pack(16 + len(body), SUBMIT_SM, 0, sequence) + body


@dataclass(frozen=True)
class DeliverSm:
    source_ton: int
    source: str
    destination: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes]

    @property
    def is_receipt(self) -> bool:
        return self.esm_class & 0x3C == ESM_RECEIPT


def _cstr(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end], end + 1


def parse_deliver_sm(body: bytes) -> DeliverSm:
    """The body of a deliver_sm; raises ValueError (or IndexError) when it is malformed."""
    _, pos = _cstr(body, 0)  # service_type
    source_ton = body[pos]
    source, pos = _cstr(body, pos + 2)
    destination, pos = _cstr(body, pos + 2)
    esm_class = body[pos]
    _, pos = _cstr(body, pos + 3)  # schedule_delivery_time
    _, pos = _cstr(body, pos)  # validity_period
    data_coding, length = body[pos + 2], body[pos + 4]
    pos += 5
    short_message = body[pos : pos + length]
    if len(short_message) != length:
        raise ValueError("short_message runs past the PDU")
    pos += length
    tlvs: dict[int, bytes] = {}
    while pos + 4 <= len(body):
        tag, size = _TLV.unpack_from(body, pos)
        tlvs[tag] = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
    if not short_message and TLV_MESSAGE_PAYLOAD in tlvs:
        short_message = tlvs[TLV_MESSAGE_PAYLOAD]
    return DeliverSm(
        source_ton,
        source.decode("latin-1"),
        destination.decode("latin-1"),
        esm_class,
        data_coding,
        short_message,
        tlvs,
    )


def c_string(value: bytes) -> str:
    """A C-octet string TLV's text, without its terminating NUL."""
    return value.split(b"\x00", 1)[0].decode("latin-1")


class Frames:
    """Cuts a byte stream into PDUs: (command, status, sequence, body)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, int, int, bytes]]:
        buf = self._buffer + data if self._buffer else data
        frames = []
        pos, end = 0, len(buf)
        while end - pos >= 16:
            length, command, status, sequence = HEADER.unpack_from(buf, pos)
            if length < 16:
                raise ValueError(f"PDU length {length} is shorter than its header")
            if end - pos < length:
                break
            frames.append((command, status, sequence, buf[pos + 16 : pos + length]))
            pos += length
        self._buffer = buf[pos:]
        return frames
