"""HTTP plumbing shared by the adapters of providers with a REST API (Sinch, LINK Mobility).

Sending: a pooled ``httpx`` client with several requests of a window in flight, and the mapping
of what can go wrong on the wire to outcomes (P3: never lose a message; a request that may have
reached the provider is ``InDoubt``, one that surely did not is ``NotTaken``). Callbacks: the
secret per callback URL and the optional Basic auth, compared in constant time (forged calls
change nothing), and JSON bodies read without ever echoing them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Container, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import httpx

from tilfreds.errors import ConfigurationError
from tilfreds.sms.encoding import cost
from tilfreds.sms.transport import (
    CALLBACK_KINDS,
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
    callback_token,
    check_basic_auth,
    check_token,
)

log = logging.getLogger(__name__)

MIN_SECRET = 32


@dataclass(frozen=True)
class CallbackAuth:
    """Who may call our callback URLs: the token derived for the URL's kind (a token leaked with
    one URL opens no other), and the Basic auth credentials when they are configured."""

    transport: str
    secret: str
    username: str = ""
    password: str = ""

    @classmethod
    def checked(
        cls, transport: str, secret: str, *, username: str = "", password: str = ""
    ) -> CallbackAuth:
        if len(secret) < MIN_SECRET:
            raise ConfigurationError(
                f"TILFREDS_SMS_CALLBACK_SECRET must be at least {MIN_SECRET} characters: the "
                f"{transport} callback URLs' tokens are derived from it"
            )
        if bool(username) != bool(password):
            raise ConfigurationError(
                f"set both TILFREDS_{transport.upper()}_CALLBACK_USERNAME and _PASSWORD, or neither"
            )
        return cls(transport, secret, username, password)

    def check(self, request: CallbackRequest) -> None:
        """Raise ``CallbackRefused(403)`` unless the call carries the right token (and Basic
        auth, when configured). Both are checked whatever the first says."""
        refused = False
        try:
            check_token(request, secret=self.secret, transport=self.transport)
        except CallbackRefused:
            refused = True
        if self.username:
            try:
                check_basic_auth(request, username=self.username, password=self.password)
            except CallbackRefused:
                refused = True
        if refused:
            raise CallbackRefused(403, "not authenticated")

    @property
    def tokens(self) -> dict[str, str]:
        return {kind: callback_token(self.secret, self.transport, kind) for kind in CALLBACK_KINDS}

    def urls(self, base: str) -> dict[str, str]:
        """The URLs to give the provider, as ``tilfreds sms callbacks`` prints them."""
        return {
            kind: base.rstrip("/") + callback_path(self.secret, self.transport, kind)
            for kind in CALLBACK_KINDS
        }


def read_object(request: CallbackRequest) -> dict[str, object]:
    """The POSTed JSON object, or ``CallbackRefused(400)``; the body is never quoted back."""
    if request.method != "POST":
        raise CallbackRefused(400, "expected a POST")
    try:
        payload = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CallbackRefused(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise CallbackRefused(400, "the body is not a JSON object")
    return payload


def response_object(response: httpx.Response) -> dict[str, object]:
    """A provider's JSON answer, or an empty object when it is not one."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def field(payload: Mapping[str, object], name: str) -> str:
    """A required string field, or ``CallbackRefused(400)`` naming the field (never its value)."""
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise CallbackRefused(400, f"missing or invalid field {name}")
    return value


def int_field(payload: Mapping[str, object], name: str) -> int:
    """A required integer field (not a boolean), or ``CallbackRefused(400)`` naming it."""
    value = payload.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CallbackRefused(400, f"missing or invalid field {name}")
    return value


def timestamp(payload: Mapping[str, object], name: str) -> datetime:
    """An RFC 3339 / ISO 8601 time with an offset (``Z`` or ``+hh:mm``)."""
    text = field(payload, name)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CallbackRefused(400, f"invalid time in {name}") from None
    if at.tzinfo is None:
        raise CallbackRefused(400, f"time in {name} has no offset")
    return at


def e164(number: str) -> str:
    """Providers write MSISDNs with or without the leading +; we keep them with it."""
    digits = number.removeprefix("+")
    if not digits.isdigit():
        raise CallbackRefused(400, "invalid phone number")
    return f"+{digits}"


def outcome_of_error(exc: httpx.HTTPError) -> Outcome:
    """What a failed request means for its message: not sent, or perhaps sent."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return NotTaken(f"provider unreachable: {type(exc).__name__}")
    # the request may have been read and acted on before the answer was lost
    return InDoubt(f"no answer from the provider: {type(exc).__name__}")


def outcome_without_id(transport: str, status: int, error_code: str | None) -> Outcome:
    """An answer to a send that gives no id: taken under an id we do not know (in doubt),
    throttled or down (try later), our account or settings are wrong (try later, loudly: the
    operator must fix them, and no message may be lost meanwhile), or something about this one
    message (rejected for good)."""
    if 200 <= status < 300:  # taken, but the answer did not say under which id
        log.error("%s answered HTTP %d without the message's id", transport, status)
        return InDoubt(f"provider answered HTTP {status} without an id")
    if status == 429 or status >= 500:
        return NotTaken(f"provider answered HTTP {status}")
    if status in (401, 403):
        log.error(
            "%s refused our credentials or settings (HTTP %d, %s): check the TILFREDS_%s_* "
            "settings",
            transport,
            status,
            error_code,
            transport.upper(),
        )
        return NotTaken(f"provider refused the account: HTTP {status}")
    return Rejected(f"provider rejected the message: HTTP {status}", True, error_code)


def post_message(
    client: httpx.Client,
    url: str,
    message: Mapping[str, object],
    *,
    transport: str,
    body: str,
    accepted: Container[int],
    id_field: str,
    code_field: str,
    provider_id: Callable[[str], str] = str,
) -> Outcome:
    """POST one message as JSON: taken (``accepted`` status) under the id the answer's
    ``id_field`` gives, which ``provider_id`` turns into the id its receipts will name; else the
    outcome of the answer's status and the provider's error code in ``code_field``."""
    response = client.post(url, json=message)
    answer = response_object(response)
    given = answer.get(id_field)
    if response.status_code in accepted and isinstance(given, str) and given:
        return submitted(provider_id(given), body)
    code = answer.get(code_field)
    known = isinstance(code, str | int) and not isinstance(code, bool)
    return outcome_without_id(transport, response.status_code, str(code) if known else None)


def provider_receipt(
    transport: str,
    *,
    provider_id: str,
    state: ReceiptState,
    at: datetime,
    code: int,
    reference: object,
) -> Receipt:
    """A delivery report of a REST provider: its status code is the error code unless the
    message was delivered; ``reference`` is its echo of ours, when it is a string."""
    return Receipt(
        transport=transport,
        provider_id=provider_id,
        state=state,
        at=at,
        error_code=None if state is ReceiptState.DELIVERED else str(code),
        reference=reference if isinstance(reference, str) else None,
    )


def submitted(provider_id: str, body: str) -> Submitted:
    """Taken under one id for the whole message; segments and encoding as the provider counts
    them (both split long texts with the standard 153/67 limits)."""
    price = cost(body)
    return Submitted((provider_id,), price.segments, price.encoding)


class HttpSession:
    """One pooled client (keep-alive, one connection per request in flight) and the threads
    that keep up to ``in_flight`` requests of a window going at once."""

    def __init__(self, *, in_flight: int, timeout: float, **client_args: object) -> None:
        self.in_flight = in_flight
        self._client_args = client_args
        self._timeout = timeout
        self.client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self.client is None:
            limits = httpx.Limits(
                max_connections=self.in_flight, max_keepalive_connections=self.in_flight
            )
            timeout = httpx.Timeout(self._timeout, connect=min(self._timeout, 5.0))
            self.client = httpx.Client(limits=limits, timeout=timeout, **self._client_args)  # type: ignore[arg-type]
            self._pool = ThreadPoolExecutor(self.in_flight, thread_name_prefix="sms-http")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.client is not None:
            self.client.close()
        self.client, self._pool = None, None

    def send_window(
        self, window: Sequence[OutboundSms], send: Callable[[httpx.Client, OutboundSms], Outcome]
    ) -> list[Outcome]:
        """Call ``send`` for each message, several at once, outcomes in order.

        Once an answer says the provider takes nothing (``NotTaken``), messages not yet handed
        over are not sent either (they come back ``NotTaken`` and lose no attempt); those already
        in flight keep their own answers."""
        self.start()
        client, pool = self.client, self._pool
        assert client is not None and pool is not None
        busy = threading.Event()

        def one(sms: OutboundSms) -> Outcome:
            if busy.is_set():
                return NotTaken("not handed over: the provider is busy")
            try:
                outcome = send(client, sms)
            except httpx.HTTPError as exc:
                outcome = outcome_of_error(exc)
            if isinstance(outcome, NotTaken):
                busy.set()
            return outcome

        if len(window) == 1:
            return [one(window[0])]
        return list(pool.map(one, window))


class HttpTransport(Blocking):
    """Base of the adapters for REST providers: the session, and callbacks checked by ``auth``.
    Subclasses send one message in ``_send`` and read an authentic callback's JSON in ``_read``."""

    name: str
    provider: Provider
    idempotent = False  # neither provider deduplicates on our reference

    def __init__(
        self, callbacks: CallbackAuth, /, *, in_flight: int, timeout: float, **client_args: object
    ) -> None:
        """``client_args`` go to the ``httpx.Client``: the provider's credentials."""
        self._http = HttpSession(in_flight=in_flight, timeout=timeout, **client_args)
        self._auth = callbacks

    def start(self, events: TransportEvents) -> None:
        self._http.start()  # events arrive through the web server's callback route

    def close(self) -> None:
        super().close()
        self._http.close()

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        return self._http.send_window(window, self._send)

    def _send(self, client: httpx.Client, sms: OutboundSms) -> Outcome:
        raise NotImplementedError

    def parse_callback(self, request: CallbackRequest) -> list[Receipt | InboundSms]:
        """Refuse a call without its URL's token (and credentials), then read its JSON body."""
        self._auth.check(request)
        return self._read(request.kind, read_object(request))

    def _read(self, kind: str, payload: dict[str, object]) -> list[Receipt | InboundSms]:
        """What an authentic call of ``kind`` ("receipt", "inbound") reports."""
        raise NotImplementedError
