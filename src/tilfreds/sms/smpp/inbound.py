"""What an SMSC delivers to us: delivery receipts and customers' messages (deliver_sm).

A receipt is read from its TLVs (receipted_message_id, message_state, network_error_code) and
from the SMPP 3.4 appendix B text (``id:… stat:DELIVRD err:… done date:…``), the TLVs winning;
its id is normalised to the form the submit_sm_resp id was stored in, whatever base each uses.
A customer's message is decoded by its data_coding and, when it came in concatenated segments
(UDH or SAR TLVs), held until all segments are in. Keeps P3 (status of each message), P7 (STOPP
replies reach the invitations domain).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import UTC, datetime

from tilfreds.sms.encoding import decode, parse_udh
from tilfreds.sms.smpp import pdus
from tilfreds.sms.transport import InboundSms, Receipt, ReceiptState

TRANSPORT = "smpp"

_STAT = {
    "DELIVRD": ReceiptState.DELIVERED,
    "EXPIRED": ReceiptState.EXPIRED,
    "DELETED": ReceiptState.FAILED,
    "UNDELIV": ReceiptState.FAILED,
    "REJECTD": ReceiptState.FAILED,
    "ACCEPTD": ReceiptState.ENROUTE,
    "ENROUTE": ReceiptState.ENROUTE,
    "UNKNOWN": ReceiptState.ENROUTE,
}
# message_state TLV values (SMPP 3.4, 5.2.28)
_STATE = {
    1: ReceiptState.ENROUTE,
    2: ReceiptState.DELIVERED,
    3: ReceiptState.EXPIRED,
    4: ReceiptState.FAILED,  # deleted
    5: ReceiptState.FAILED,  # undeliverable
    6: ReceiptState.ENROUTE,  # accepted
    7: ReceiptState.ENROUTE,  # unknown
    8: ReceiptState.FAILED,  # rejected
}
_FIELDS = re.compile(r"(id|stat|err|done date):(\S+)", re.IGNORECASE)


def normalise_id(value: str, base: int) -> str:
    """An SMSC message id in the form it is stored in: as text (base 0), or the decimal of its
    number in ``base`` (so ``1a`` in hex and ``26`` in decimal are the same message)."""
    value = value.strip()
    if base:
        try:
            return str(int(value, base))
        except ValueError:
            return value
    return value


def _when(value: str) -> datetime | None:
    """YYMMDDhhmm[ss] (the SMSC's clock; taken as UTC; 20YY, as strptime's %y takes 00-68).
    Read by hand: strptime took a tenth of the receipts' time."""
    if len(value) not in (10, 12) or not value.isascii() or not value.isdigit():
        return None
    year, month, day, hour, minute = (int(value[i : i + 2]) for i in range(0, 10, 2))
    second = int(value[10:12]) if len(value) == 12 else 0
    try:
        return datetime(
            (2000 if year < 69 else 1900) + year, month, day, hour, minute, second, tzinfo=UTC
        )
    except ValueError:
        return None


def receipt(sm: pdus.DeliverSm, *, submit_base: int, receipt_base: int) -> Receipt | None:
    """The delivery receipt a deliver_sm carries; None when it names no message."""
    fields = {k.lower(): v for k, v in _FIELDS.findall(sm.short_message.decode("latin-1"))}
    provider_id = None
    if pdus.TLV_RECEIPTED_MESSAGE_ID in sm.tlvs:
        tlv_id = pdus.c_string(sm.tlvs[pdus.TLV_RECEIPTED_MESSAGE_ID])
        provider_id = normalise_id(tlv_id, submit_base) if tlv_id else None
    if provider_id is None and "id" in fields:
        provider_id = normalise_id(fields["id"], receipt_base or submit_base)
    if provider_id is None:
        return None
    state = None
    if len(sm.tlvs.get(pdus.TLV_MESSAGE_STATE, b"")) == 1:
        state = _STATE.get(sm.tlvs[pdus.TLV_MESSAGE_STATE][0])
    if state is None:
        state = _STAT.get(fields.get("stat", "").upper(), ReceiptState.ENROUTE)
    error = None
    network = sm.tlvs.get(pdus.TLV_NETWORK_ERROR_CODE, b"")
    if len(network) == 3 and network[1:] != b"\x00\x00":
        error = f"{network[0]}:{int.from_bytes(network[1:], 'big')}"
    elif fields.get("err", "000").strip("0"):
        error = fields["err"]
    done = fields.get("done date")
    return Receipt(
        transport=TRANSPORT,
        provider_id=provider_id,
        state=state,
        at=_when(done) if done else None,
        error_code=error,
    )


def _number(sm: pdus.DeliverSm) -> str:
    """The customer's number, E.164 when the SMSC says it is international (TON 1)."""
    if sm.source_ton == 1 and sm.source.isdigit():
        return "+" + sm.source
    return sm.source


def _concat(sm: pdus.DeliverSm) -> tuple[tuple[int, int, int] | None, bytes]:
    """(reference, total, sequence) and the payload, from a UDH or the SAR TLVs."""
    if sm.esm_class & pdus.ESM_UDHI:
        info, payload = parse_udh(sm.short_message)
        if info is not None and info.total > 1:
            return (info.reference, info.total, info.sequence), payload
        return None, payload
    sar = sm.tlvs
    if pdus.TLV_SAR_MSG_REF_NUM in sar and pdus.TLV_SAR_TOTAL_SEGMENTS in sar:
        total = sar[pdus.TLV_SAR_TOTAL_SEGMENTS][0]
        sequence = sar.get(pdus.TLV_SAR_SEGMENT_SEQNUM, b"\x01")[0]
        if total > 1:
            reference = int.from_bytes(sar[pdus.TLV_SAR_MSG_REF_NUM], "big")
            return (reference, total, sequence), sm.short_message
    return None, sm.short_message


class Reassembly:
    """Customers' messages, whole: segments wait here until their message is complete. At most
    ``limit`` incomplete messages are kept; the oldest give way (a lost segment never comes)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._parts: OrderedDict[tuple[str, str, int, int], dict[int, bytes]] = OrderedDict()

    def add(self, sm: pdus.DeliverSm) -> InboundSms | None:
        concat, payload = _concat(sm)
        if concat is not None:
            reference, total, sequence = concat
            key = (sm.source, sm.destination, reference, total)
            parts = self._parts.setdefault(key, {})
            parts[sequence] = payload
            if len(parts) < total:
                while len(self._parts) > self.limit:
                    self._parts.popitem(last=False)
                return None
            del self._parts[key]
            payload = b"".join(parts[i] for i in sorted(parts))
        return InboundSms(
            transport=TRANSPORT,
            sender=_number(sm),
            to=sm.destination,
            text=decode(payload, sm.data_coding),
            received_at=datetime.now(UTC),
        )
