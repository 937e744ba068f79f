"""Kannel's calls to tilfreds: delivery reports (dlr-url) and replies (MO get-url) are read right,
and a call without the URL's secret token is refused (P3, P7). The calls' shapes are the ones
the real Kannel makes in tests/test_kannel.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tilfreds.sms.kannel import DLR_QUERY, MO_QUERY, KannelTransport, answer_outcome
from tilfreds.sms.transport import (
    CallbackRefused,
    CallbackRequest,
    InboundSms,
    NotTaken,
    Provider,
    Receipt,
    ReceiptState,
    Rejected,
    Submitted,
    callback_token,
)

SECRET = "callback-secret-for-tests"


@pytest.fixture
def kannel() -> KannelTransport:
    return KannelTransport(
        sendsms_url="http://127.0.0.1:9/cgi-bin/sendsms",
        username="u",
        password="p",
        callback_base_url="http://tilfreds.internal:8000",
        callback_secret=SECRET,
        provider=Provider("Operator SMSC AS", "NO"),
    )


def call(kind: str, token: str | None = None, **query: str) -> CallbackRequest:
    return CallbackRequest(
        kind=kind,
        token=callback_token(SECRET, "kannel", kind) if token is None else token,
        method="GET",
        query=query,
        headers={},
        body=b"",
    )


def receipt(kannel: KannelTransport, **query: str) -> Receipt:
    (event,) = kannel.parse_callback(call("receipt", **query))
    assert isinstance(event, Receipt)
    return event


DELIVRD = "id:10000001 sub:001 dlvrd:001 submit date:2611252017 done date:2611252017 stat:DELIVRD"


def test_p3_a_delivered_report_is_keyed_on_our_reference(kannel: KannelTransport) -> None:
    event = receipt(kannel, ref="m-42", type="1", at="1795637880", reply=f"{DELIVRD} err:000")
    assert event == Receipt(
        transport="kannel",
        provider_id="m-42",
        state=ReceiptState.DELIVERED,
        at=datetime.fromtimestamp(1795637880, tz=UTC),
        error_code=None,
        reference="m-42",
    )


def test_p3_a_report_for_one_part_of_a_long_message_is_keyed_on_that_part(
    kannel: KannelTransport,
) -> None:
    event = receipt(kannel, ref="m-42", part="2", type="2", reply="id:7 stat:UNDELIV err:001")
    assert (event.provider_id, event.reference) == ("m-42/2", "m-42")
    assert (event.state, event.error_code) == (ReceiptState.FAILED, "001")


def test_p3_the_callback_urls_printed_for_kannel_carry_kannels_placeholders(
    kannel: KannelTransport,
) -> None:
    path = "/sms/kannel/inbound/" + callback_token(SECRET, "kannel", "inbound")
    assert kannel.callback_url("inbound", "https://elsewhere.example" + path) == (
        f"http://tilfreds.internal:8000{path}?{MO_QUERY}"
    )
    dlr = kannel.callback_url("receipt", "https://elsewhere.example/sms/kannel/receipt/t")
    assert dlr.startswith("http://tilfreds.internal:8000/sms/kannel/receipt/t?ref=")
    assert dlr.endswith(DLR_QUERY)


@pytest.mark.parametrize(
    ("kind", "reply", "state", "error_code"),
    [
        ("8", "ACK/", ReceiptState.ENROUTE, None),
        ("4", "", ReceiptState.ENROUTE, None),
        ("2", "id:1 stat:UNDELIV err:034", ReceiptState.FAILED, "034"),
        ("2", "id:1 stat:EXPIRED err:000", ReceiptState.EXPIRED, None),
        ("16", "NACK/0x00000045/Submit failed", ReceiptState.FAILED, "0x00000045"),
    ],
)
def test_p3_each_kind_of_report_gives_its_state(
    kannel: KannelTransport, kind: str, reply: str, state: ReceiptState, error_code: str | None
) -> None:
    event = receipt(kannel, ref="m-1", type=kind, at="", reply=reply)
    assert (event.state, event.error_code, event.at) == (state, error_code, None)


def test_p7_a_reply_reaches_tilfreds_as_inbound_sms(kannel: KannelTransport) -> None:
    (event,) = kannel.parse_callback(
        call(
            "inbound",
            **{"from": "+4791234567", "to": "+2270", "text": "STOPP æøå", "coding": "0"},
            charset="UTF-8",
            id="b3d27155-4eca-40f6-a961-414e9443b7b5",
            at="1795637865",
        )
    )
    assert event == InboundSms(
        transport="kannel",
        sender="+4791234567",
        to="+2270",
        text="STOPP æøå",
        received_at=datetime.fromtimestamp(1795637865, tz=UTC),
        provider_id="b3d27155-4eca-40f6-a961-414e9443b7b5",
    )


def test_p7_a_sender_in_international_00_form_becomes_e164(kannel: KannelTransport) -> None:
    (event,) = kannel.parse_callback(call("inbound", **{"from": "004791234567", "text": "4"}))
    assert isinstance(event, InboundSms)
    assert event.sender == "+4791234567"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "forged",
        callback_token(SECRET, "kannel", "inbound"),  # another URL's token
        callback_token("another installation", "kannel", "receipt"),
        callback_token(SECRET, "sinch", "receipt"),
    ],
)
def test_p3_a_receipt_without_its_urls_token_is_refused(
    kannel: KannelTransport, token: str
) -> None:
    with pytest.raises(CallbackRefused) as refused:
        kannel.parse_callback(call("receipt", token, ref="m-1", type="1"))
    assert refused.value.status == 403


def test_p7_a_forged_stopp_is_refused(kannel: KannelTransport) -> None:
    with pytest.raises(CallbackRefused) as refused:
        kannel.parse_callback(call("inbound", "x" * 32, **{"from": "+4791234567", "text": "STOPP"}))
    assert refused.value.status == 403


@pytest.mark.parametrize(
    ("kind", "query"),
    [
        ("receipt", {"type": "1"}),
        ("receipt", {"ref": "m-1"}),
        ("receipt", {"ref": "m-1", "type": "%d"}),  # a dlr-url Kannel did not fill in
        ("receipt", {"ref": "m-1", "type": "64"}),
        ("receipt", {"ref": "m-1", "type": "1", "part": "0"}),
        ("receipt", {"ref": "m-1", "type": "1", "part": "%d"}),
        ("receipt", {"ref": "m-1", "type": "1", "part": "9" * 5000}),
        ("inbound", {"text": "4"}),
        ("inbound", {"from": "+4791234567"}),
    ],
)
def test_p3_a_call_that_says_too_little_is_refused_with_400(
    kannel: KannelTransport, kind: str, query: dict[str, str]
) -> None:
    with pytest.raises(CallbackRefused) as refused:
        kannel.parse_callback(call(kind, **query))
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (202, "0: Accepted for delivery", Submitted),
        (202, "3: Queued for later delivery", Submitted),
        (503, "4: Temporal failure, try again later.", NotTaken),
        (500, "Sending failed.", NotTaken),
        (403, "Authorization failed for sendsms", NotTaken),
        (400, "Missing receiver number, rejected", Rejected),
        (413, "Too long", Rejected),
    ],
)
def test_p3_each_answer_of_kannel_gives_its_outcome(status: int, body: str, outcome: type) -> None:
    result = answer_outcome(status, body, "m-1")
    assert isinstance(result, outcome)
    if isinstance(result, Submitted):
        assert result.provider_ids == ("m-1",)  # receipts come keyed on our reference
