"""Kannel as the SMS transport: the evaluation goes out through the operator's own Kannel gateway
(P3), its delivery reports and the customers' replies (STOPP: P7) come back over HTTP, and the
SMSC behind Kannel is declared as the processor (P13, P14).

Sending: one GET to Kannel's sendsms interface per SMS, several messages open at once within a
window (a small pool of threads over one pooled HTTP client), with ``charset=UTF-8`` and
``coding=2`` when the text needs UCS-2 (Kannel converts UTF-8 to the GSM alphabet itself).
Kannel answers without an id of its own, so each SMS asks for delivery reports at a ``dlr-url``
that carries OUR reference: receipts are keyed on it (``provider_id`` = our reference). Sending
the same reference twice sends two SMS, so the transport is not idempotent.

A long text is split here, not by Kannel: when Kannel splits, it asks the SMSC for a delivery
report on the first part only, so a message would be marked delivered while its second part was
lost. Each part goes out as its own sendsms request with its concatenation UDH (``udh``, and
``coding`` always given: Kannel takes a message with a UDH as 8-bit otherwise) and a dlr-url
that also names the part (``part=1..n``); the message's ids are ``<reference>/<part>``, so it is
delivered once every part is and failed when any part failed (``invitations/receipts.py``).

Answers: ``202 0: Accepted`` / ``3: Queued`` -> ``Submitted``; ``503 4: Temporal failure`` and
other 5xx, a refused sign-in, a connection that could not be made -> ``NotTaken`` (nothing was
sent; the worker backs off); another 4xx is about the message -> ``Rejected`` (permanent); a
connection lost after the request went out -> ``InDoubt``.

Callbacks (``/sms/kannel/{receipt|inbound}/{token}``): the token is derived per kind from the
installation's callback secret and checked in constant time; a forged call is refused with 403
and records nothing.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

import httpx

from tilfreds.config import Settings
from tilfreds.errors import ConfigurationError
from tilfreds.sms import encoding
from tilfreds.sms.transport import (
    Blocking,
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
_PART = re.compile(r"[1-9][0-9]{0,2}")  # a long message has at most 255 parts
_NACK = re.compile(r"^NACK/(0x[0-9a-fA-F]+|\d+)")


class KannelTransport(Blocking):
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
        self._callback_base = callback_base_url.rstrip("/")
        self._dlr_url = self._callback_base + callback_path(callback_secret, NAME, "receipt")
        self._concat = itertools.count(1)  # the concatenation reference of long messages
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
        super().close()
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
        requests = self._requests(sms)
        total = len(requests)
        for n, params in enumerate(requests, 1):
            outcome = self._request(client, params, sms.reference)
            if isinstance(outcome, NotTaken):
                stop.set()  # Kannel takes nothing now: the rest of the window is not sent
            if n > 1 and isinstance(outcome, NotTaken | Rejected):  # a part went out already
                return Rejected(
                    f"only {n - 1} of {total} parts went out: {outcome.reason}",
                    permanent=True,  # sending it again would repeat the parts that went out
                    error_code="partial",
                )
            if n > 1 and isinstance(outcome, InDoubt):
                return InDoubt(f"part {n} of {total}: {outcome.reason}")
            if not isinstance(outcome, Submitted):
                return outcome
        return Submitted(
            tuple(part_id(sms.reference, n, total) for n in range(1, total + 1)),
            segments=total,
            encoding=encoding.cost(sms.body).encoding,
        )

    def _requests(self, sms: OutboundSms) -> list[dict[str, str | bytes]]:
        """The sendsms query of each SMS the message goes out as: itself, or its parts."""
        segments = encoding.split(sms.body)
        ucs2 = segments.data_coding == encoding.DATA_CODING_UCS2
        common: dict[str, str | bytes] = {
            **self._auth,
            "from": sms.sender,
            "to": sms.to,
            "charset": "UTF-8",
            "dlr-mask": str(DLR_MASK),
            **({"smsc": self._smsc} if self._smsc else {}),
        }
        ref = f"ref={quote(sms.reference, safe='')}"
        if not segments.concatenated:
            return [
                {
                    **common,
                    "text": sms.body,
                    **({"coding": "2"} if ucs2 else {}),
                    "dlr-url": f"{self._dlr_url}?{ref}&{DLR_QUERY}",
                }
            ]
        total, concat = len(segments.parts), next(self._concat) % 256
        return [
            {
                **common,
                "text": encoding.decode(part, segments.data_coding),
                "udh": encoding.udh(concat, total, n),
                "coding": "2" if ucs2 else "0",
                "dlr-url": f"{self._dlr_url}?{ref}&part={n}&{DLR_QUERY}",
            }
            for n, part in enumerate(segments.parts, 1)
        ]

    def _request(
        self, client: httpx.Client, params: Mapping[str, str | bytes], reference: str
    ) -> Outcome:
        try:
            answer = client.get(f"{self._url}?{urlencode(params)}")
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return NotTaken(f"Kannel is not reachable: {type(exc).__name__}")
        except httpx.HTTPError as exc:  # the request went out; its answer was lost
            return InDoubt(f"the answer from Kannel was lost: {type(exc).__name__}")
        return answer_outcome(answer.status_code, answer.text, reference)

    def callback_url(self, kind: str, url: str) -> str:
        """What ``tilfreds sms callbacks`` prints: for ``inbound``, the ``get-url`` to put in
        Kannel's ``sms-service`` (with the placeholders Kannel fills in); for ``receipt``, the
        dlr-url tilfreds itself sends with each SMS (``<reference>``, and ``<part>`` for the
        parts of a long message, are filled in per SMS). Both on this transport's base URL."""
        path = urlsplit(url).path
        if kind == "inbound":
            return f"{self._callback_base}{path}?{MO_QUERY}"
        return f"{self._callback_base}{path}?ref=<reference>[&part=<part>]&{DLR_QUERY}"

    # callbacks -----------------------------------------------------------------------------
    def parse_callback(self, request: CallbackRequest) -> list[Receipt | InboundSms]:
        check_token(request, secret=self._secret, transport=NAME)
        if request.kind == "receipt":
            return [parse_receipt(request.query)]
        if request.kind == "inbound":
            return [parse_inbound(request.query)]
        raise CallbackRefused(404, f"Kannel makes no {request.kind!r} calls")


def part_id(reference: str, part: int, total: int) -> str:
    """The id a receipt for this part of a message is keyed on: our reference alone for a
    message of one SMS, ``<reference>/<part>`` for each part of a long one."""
    return reference if total == 1 else f"{reference}/{part}"


def answer_outcome(status: int, body: str, reference: str) -> Outcome:
    """What Kannel's answer to one sendsms request means for that SMS (``Submitted`` under our
    reference; ``_send`` gives a long message the ids of all its parts)."""
    text = body.strip()[:200]
    if 200 <= status < 300:
        if not text.startswith(_ACCEPTED):
            log.warning("Kannel answered %d %r; taken as accepted", status, text)
        return Submitted((reference,))
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
    """A call of the dlr-url: ``ref`` is ours (and ``part`` which part of a long message),
    ``type`` Kannel's report type, ``reply`` the SMSC's words (the receipt text, or
    ``NACK/<code>/...`` for a rejected submit)."""
    reference, kind, reply = q.get("ref", ""), q.get("type", ""), q.get("reply", "")
    part = q.get("part", "")
    if not reference or not kind.isdigit() or not (part == "" or _PART.fullmatch(part)):
        raise CallbackRefused(400, "a delivery report needs ref and type (and a numeric part)")
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
        provider_id=f"{reference}/{int(part)}" if part else reference,
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
