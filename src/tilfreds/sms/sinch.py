"""The Sinch adapter: the SMS REST API ("xms") in Sinch's EU region; receipts, replies by callback.

Keeps P3 (the invitation is sent by SMS, none lost: throttling and outages leave messages queued),
P7 (replies such as STOPP reach us) and P13/P14 (Sinch is the processor; only its EU region is
accepted). Payload shapes are those documented by Sinch:

- send: https://developers.sinch.com/docs/sms/api-reference/sms/batches (``POST
  /xms/v1/{service_plan_id}/batches``, Bearer token, answer ``201`` with the batch ``id``);
- errors: https://developers.sinch.com/docs/sms/api-reference/status-codes (``{"code", "text"}``,
  e.g. ``syntax_invalid_parameter_format``);
- callbacks: https://developers.sinch.com/docs/sms/api-reference/sms/tag/Webhooks
  (``recipient_delivery_report_sms`` and ``mo_text``; retried with back-off for about 23 hours on
  5xx and 429). Sinch does not sign SMS callbacks (it offers Basic auth, OAuth or mutual TLS
  on them), so each callback URL carries its own secret token and Basic auth is optional.

One batch per message: our texts differ per recipient (name, link), and several batches are kept
in flight at once. The provider id is ``{batch_id}:{recipient digits}``, as delivery reports name
both.
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

NAME = "sinch"
# the regions of the SMS REST API; only "eu" keeps the data in the EU/EEA (P14)
REGIONS = ("us", "eu", "au", "br", "ca")
EEA_REGIONS = ("eu",)

# https://developers.sinch.com/docs/sms/api-reference/sms/tag/Delivery-reports ("Delivery
# report statuses"): Queued and Dispatched are intermediate, the rest final; Unknown is final but
# says nothing about the handset, so the message stays submitted
_STATES = {
    "Queued": ReceiptState.ENROUTE,
    "Dispatched": ReceiptState.ENROUTE,
    "Unknown": ReceiptState.ENROUTE,
    "Delivered": ReceiptState.DELIVERED,
    "Expired": ReceiptState.EXPIRED,
    "Failed": ReceiptState.FAILED,
    "Rejected": ReceiptState.FAILED,
    "Aborted": ReceiptState.FAILED,
    "Cancelled": ReceiptState.FAILED,
    "Deleted": ReceiptState.FAILED,
}


def provider_id(batch_id: str, recipient: str) -> str:
    return f"{batch_id}:{recipient.removeprefix('+')}"


class SinchTransport(HttpTransport):
    name = NAME
    # Sinch's EU entity; SMS data of the EU region stays in the EU
    provider = Provider(name="Sinch Sweden AB", country="SE")

    def __init__(
        self,
        *,
        base_url: str,
        service_plan_id: str,
        api_token: str,
        receipt_url: str,
        auth: CallbackAuth,
        in_flight: int = 16,
        timeout: float = 15.0,
    ) -> None:
        self._batches = f"{base_url.rstrip('/')}/xms/v1/{service_plan_id}/batches"
        self._receipt_url = receipt_url
        bearer = {"Authorization": f"Bearer {api_token}"}
        super().__init__(auth, in_flight=in_flight, timeout=timeout, headers=bearer)

    def _send(self, client: httpx.Client, sms: OutboundSms) -> Outcome:
        batch = {
            "from": sms.sender,
            "to": [sms.to],
            "body": sms.body,
            "delivery_report": "per_recipient_final",
            "callback_url": self._receipt_url,
            "client_reference": sms.reference,
        }
        return post_message(
            client,
            self._batches,
            batch,
            transport=NAME,
            body=sms.body,
            accepted=(200, 201),
            id_field="id",
            code_field="code",
            provider_id=lambda batch_id: provider_id(batch_id, sms.to),
        )

    def _read(self, kind: str, payload: dict[str, object]) -> list[Receipt | InboundSms]:
        sent = payload.get("type")
        if kind == "receipt" and sent == "recipient_delivery_report_sms":
            return [_receipt(payload)]
        if kind == "inbound" and sent == "mo_text":
            return [_inbound(payload)]
        if kind == "inbound" and sent == "mo_binary":
            return []  # not text a customer typed; acknowledged so it is not retried
        raise CallbackRefused(400, "unexpected callback type")


def _receipt(payload: dict[str, object]) -> Receipt:
    status = field(payload, "status")
    if status not in _STATES:
        raise CallbackRefused(400, "unknown delivery status")
    code = int_field(payload, "code")
    at = timestamp(payload, "at")  # when Sinch made the report; the operator's time if given
    if "operator_status_at" in payload:
        at = timestamp(payload, "operator_status_at")
    return provider_receipt(
        NAME,
        provider_id=provider_id(field(payload, "batch_id"), e164(field(payload, "recipient"))),
        state=_STATES[status],
        at=at,
        code=code,
        reference=payload.get("client_reference"),
    )


def _inbound(payload: dict[str, object]) -> InboundSms:
    body = payload.get("body")
    if not isinstance(body, str):
        raise CallbackRefused(400, "missing or invalid field body")
    return InboundSms(
        transport=NAME,
        sender=e164(field(payload, "from")),
        to=field(payload, "to").removeprefix("+"),
        text=body,
        received_at=timestamp(payload, "received_at"),
        provider_id=field(payload, "id"),
    )


def build(settings: Settings) -> SinchTransport:
    """The adapter from ``TILFREDS_SINCH_*``; refuses a region outside the EU/EEA (P14)."""
    s = settings
    if s.sinch_region not in REGIONS:
        raise ConfigurationError(f"TILFREDS_SINCH_REGION must be one of {', '.join(REGIONS)}")
    if s.sinch_region not in EEA_REGIONS:
        raise ConfigurationError(
            "TILFREDS_SINCH_REGION must be eu: the privacy notice promises processing inside "
            "the EU/EEA (P14)"
        )
    if not (s.sinch_service_plan_id and s.sinch_api_token):
        raise ConfigurationError("set TILFREDS_SINCH_SERVICE_PLAN_ID and TILFREDS_SINCH_API_TOKEN")
    callback_base = s.sinch_callback_base_url or s.public_url
    if not callback_base:
        raise ConfigurationError(
            "set TILFREDS_SINCH_CALLBACK_BASE_URL (or TILFREDS_PUBLIC_URL): Sinch posts delivery "
            "reports and replies there"
        )
    auth = CallbackAuth.checked(
        NAME,
        s.sms_callback_secret,
        username=s.sinch_callback_username,
        password=s.sinch_callback_password,
    )
    return SinchTransport(
        base_url=s.sinch_base_url or f"https://{s.sinch_region}.sms.api.sinch.com",
        service_plan_id=s.sinch_service_plan_id,
        api_token=s.sinch_api_token,
        receipt_url=auth.urls(callback_base)["receipt"],
        auth=auth,
    )
