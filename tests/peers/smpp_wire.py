"""SMPP wire format for the SMSC simulator: command ids, status codes, the submit_sm/deliver_sm
body, concatenation headers, and a GSM 03.38 codec independent of tilfreds' own (its table comes
from smpplib), so the simulator checks tilfreds' encoding rather than repeating it."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from smpplib.gsm import GSM_CHARACTER_TABLE

BIND_RX, BIND_TX, BIND_TRX = 0x00000001, 0x00000002, 0x00000009
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000005, 0x00000006, 0x00000015
GENERIC_NACK, RESP = 0x80000000, 0x80000000
ROK, RINVBNDSTS, RINVPASWD, RINVSYSID = 0x00, 0x04, 0x0E, 0x0F
RTHROTTLED, RMSGQFUL = 0x58, 0x14
TLV_RECEIPTED_ID, TLV_MESSAGE_STATE, TLV_PAYLOAD = 0x001E, 0x0427, 0x0424
HEADER = struct.Struct(">IIII")


def gsm_decode(data: bytes) -> str:
    """Unpacked GSM 03.38 (one septet per octet) to text, extension table after 0x1B."""
    out, escape = [], False
    for b in data:
        if escape:
            out.append(GSM_CHARACTER_TABLE[0x80 + b])
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(GSM_CHARACTER_TABLE[b])
    return "".join(out)


def gsm_encode(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        i = GSM_CHARACTER_TABLE.index(ch)
        out += bytes([i]) if i < 0x80 else bytes([0x1B, i - 0x80])
    return bytes(out)


def decode(data: bytes, data_coding: int) -> str:
    if data_coding == 0x08:
        return data.decode("utf-16-be")
    if data_coding == 0x03:
        return data.decode("latin-1")
    return gsm_decode(data)


def cstr(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end], end + 1


@dataclass
class Sm:
    """The fields of a submit_sm / deliver_sm body that matter here."""

    source: str
    destination: str
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes]


def parse_sm(body: bytes) -> Sm:
    _, pos = cstr(body, 0)  # service_type
    pos += 2
    source, pos = cstr(body, pos)
    pos += 2
    dest, pos = cstr(body, pos)
    esm_class = body[pos]
    pos += 3
    _, pos = cstr(body, pos)  # schedule_delivery_time
    _, pos = cstr(body, pos)  # validity_period
    registered, data_coding, length = body[pos], body[pos + 2], body[pos + 4]
    pos += 5
    message = body[pos : pos + length]
    pos += length
    tlvs = {}
    while pos + 4 <= len(body):
        tag, size = struct.unpack_from(">HH", body, pos)
        tlvs[tag] = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
    if not message and TLV_PAYLOAD in tlvs:
        message = tlvs[TLV_PAYLOAD]
    return Sm(source.decode(), dest.decode(), esm_class, registered, data_coding, message, tlvs)


def build_sm(
    source: str,
    destination: str,
    message: bytes,
    *,
    esm_class: int = 0,
    data_coding: int = 0,
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A deliver_sm body (also a valid submit_sm body)."""
    body = (
        b"\x00\x01\x01"
        + source.encode()
        + b"\x00\x01\x01"
        + destination.encode()
        + b"\x00"
        + bytes([esm_class, 0, 0])
        + b"\x00\x00"
        + bytes([0, 0, data_coding, 0, len(message)])
        + message
    )
    for tag, value in tlvs:
        body += struct.pack(">HH", tag, len(value)) + value
    return body


def split_udh(esm_class: int, message: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """(reference, total, sequence) from a concatenation UDH (8- or 16-bit reference)."""
    if not esm_class & 0x40 or not message:
        return None, message
    udhl = message[0]
    header, rest = message[1 : 1 + udhl], message[1 + udhl :]
    pos = 0
    while pos + 2 <= len(header):
        iei, size = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + size]
        if iei == 0x00 and size == 3:
            return (value[0], value[1], value[2]), rest
        if iei == 0x08 and size == 4:
            return ((value[0] << 8) | value[1], value[2], value[3]), rest
        pos += 2 + size
    return None, rest
