"""The LINK Mobility adapter: the "Common" SMS REST API, receipts and replies posted to gates.

Keeps P3 (the invitation is sent by SMS, none lost), P7 (replies such as STOPP reach us) and
P13/P14 (LINK Mobility, Norway, is the processor). Payload shapes are those of LINK Mobility's
"SMS REST API - MT and Delivery Reports" and "SMS REST API - MO messages" documents
(https://www.linkmobility.com/developer/; the same "Common" platform is documented at
https://sergelpublic.atlassian.net/wiki/spaces/SC/pages/19169329/SMS+REST-API+MO):

- send: ``POST {base}/send`` (base e.g. ``https://n-eu.linkmobility.io/sms``), Basic auth, JSON
  ``source``/``sourceTON``/``destination``/``userData``/``platformId``/``platformPartnerId``/
  ``refId``/``useDeliveryReport``/``deliveryReportGates``; answer ``{"messageId", "resultCode":
  1005, "description": "Queued"}``;
- delivery reports POSTed to the gate: ``refId``, ``id`` (``{id}${n}`` per part of a long
  message), ``resultCode`` (1001 delivered, …), ``timestamp``;
- MO messages POSTed to the gate: ``source``, ``destination`` (``NO-2333``), ``content.userData``,
  ``messageId``, ``timestamp``.

LINK does not sign gate calls; gates support Basic auth, which we require, and each gate URL
carries its own secret token.
"""

from __future__ import annotations

import httpx

from tilfreds.config import Settings
from tilfreds.errors import ConfigurationError
from tilfreds.sms.http import (
    CallbackAuth,
    HttpTransport,
    e164,
    field,
    int_field,
    post_message,
    provider_receipt,
    timestamp,
)
from tilfreds.sms.transport import (
    CallbackRefused,
    InboundSms,
    OutboundSms,
    Outcome,
    Provider,
    Receipt,
    ReceiptState,
)

NAME = "linkmobility"
DELIVERED = 1001
# result codes of the delivery report table: "TEMP" states, and the final ones that are expiries;
# every other final code is a failure to deliver
_ENROUTE = frozenset({1000, 1005, 1008, 1011, 1012})
_DELIVERED = frozenset({DELIVERED, 1007})  # 1007: delivered, billing delayed
_EXPIRED = frozenset({1002, 1010})


def _state(result_code: int) -> ReceiptState:
    if result_code in _DELIVERED:
        return ReceiptState.DELIVERED
    if result_code in _ENROUTE:
        return ReceiptState.ENROUTE
    if result_code in _EXPIRED:
        return ReceiptState.EXPIRED
    return ReceiptState.FAILED


class LinkMobilityTransport(HttpTransport):
    name = NAME
    provider = Provider(name="LINK Mobility AS", country="NO")

    def __init__(
        self,
        *,
        base_url: str,
        username: str,
        password: str,
        platform_id: str,
        platform_partner_id: str,
        gate_id: str,
        source_ton: str,
        auth: CallbackAuth,
        in_flight: int = 16,
        timeout: float = 15.0,
    ) -> None:
        self._send_url = f"{base_url.rstrip('/')}/send"
        self._common = {
            "platformId": platform_id,
            "platformPartnerId": platform_partner_id,
            "useDeliveryReport": True,
            "deliveryReportGates": [gate_id],
            "dcs": "TEXT",  # LINK picks GSM-7 or UCS-2 and splits long messages
            "ignoreResponse": False,  # we need the messageId
        }
        self._source_ton = source_ton
        basic = httpx.BasicAuth(username, password)
        super().__init__(auth, in_flight=in_flight, timeout=timeout, auth=basic)

    def _source(self, sender: str) -> str:
        if self._source_ton == "MSISDN" and not sender.startswith("+"):
            return f"+{sender}"
        return sender

    def _send(self, client: httpx.Client, sms: OutboundSms) -> Outcome:
        message = {
            **self._common,
            "source": self._source(sms.sender),
            "sourceTON": self._source_ton,
            "destination": sms.to,
            "destinationTON": "MSISDN",
            "userData": sms.body,
            "refId": sms.reference,
        }
        return post_message(
            client,
            self._send_url,
            message,
            transport=NAME,
            body=sms.body,
            accepted=(200,),
            id_field="messageId",
            code_field="resultCode",
        )

    def _read(self, kind: str, payload: dict[str, object]) -> list[Receipt | InboundSms]:
        if kind == "receipt":
            return [_receipt(payload)]
        if kind == "inbound":
            return _inbound(payload)
        raise CallbackRefused(400, "unexpected callback kind")


def _receipt(payload: dict[str, object]) -> Receipt:
    code = int_field(payload, "resultCode")
    # each part of a long message gets its own report, as "{id}${n}": they all speak for the
    # message, under the id its send answer gave
    message_id = field(payload, "id").partition("$")[0]
    if not message_id:
        raise CallbackRefused(400, "missing or invalid field id")
    return provider_receipt(
        NAME,
        provider_id=message_id,
        state=_state(code),
        at=timestamp(payload, "timestamp"),
        code=code,
        reference=payload.get("refId"),
    )


def _inbound(payload: dict[str, object]) -> list[Receipt | InboundSms]:
    content = payload.get("content")
    if not isinstance(content, dict):
        raise CallbackRefused(400, "missing or invalid field content")
    if content.get("type", "SMS") != "SMS" or content.get("encoding", "TEXT") != "TEXT":
        return []  # binary content is not text a customer typed; acknowledged, not retried
    text = content.get("userData")
    if not isinstance(text, str):
        raise CallbackRefused(400, "missing or invalid field content.userData")
    # "NO-2333": our number, after the country it belongs to
    destination = field(payload, "destination").rpartition("-")[2]
    return [
        InboundSms(
            transport=NAME,
            sender=e164(field(payload, "source")),
            to=destination,
            text=text,
            received_at=timestamp(payload, "timestamp"),
            provider_id=field(payload, "messageId"),
        )
    ]


def build(settings: Settings) -> LinkMobilityTransport:
    """The adapter from ``TILFREDS_LINKMOBILITY_*``."""
    s = settings
    missing = [
        name
        for name, value in (
            ("USERNAME", s.linkmobility_username),
            ("PASSWORD", s.linkmobility_password),
            ("PLATFORM_ID", s.linkmobility_platform_id),
            ("PLATFORM_PARTNER_ID", s.linkmobility_platform_partner_id),
            ("GATE_ID", s.linkmobility_gate_id),
            ("CALLBACK_USERNAME", s.linkmobility_callback_username),
            ("CALLBACK_PASSWORD", s.linkmobility_callback_password),
        )
        if not value
    ]
    if missing:
        raise ConfigurationError(
            "set " + ", ".join(f"TILFREDS_LINKMOBILITY_{name}" for name in missing)
        )
    return LinkMobilityTransport(
        base_url=s.linkmobility_base_url,
        username=s.linkmobility_username,
        password=s.linkmobility_password,
        platform_id=s.linkmobility_platform_id,
        platform_partner_id=s.linkmobility_platform_partner_id,
        gate_id=s.linkmobility_gate_id,
        source_ton=s.linkmobility_source_ton,
        auth=CallbackAuth.checked(
            NAME,
            s.sms_callback_secret,
            username=s.linkmobility_callback_username,
            password=s.linkmobility_callback_password,
        ),
    )
