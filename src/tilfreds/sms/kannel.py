"""Kannel as the SMS transport: the evaluation goes out through the operator's own Kannel gateway
(P3), its delivery reports and the customers' replies (STOPP: P7) come back over HTTP, and the
SMSC behind Kannel is declared as the processor (P13, P14).

Sending: one GET to Kannel's sendsms interface per message, several open at once within a window
(a small pool of threads over one pooled HTTP client), with ``charset=UTF-8`` and ``coding=2``
when the text needs UCS-2 (Kannel converts UTF-8 to the GSM alphabet itself, and splits long
texts into concatenated parts). Kannel answers without an id of its own, so each message asks for
delivery reports at a ``dlr-url`` that carries OUR reference: receipts are keyed on it
(``provider_id`` = our reference). Sending the same reference twice sends two SMS, so the
transport is not idempotent.

Answers: ``202 0: Accepted`` / ``3: Queued`` -> ``Submitted``; ``503 4: Temporal failure`` and
other 5xx, a refused sign-in, a connection that could not be made -> ``NotTaken`` (nothing was
sent; the worker backs off); another 4xx is about the message -> ``Rejected`` (permanent); a
connection lost after the request went out -> ``InDoubt``.

Callbacks (``/sms/kannel/{receipt|inbound}/{token}``): the token is derived per kind from the
installation's callback secret and checked in constant time; a forged call is refused with 403
and records nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from tilfreds.config import Settings
from tilfreds.errors import ConfigurationError
from tilfreds.sms import encoding
from tilfreds.sms.transport import (
    CallbackRefused,
    CallbackRequest,
    InboundSms,
    InDoubt,
    NotTaken,
    OutboundSms,
    Outcome,
    Provider,
    Receipt,
    ReceiptState,
    Rejected,
    Submitted,
    TransportEvents,
    callback_path,
    check_token,
)

log = logging.getLogger(__name__)

NAME = "kannel"
# delivered (1), failed (2), buffered (4), accepted by the SMSC (8), rejected by the SMSC (16)
DLR_MASK = 1 | 2 | 4 | 8 | 16
# what Kannel fills in when it calls the dlr-url / the MO get-url (docs/sms.md shows both)
DLR_QUERY = "type=%d&at=%T&reply=%A"
MO_QUERY = "from=%p&to=%P&text=%a&coding=%c&charset=%C&id=%I&at=%T"
_ACCEPTED = ("0:", "3:")  # "0: Accepted for delivery", "3: Queued for later delivery"
_STAT = re.compile(r"\bstat:(\w+)", re.IGNORECASE)
_ERR = re.compile(r"\berr:(\w+)", re.IGNORECASE)
_NACK = re.compile(r"^NACK/(0x[0-9a-fA-F]+|\d+)")


class KannelTransport:
    """A session with one Kannel smsbox; its callbacks are parsed by ``parse_callback``."""

    name = NAME
    idempotent = False  # Kannel keeps no record of our references: a resend is a second SMS

    def __init__(
        self,
        *,
        sendsms_url: str,
        username: str,
        password: str,
        callback_base_url: str,
        callback_secret: str,
        provider: Provider,
        smsc: str = "",
        in_flight: int = 8,
        timeout: float = 10.0,
    ) -> None:
        self.provider = provider
        self._url = sendsms_url
        self._auth = {"username": username, "password": password}
        self._smsc = smsc
        self._secret = callback_secret
        self._dlr_url = callback_base_url.rstrip("/") + callback_path(
            callback_secret, NAME, "receipt"
        )
        self._in_flight = in_flight
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # session -------------------------------------------------------------------------------
    def start(self, events: TransportEvents) -> None:
        """Receipts and replies reach the database through the web server's callback route, so
        ``events`` is not used here; this only opens the HTTP client."""
        self._open()

    def _open(self) -> tuple[httpx.Client, ThreadPoolExecutor]:
        with self._lock:
            if self._client is None or self._pool is None:
                n = self._in_flight
                self._client = httpx.Client(
                    timeout=self._timeout,
                    limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                )
                self._pool = ThreadPoolExecutor(n, thread_name_prefix="kannel")
            return self._client, self._pool

    def close(self) -> None:
        """Waits for the requests in flight (each ends within the timeout), then closes."""
        with self._lock:
            client, pool, self._client, self._pool = self._client, self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            client.close()

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        client, pool = self._open()
        stop = threading.Event()  # set once Kannel takes nothing more: the rest is not sent
        futures = [pool.submit(self._send, client, sms, stop) for sms in window]
        return [future.result() for future in futures]

    def _send(self, client: httpx.Client, sms: OutboundSms, stop: threading.Event) -> Outcome:
        if stop.is_set():
            return NotTaken("Kannel took no more messages in this window")
        cost = encoding.cost(sms.body)
        params = {
            **self._auth,
            "from": sms.sender,
            "to": sms.to,
            "text": sms.body,
            "charset": "UTF-8",
            "dlr-mask": str(DLR_MASK),
            "dlr-url": f"{self._dlr_url}?ref={quote(sms.reference, safe='')}&{DLR_QUERY}",
        }
        if cost.encoding == encoding.UCS2:
            params["coding"] = "2"
        if self._smsc:
            params["smsc"] = self._smsc
        try:
            answer = client.get(self._url, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            stop.set()  # nothing went out
            return NotTaken(f"Kannel is not reachable: {type(exc).__name__}")
        except httpx.HTTPError as exc:  # the request went out; its answer was lost
            return InDoubt(f"the answer from Kannel was lost: {type(exc).__name__}")
        outcome = answer_outcome(answer.status_code, answer.text, sms.reference, cost)
        if isinstance(outcome, NotTaken):
            stop.set()
        return outcome

    # callbacks -----------------------------------------------------------------------------
    def parse_callback(self, request: CallbackRequest) -> list[Receipt | InboundSms]:
        check_token(request, secret=self._secret, transport=NAME)
        if request.kind == "receipt":
            return [parse_receipt(request.query)]
        if request.kind == "inbound":
            return [parse_inbound(request.query)]
        raise CallbackRefused(404, f"Kannel makes no {request.kind!r} calls")


def answer_outcome(status: int, body: str, reference: str, cost: encoding.TextCost) -> Outcome:
    """What Kannel's answer to one sendsms request means for that message."""
    text = body.strip()[:200]
    if 200 <= status < 300:
        if not text.startswith(_ACCEPTED):
            log.warning("Kannel answered %d %r; taken as accepted", status, text)
        return Submitted((reference,), segments=cost.segments, encoding=cost.encoding)
    if status == 403 or status >= 500:  # a refused sign-in, or Kannel cannot take it now
        if status == 403:
            log.error("Kannel refused the sendsms sign-in: %s", text)
        return NotTaken(f"Kannel answered {status}: {text}")
    return Rejected(f"Kannel answered {status}: {text}", permanent=True, error_code=str(status))


def _time(raw: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw or ""), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def parse_receipt(q: Mapping[str, str]) -> Receipt:
    """A call of the dlr-url: ``ref`` is ours, ``type`` Kannel's report type, ``reply`` the SMSC's
    words (the receipt text, or ``NACK/<code>/...`` for a rejected submit)."""
    reference, kind, reply = q.get("ref", ""), q.get("type", ""), q.get("reply", "")
    if not reference or not kind.isdigit():
        raise CallbackRefused(400, "a delivery report needs ref and type")
    stat = _STAT.search(reply)
    err = _ERR.search(reply)
    error_code = err.group(1) if err and err.group(1).strip("0") else None
    match int(kind):
        case 1:
            state = ReceiptState.DELIVERED
        case 2:
            expired = stat is not None and stat.group(1).upper() == "EXPIRED"
            state = ReceiptState.EXPIRED if expired else ReceiptState.FAILED
        case 4 | 8:
            state = ReceiptState.ENROUTE
        case 16:
            state = ReceiptState.FAILED
            nack = _NACK.match(reply)
            error_code = nack.group(1) if nack else error_code
        case _:
            raise CallbackRefused(400, f"unknown delivery report type {kind}")
    return Receipt(
        transport=NAME,
        provider_id=reference,
        state=state,
        at=_time(q.get("at")),
        error_code=error_code,
        reference=reference,
    )


def parse_inbound(q: Mapping[str, str]) -> InboundSms:
    """A call of the MO get-url (Kannel's ``mo-recode`` gives the text as UTF-8)."""
    sender, text = q.get("from", "").strip(), q.get("text")
    if not sender or text is None:
        raise CallbackRefused(400, "an inbound message needs from and text")
    if q.get("charset", "UTF-8").upper() not in ("UTF-8", ""):
        log.warning("Kannel sent a reply in %s: set mo-recode = true", q.get("charset"))
    return InboundSms(
        transport=NAME,
        sender="+" + sender[2:] if sender.startswith("00") else sender,
        to=q.get("to", "").strip(),
        text=text,
        received_at=_time(q.get("at")) or datetime.now(UTC),
        provider_id=q.get("id") or None,
    )


def build(settings: Settings) -> KannelTransport:
    """The transport from ``TILFREDS_KANNEL_*`` and the callback secret (which the runtime
    resolves into ``settings`` first); refuses settings it cannot run with."""
    s = settings
    callback_secret = s.sms_callback_secret
    base = s.kannel_callback_base_url or s.public_url
    required = {
        "TILFREDS_KANNEL_SENDSMS_URL": s.kannel_sendsms_url,
        "TILFREDS_KANNEL_USERNAME": s.kannel_username,
        "TILFREDS_KANNEL_PASSWORD": s.kannel_password,
        "TILFREDS_KANNEL_CALLBACK_BASE_URL (or TILFREDS_PUBLIC_URL)": base,
        "TILFREDS_KANNEL_PROVIDER_NAME": s.kannel_provider_name,
        "TILFREDS_KANNEL_PROVIDER_COUNTRY": s.kannel_provider_country,
        "TILFREDS_SMS_CALLBACK_SECRET": callback_secret,
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise ConfigurationError(f"the kannel transport needs {', '.join(missing)}")
    return KannelTransport(
        sendsms_url=s.kannel_sendsms_url,
        username=s.kannel_username,
        password=s.kannel_password,
        smsc=s.kannel_smsc,
        callback_base_url=base,
        callback_secret=callback_secret,
        provider=Provider(name=s.kannel_provider_name, country=s.kannel_provider_country),
        in_flight=s.kannel_requests_in_flight,
        timeout=s.kannel_timeout_seconds,
    )
