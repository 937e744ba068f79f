"""The Sinch adapter against a local emulator of Sinch's documented SMS REST API: sending, delivery
reports and replies through callbacks, authentication of callbacks, faults (P3, P7, P13/P14)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from tests.peers.http_checks import (
    mangled,
    reads_or_refuses_with_400,
    stopp_reaches_invitations,
    throttled_then_sent_once,
    through_the_real_route,
)
from tests.peers.http_emulator import CallbackRoute, callback_request, example, serving
from tests.peers.sinch_emulator import SinchEmulator
from tilfreds.app import create_app
from tilfreds.config import Settings
from tilfreds.errors import ConfigurationError
from tilfreds.runtime import Runtime, build_runtime
from tilfreds.sms import sinch
from tilfreds.sms.transport import (
    CallbackRefused,
    CallbackRequest,
    InboundSms,
    InDoubt,
    NotTaken,
    OutboundSms,
    Receipt,
    ReceiptState,
    Rejected,
    Submitted,
)
from tilfreds.sms_check import callback_urls

SECRET = "s" * 40
AUTH = ("sinch-callbacks", "cb-password")


def settings(tmp_path: Path, **overrides: str) -> Settings:
    values = {
        "data_dir": str(tmp_path),
        "sinch_service_plan_id": "jd63jf88477ll123ab4567cd89012ef3",
        "sinch_api_token": "sinch-token",
        "sms_callback_secret": SECRET,
        "sinch_callback_username": AUTH[0],
        "sinch_callback_password": AUTH[1],
        "public_url": "https://survey.example.no",
    } | overrides
    return Settings(**values)  # type: ignore[arg-type]


PARSER = sinch.build(settings(Path("var")))  # only parses: never started, sends nothing


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport]]:
    with CallbackRoute() as route, SinchEmulator(callback_auth=AUTH) as emulator:
        transport = sinch.build(
            settings(tmp_path, sinch_base_url=emulator.url, sinch_callback_base_url=route.base_url)
        )
        route.transport = transport
        emulator.mo_url = transport._auth.urls(route.base_url)["inbound"]
        transport.start(events=None)  # type: ignore[arg-type]  # callbacks come through the route
        yield emulator, route, transport
        transport.close()


def sms(
    n: int, body: str = "Hei Åse! Hvordan var det? Svar STOPP for å reservere deg"
) -> OutboundSms:
    return OutboundSms(to=f"+4799990{n:03d}", body=body, sender="2270", reference=str(n))


def test_p3_a_window_is_sent_as_batches_and_each_receipt_names_its_message(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, route, transport = peer
    window = [sms(n) for n in range(1, 21)]
    outcomes = transport.send_window(window)
    assert all(isinstance(o, Submitted) for o in outcomes)
    emulator.wait_callbacks()
    receipts = {e.reference: e for e in route.events if isinstance(e, Receipt)}
    for message, outcome in zip(window, outcomes, strict=True):
        assert isinstance(outcome, Submitted)
        receipt = receipts[message.reference]
        assert receipt.provider_id == outcome.provider_id
        assert receipt.state is ReceiptState.DELIVERED and receipt.transport == "sinch"
    sent = {b["client_reference"]: b for b in emulator.batches}
    assert sent["1"]["delivery_report"] == "per_recipient_final"
    assert sent["1"]["to"] == ["+4799990001"] and sent["1"]["from"] == "2270"


def test_p3_norwegian_and_ucs2_text_arrive_intact(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, _, transport = peer
    texts = ["Hei Ærlige Øystein på Åsen: æøå ÆØÅ €", "Takk for svaret “du” – ✓ 😊"]
    outcomes = transport.send_window([sms(n, body) for n, body in enumerate(texts)])
    assert [(o.encoding, o.segments) for o in outcomes if isinstance(o, Submitted)] == [
        ("GSM-7", 1),
        ("UCS-2", 1),
    ]
    arrived = {m["client_reference"]: m["body"] for m in emulator.batches}  # sent concurrently
    assert [arrived[str(n)] for n in range(len(texts))] == texts


def test_p7_a_reply_reaches_us_as_inbound(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, route, _ = peer
    emulator.inject_mo("+4799990001", "2270", "STOPP")
    emulator.wait_callbacks()
    [reply] = [e for e in route.events if isinstance(e, InboundSms)]
    assert (reply.sender, reply.to, reply.text) == ("+4799990001", "2270", "STOPP")


def test_p3_failed_and_expired_reports_carry_their_state_and_code(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, route, transport = peer
    emulator.outcomes = {"4799990001": ("Failed", 402), "4799990002": ("Expired", 404)}
    transport.send_window([sms(1), sms(2)])
    emulator.wait_callbacks()
    states = {e.reference: (e.state, e.error_code) for e in route.events if isinstance(e, Receipt)}
    assert states == {"1": (ReceiptState.FAILED, "402"), "2": (ReceiptState.EXPIRED, "404")}


def test_p3_throttled_429_or_5xx_is_not_taken(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, _, transport = peer
    emulator.fail_next(429, times=1)
    [first] = transport.send_window([sms(1)])
    assert isinstance(first, NotTaken)
    emulator.fail_next(503, times=100)
    outcomes = transport.send_window([sms(n) for n in range(2, 40)])
    assert all(isinstance(o, NotTaken) for o in outcomes)
    assert emulator.batches == []


def test_p3_after_a_429_the_rest_of_the_window_is_not_handed_over(tmp_path: Path) -> None:
    with SinchEmulator() as emulator:
        one_at_a_time = sinch.SinchTransport(
            base_url=emulator.url,
            service_plan_id=emulator.service_plan_id,
            api_token=emulator.api_token,
            receipt_url="http://127.0.0.1:9/sms/sinch/receipt/x",
            auth=sinch.build(settings(tmp_path))._auth,
            in_flight=1,
        )
        emulator.fail_next(429, times=1)  # only the first: the rest would be taken if sent
        outcomes = one_at_a_time.send_window([sms(n) for n in range(5)])
        one_at_a_time.close()
    assert all(isinstance(o, NotTaken) for o in outcomes) and emulator.batches == []


def test_p3_with_many_in_flight_a_message_reported_not_taken_was_never_taken(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    """Whatever the order the answers come in, a message the provider took is never reported
    ``NotTaken`` (it would be sent twice)."""
    emulator, _, transport = peer
    emulator.fail_next(429, times=3)
    outcomes = transport.send_window([sms(n) for n in range(60)])
    taken = {o.provider_id for o in outcomes if isinstance(o, Submitted)}
    assert all(isinstance(o, Submitted | NotTaken) for o in outcomes)
    assert taken == {sinch.provider_id(b["id"], b["to"][0]) for b in emulator.batches}
    assert len(taken) < 60


def test_p3_taken_without_an_id_is_in_doubt_never_failed(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, _, transport = peer
    emulator.fail_next(201)  # a 2xx whose body names no batch
    [outcome] = transport.send_window([sms(1)])
    assert isinstance(outcome, InDoubt)


def test_p3_a_bad_number_is_rejected_for_good_with_sinch_code(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    _, _, transport = peer
    bad = OutboundSms(to="+47abc", body="x", sender="2270", reference="9")
    [outcome, fine] = transport.send_window([bad, sms(1)])
    assert isinstance(outcome, Rejected) and outcome.permanent
    assert outcome.error_code == "syntax_invalid_parameter_format"
    assert isinstance(fine, Submitted)


def test_p3_a_wrong_token_is_not_taken_so_no_attempt_is_lost(tmp_path: Path) -> None:
    with SinchEmulator() as emulator:
        transport = sinch.build(
            settings(tmp_path, sinch_base_url=emulator.url, sinch_api_token="wrong")
        )
        [outcome] = transport.send_window([sms(1)])
        transport.close()
    assert isinstance(outcome, NotTaken)


def test_p3_a_repeated_report_reads_the_same_and_retries_reach_us(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    emulator, route, transport = peer
    emulator.report_copies = 2
    transport.send_window([sms(1)])
    emulator.wait_callbacks()
    first, second = route.events
    assert first == second  # the database sink records it once (idempotent on provider id)


def request(transport: sinch.SinchTransport, payload: object, **args: object) -> CallbackRequest:
    return callback_request(transport._auth.tokens, payload, **{"auth": AUTH, **args})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "forgery",
    [
        {"token": "0" * 40},
        {"token": ""},
        {"auth": None},
        {"auth": ("sinch-callbacks", "guess")},
        {"kind": "inbound"},  # the receipt URL's token does not open the inbound URL
    ],
)
def test_p7_forged_or_unauthenticated_callbacks_get_403(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport], forgery: dict[str, object]
) -> None:
    _, _, transport = peer
    args: dict[str, object] = {"token": transport._auth.tokens["receipt"]} | forgery
    report = example("sinch_recipient_delivery_report.json")
    with pytest.raises(CallbackRefused) as refused:
        transport.parse_callback(request(transport, report, **args))  # type: ignore[arg-type]
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"type": "recipient_delivery_report_sms"}).encode(),
        json.dumps({**example("sinch_recipient_delivery_report.json"), "status": "Odd"}).encode(),
        json.dumps({**example("sinch_recipient_delivery_report.json"), "at": "yesterday"}).encode(),
        json.dumps({**example("sinch_recipient_delivery_report.json"), "code": "0"}).encode(),
        json.dumps(
            {**example("sinch_recipient_delivery_report.json"), "recipient": "<b>"}
        ).encode(),
        b"[" * 100_000,
    ],
)
def test_p7_malformed_callbacks_get_400_without_echo(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport], body: bytes
) -> None:
    _, _, transport = peer
    with pytest.raises(CallbackRefused) as refused:
        transport.parse_callback(request(transport, None, body=body))
    assert refused.value.status == 400
    assert "<b>" not in str(refused.value) and "Odd" not in str(refused.value)


def test_p7_documented_examples_parse(
    peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport],
) -> None:
    _, _, transport = peer
    [receipt] = transport.parse_callback(
        request(transport, example("sinch_recipient_delivery_report.json"))
    )
    assert receipt == Receipt(
        transport="sinch",
        provider_id="01JB1J1M5BM5XQ8Q0ZWBM44E14:4799990000",
        state=ReceiptState.DELIVERED,
        at=receipt.at,
        reference="1",
    )
    [mo] = transport.parse_callback(
        request(transport, example("sinch_mo_text.json"), kind="inbound")
    )
    assert isinstance(mo, InboundSms) and mo.text == "STOPP" and mo.sender == "+4799990000"


@pytest.mark.parametrize("region", ["us", "au", "br", "ca", "mars"])
def test_p14_regions_outside_the_eea_are_refused(tmp_path: Path, region: str) -> None:
    with pytest.raises(ConfigurationError):
        sinch.build(settings(tmp_path, sinch_region=region))


def test_p14_the_default_is_the_eu_region_and_sinch_sweden_is_the_processor(
    tmp_path: Path,
) -> None:
    transport = sinch.build(settings(tmp_path))
    assert transport._batches.startswith("https://eu.sms.api.sinch.com/xms/v1/")
    assert (transport.provider.name, transport.provider.country) == ("Sinch Sweden AB", "SE")


@pytest.mark.parametrize(
    "overrides",
    [{"sms_callback_secret": "short"}, {"sinch_api_token": ""}, {"public_url": ""}],
)
def test_p3_unusable_settings_are_refused_at_start(
    tmp_path: Path, overrides: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError):
        sinch.build(settings(tmp_path, **overrides))


def test_p3_throttled_messages_wait_and_then_go_once_on_both_databases(
    rt: Runtime, peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport]
) -> None:
    emulator, _, transport = peer
    throttled_then_sent_once(
        rt, emulator, transport, lambda: [b["client_reference"] for b in emulator.batches]
    )


def test_p7_a_stopp_posted_by_sinch_closes_the_invitation(
    rt: Runtime, peer: tuple[SinchEmulator, CallbackRoute, sinch.SinchTransport]
) -> None:
    emulator, route, _ = peer
    stopp_reaches_invitations(
        rt, route, emulator, lambda phone: emulator.inject_mo(phone, "2270", "STOPP")
    )


def test_p3_p7_reports_and_replies_through_the_real_callback_route(
    rt: Runtime, tmp_path: Path
) -> None:
    with (
        serving(create_app(rt)) as base_url,
        SinchEmulator(callback_auth=AUTH) as emulator,
    ):
        transport = sinch.build(
            settings(tmp_path, sinch_base_url=emulator.url, sinch_callback_base_url=base_url)
        )
        emulator.mo_url = transport._auth.urls(base_url)["inbound"]
        emulator.report_copies = 2  # Sinch retries: the second changes nothing
        rt.transport = transport
        through_the_real_route(
            rt, emulator, transport, base_url, lambda p: emulator.inject_mo(p, "2270", "STOPP")
        )
        transport.close()


def test_p14_chosen_by_the_runtime_with_the_urls_sms_callbacks_prints(tmp_path: Path) -> None:
    """TILFREDS_SMS_TRANSPORT=sinch loads this adapter, with the callback secret generated on
    SQLite; the receipt URL each batch carries is the one ``tilfreds sms callbacks`` prints."""
    values = settings(tmp_path).model_dump() | {"sms_transport": "sinch", "sms_callback_secret": ""}
    rt = build_runtime(Settings(**values))
    transport = rt.transport
    assert isinstance(transport, sinch.SinchTransport)
    urls = callback_urls(rt)
    assert urls is not None and urls["receipt"] == transport._receipt_url
    assert urls["inbound"].startswith("https://survey.example.no/sms/sinch/inbound/")
    rt.db.dispose()


@pytest.mark.parametrize(
    ("kind", "name"),
    [("receipt", "sinch_recipient_delivery_report.json"), ("inbound", "sinch_mo_text.json")],
)
@settings_hypothesis(max_examples=150, deadline=None)
@given(data=st.data())
def test_p7_any_mangled_callback_is_read_or_refused_with_400(
    kind: str, name: str, data: st.DataObject
) -> None:
    reads_or_refuses_with_400(PARSER, kind, data.draw(mangled(example(name))), AUTH)
