"""The SMPP adapter's parts that need no peer: rate limit, receipt reading, id bases, addresses,
reassembly by SAR TLVs, framing. Proves P3 (receipts match their messages whatever base the SMSC
writes ids in; the per-bind rate is never exceeded) and P7 (replies reassembled).
"""

from __future__ import annotations

import itertools
import struct

from tests.peers.smsc import build_sm
from tilfreds.sms.smpp import pdus
from tilfreds.sms.smpp.inbound import Reassembly, normalise_id, receipt
from tilfreds.sms.smpp.session import RateLimit
from tilfreds.sms.smpp.transport import address
from tilfreds.sms.transport import ReceiptState


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_p3_rate_limit_spaces_submits_evenly_and_never_bursts() -> None:
    clock = FakeClock()
    limit = RateLimit(50, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(1500):  # 30 s at 50/s
        limit.acquire()
        times.append(clock.now)
        clock.now += 0.001  # the submit itself takes a little time
    assert abs((times[-1] - times[0]) - 1499 / 50) < 1e-6
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 50 - 1e-9
    # in every 1-second span there are at most 50 submits (less a rounding hair)
    assert max(sum(1 for t in times if s <= t < s + 1 - 1e-9) for s in times) <= 50


def test_p3_rate_limit_after_idle_does_not_catch_up_with_a_burst() -> None:
    clock = FakeClock()
    limit = RateLimit(10, clock=clock, sleep=clock.sleep)
    limit.acquire()
    clock.now += 5  # idle
    limit.acquire()
    limit.acquire()
    assert abs(clock.slept - 0.1) < 1e-9
    assert RateLimit(0, clock=clock, sleep=clock.sleep).interval == 0


def receipt_pdu(text: str, tlvs: tuple[tuple[int, bytes], ...] = ()) -> pdus.DeliverSm:
    return pdus.parse_deliver_sm(
        build_sm("4791234567", "2270", text.encode(), esm_class=0x04, tlvs=tlvs)
    )


def test_p3_receipt_ids_in_hex_or_decimal_normalise_to_the_same_message() -> None:
    assert normalise_id("1A", 16) == normalise_id("26", 10) == "26"
    assert normalise_id(" abc-1 ", 0) == "abc-1"
    assert normalise_id("not-hex", 16) == "not-hex"
    text = (
        "id:26 sub:001 dlvrd:001 submit date:2611251200 done date:2611251201"
        " stat:DELIVRD err:000 text:Hei"
    )
    r = receipt(receipt_pdu(text), submit_base=16, receipt_base=10)
    assert r is not None and r.provider_id == "26" and r.state == ReceiptState.DELIVERED
    assert r.at is not None and (r.at.hour, r.at.minute) == (12, 1)
    tlv = ((pdus.TLV_RECEIPTED_MESSAGE_ID, b"1a\x00"), (pdus.TLV_MESSAGE_STATE, b"\x05"))
    r = receipt(receipt_pdu("id:99 stat:DELIVRD err:000", tlv), submit_base=16, receipt_base=10)
    assert r is not None and r.provider_id == "26" and r.state == ReceiptState.FAILED  # TLVs win


def test_p3_receipt_states_and_error_codes() -> None:
    expected = {
        "DELIVRD": ReceiptState.DELIVERED,
        "EXPIRED": ReceiptState.EXPIRED,
        "UNDELIV": ReceiptState.FAILED,
        "REJECTD": ReceiptState.FAILED,
        "DELETED": ReceiptState.FAILED,
        "ENROUTE": ReceiptState.ENROUTE,
        "ACCEPTD": ReceiptState.ENROUTE,
    }
    for stat, state in expected.items():
        r = receipt(receipt_pdu(f"id:7 stat:{stat} err:000"), submit_base=0, receipt_base=0)
        assert r is not None and r.state == state and r.error_code is None
    r = receipt(receipt_pdu("id:7 stat:UNDELIV err:00B"), submit_base=0, receipt_base=0)
    assert r is not None and r.error_code == "00B"
    network = ((pdus.TLV_NETWORK_ERROR_CODE, b"\x03\x00\x22"),)
    r = receipt(receipt_pdu("id:7 stat:UNDELIV err:000", network), submit_base=0, receipt_base=0)
    assert r is not None and r.error_code == "3:34"
    assert receipt(receipt_pdu("stat:DELIVRD"), submit_base=0, receipt_base=0) is None


def test_p3_addresses_numeric_international_and_alphanumeric() -> None:
    assert address("+4791234567", 0, 1) == pdus.Address(1, 1, b"4791234567")
    assert address("2270", 3, 0) == pdus.Address(3, 0, b"2270")
    assert address("Tilfreds", 0, 1) == pdus.Address(5, 0, b"Tilfreds")


def test_p7_reassembly_by_sar_tlvs_and_a_bounded_wait_for_lost_segments() -> None:
    def part(ref: int, total: int, seq: int, text: str) -> pdus.DeliverSm:
        tlvs = (
            (pdus.TLV_SAR_MSG_REF_NUM, struct.pack(">H", ref)),
            (pdus.TLV_SAR_TOTAL_SEGMENTS, bytes([total])),
            (pdus.TLV_SAR_SEGMENT_SEQNUM, bytes([seq])),
        )
        return pdus.parse_deliver_sm(build_sm("4791234567", "2270", text.encode(), tlvs=tlvs))

    reassembly = Reassembly(limit=2)
    assert reassembly.add(part(300, 2, 2, "verden")) is None
    whole = reassembly.add(part(300, 2, 1, "hei "))
    assert whole is not None and whole.text == "hei verden" and whole.sender == "+4791234567"
    for ref in range(5):  # incomplete messages beyond the limit give way, oldest first
        reassembly.add(part(ref, 2, 1, "x"))
    assert reassembly.add(part(0, 2, 2, "y")) is None
    done = reassembly.add(part(4, 2, 2, "y"))
    assert done is not None and done.text == "xy"


def test_p3_frames_are_cut_whatever_the_reads() -> None:
    stream = b"".join(pdus.header_only(pdus.ENQUIRE_LINK, n) for n in range(1, 4))
    stream += pdus.deliver_sm_resp(4)
    frames = pdus.Frames()
    got = []
    for i in range(0, len(stream), 7):
        got += frames.feed(stream[i : i + 7])
    assert [(c, s) for c, _, s, _ in got] == [
        (pdus.ENQUIRE_LINK, 1),
        (pdus.ENQUIRE_LINK, 2),
        (pdus.ENQUIRE_LINK, 3),
        (pdus.DELIVER_SM_RESP, 4),
    ]


def test_p3_rate_limit_keeps_its_schedule_when_a_submit_runs_late() -> None:
    clock = FakeClock()
    limit = RateLimit(100, clock=clock, sleep=clock.sleep)
    start = clock.now
    for i in range(3000):
        limit.acquire()
        clock.now += 0.012 if i % 10 == 0 else 0.001  # now and then a submit overruns its slot
    # 3000 submits at 100/s take 30 s: the overruns were made up, not lost
    assert abs((clock.now - start) - 30.0) < 0.05
