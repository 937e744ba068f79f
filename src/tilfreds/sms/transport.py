"""The one interface senders see. Adapters (dev, SMPP, Kannel, HTTP providers) implement it.

A transport is a long-lived session inside the worker: ``start`` opens it (binds, connects) and
hands it the sink its provider's events go to; ``send_window`` hands it a window of messages at
once, so an adapter can keep them all in flight (SMPP pipelining, one HTTP batch) and answers
with one outcome per message, in order. ``hand`` does the same without waiting for the answers:
the worker hands over the next window while this one's answers are still coming, so the
provider's own window never drains between ours (adapters that block get it from ``Blocking``,
which sends on a thread of its own). The outcomes:

- ``Submitted``: the provider took it, under one id per segment it sent;
- ``Rejected``: about this one message; counts toward giving up on it, at once when permanent;
- ``NotTaken``: the provider cannot take anything now (throttled, queue full, not connected);
  the message was not sent, loses no attempt, and the worker backs off;
- ``InDoubt``: handed over but the answer was lost (the connection dropped mid-window); it may
  or may not have been sent, and is marked ``in_doubt`` unless resending is configured.

Delivery receipts and inbound messages reach the database through ``TransportEvents``: from the
session's own connection (SMPP) or from the web server's callback routes (Kannel, HTTP providers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """Who processes the messages, for the register of processors (P13, P14)."""

    name: str  # e.g. "Sinch Sweden AB"; for a self-hosted gateway, the operator's SMSC
    country: str  # ISO 3166-1 alpha-2 of where it processes the data


@dataclass(frozen=True)
class OutboundSms:
    to: str  # E.164
    body: str
    sender: str
    reference: str  # our message id, echoed in receipts where the provider supports it


@dataclass(frozen=True)
class Submitted:
    provider_ids: tuple[str, ...]  # one per segment sent (SMPP), or one for the whole message
    segments: int = 1
    encoding: str = "GSM-7"  # "GSM-7" or "UCS-2"

    @property
    def provider_id(self) -> str:
        return self.provider_ids[0]


@dataclass(frozen=True)
class Rejected:
    reason: str
    permanent: bool
    error_code: str | None = None  # the provider's code, e.g. "0x0000000B" or "40001"


@dataclass(frozen=True)
class NotTaken:
    reason: str


@dataclass(frozen=True)
class InDoubt:
    reason: str


Outcome = Submitted | Rejected | NotTaken | InDoubt


class ReceiptState(StrEnum):
    ENROUTE = "enroute"  # accepted by the network, not yet final
    DELIVERED = "delivered"
    FAILED = "failed"  # undeliverable, rejected, deleted
    EXPIRED = "expired"  # validity ran out before delivery


@dataclass(frozen=True)
class Receipt:
    """A delivery report for one id the provider gave us (one segment, or the whole message)."""

    transport: str  # the adapter's name: receipts match on (transport, provider_id)
    provider_id: str
    state: ReceiptState
    at: datetime | None = None  # when the network says it happened, if it says
    error_code: str | None = None
    reference: str | None = None  # our reference, when the provider echoes it


@dataclass(frozen=True)
class InboundSms:
    """A message from a customer (mobile originated), reassembled if it came in segments."""

    transport: str
    sender: str  # the customer's number, E.164
    to: str  # our number it was sent to
    text: str
    received_at: datetime
    provider_id: str | None = None  # for idempotence: providers retry callbacks


class TransportEvents(Protocol):
    """Where receipts and inbound messages go; each call is one database transaction, and a
    receipt or message delivered twice changes nothing the second time. A call that raises
    recorded nothing: the adapter must not acknowledge what it reported (so the provider
    delivers it again). Fill ``Receipt.reference`` where the provider echoes ours: it settles
    a message whose submit answer was lost."""

    def receipts(self, receipts: Sequence[Receipt]) -> None: ...

    def inbound(self, messages: Sequence[InboundSms]) -> None: ...


class Handover(Protocol):
    """A window handed to the transport, its answers still coming."""

    def outcomes(self) -> list[Outcome]:
        """One outcome per message, in order; waits until each has its outcome."""
        ...

    def ready(self) -> bool:
        """Whether every outcome is in already (``outcomes`` would not wait)."""
        ...


class Answered:
    """A handover whose outcomes are known already."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self._outcomes = outcomes

    def outcomes(self) -> list[Outcome]:
        return self._outcomes

    def ready(self) -> bool:
        return True


class TransportError(Exception):
    """The transport cannot work at all (bad settings, bind refused): reported, not retried."""


class Transport(Protocol):
    name: str  # "dev", "smpp", "kannel", "sinch", "linkmobility"
    provider: Provider
    # True when sending a reference the provider already took adds nothing (it deduplicates on
    # our reference): messages left in doubt by a crash can then be sent again safely
    idempotent: bool

    def start(self, events: TransportEvents) -> None:
        """Open the session; calling it again on an open session does nothing."""

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        """One outcome per message, in order; returns once each has its outcome."""

    def hand(self, window: Sequence[OutboundSms]) -> Handover:
        """Hand a window over and return before its answers came (while an earlier window's
        answers are still due it may wait for room, as ``send_window`` would). Windows are
        sent in the order they were handed."""

    def close(self) -> None:
        """Unbind and stop; messages not yet answered come back as ``InDoubt``."""


class Blocking:
    """Base for a transport whose ``send_window`` waits for its answers (HTTP round trips, a
    test double): ``hand`` queues the window for one thread of its own, which sends the windows
    one after another, so the worker records one window while the next is sent."""

    _sender: ThreadPoolExecutor | None = None

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        raise NotImplementedError

    def hand(self, window: Sequence[OutboundSms]) -> Handover:
        if self._sender is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="sms-send")
        return _Pending(self._sender.submit(self.send_window, list(window)))

    def close(self) -> None:
        """Waits for the windows handed over, then stops their thread."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.shutdown()


class _Pending:
    def __init__(self, future: Future[list[Outcome]]) -> None:
        self._future = future

    def outcomes(self) -> list[Outcome]:
        return self._future.result()

    def ready(self) -> bool:
        return self._future.done()


class PerMessage(Blocking):
    """Base for a transport that hands over one message at a time (the dev phone, test doubles):
    ``send_window`` calls ``send`` for each message and stops handing over at the first
    ``NotTaken``, answering ``NotTaken`` for the rest of the window. An exception from ``send``
    rejects that one message (not permanently), so one bad message cannot stop a window."""

    name: str
    provider: Provider
    idempotent: bool = False

    def start(self, events: TransportEvents) -> None:
        return None

    def send(self, sms: OutboundSms) -> Outcome:
        raise NotImplementedError

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for sms in window:
            if outcomes and isinstance(outcomes[-1], NotTaken):
                outcomes.append(outcomes[-1])
                continue
            try:
                outcomes.append(self.send(sms))
            except Exception as exc:  # a bug about this message: it fails alone, and is retried
                log.exception("transport %s failed on one message", self.name)
                outcomes.append(Rejected(repr(exc), permanent=False))
        return outcomes


@dataclass(frozen=True)
class CallbackRequest:
    """An HTTP call from a provider to ``/sms/{transport}/{kind}/{token}`` (receipts, inbound),
    as the web server received it. ``token`` is the secret part of the callback URL we gave the
    provider (empty where the provider signs its calls instead)."""

    kind: str  # "receipt" or "inbound"
    token: str
    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class CallbackRefused(Exception):
    """The call is not authentic (403) or not understood (400); nothing is recorded."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Callbacks(Protocol):
    """A transport whose provider calls us back over HTTP (Kannel, Sinch, LINK Mobility)."""

    def parse_callback(self, request: CallbackRequest) -> list[Receipt | InboundSms]:
        """Authenticate the call and read what it reports; raises ``CallbackRefused``.

        Optionally the transport also has ``callback_url(kind, url) -> str``, which turns the
        URL ``tilfreds sms callbacks`` would print into the one its provider needs (another
        base URL, a query with the provider's placeholders)."""


CALLBACK_KINDS = ("receipt", "inbound")


def callback_token(secret: str, transport: str, kind: str) -> str:
    """The secret last part of the callback URL for ``transport``'s ``kind`` of calls: an HMAC of
    both under the installation's callback secret, so each URL has its own token and a token
    leaked with one URL opens no other."""
    mac = hmac.new(
        secret.encode(), f"tilfreds sms callback/{transport}/{kind}".encode(), hashlib.sha256
    )
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode()


def callback_path(secret: str, transport: str, kind: str) -> str:
    """The path to give the provider (after the public URL)."""
    return f"/sms/{transport}/{kind}/{callback_token(secret, transport, kind)}"


def check_token(request: CallbackRequest, *, secret: str, transport: str) -> None:
    """Refuse (403) a call whose URL token is not the one derived for this transport and kind;
    compared in constant time."""
    expected = callback_token(secret, transport, request.kind)
    if not hmac.compare_digest(request.token.encode(), expected.encode()):
        raise CallbackRefused(403, "the callback URL's token is not valid")


def check_basic_auth(request: CallbackRequest, *, username: str, password: str) -> None:
    """Refuse (403) a call without these HTTP Basic credentials; compared in constant time."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    expected = f"{username}:{password}".encode()
    valid = hmac.compare_digest(given, expected)  # always compared, whatever the scheme
    if scheme.lower() != "basic" or not valid:
        raise CallbackRefused(403, "the callback's credentials are not valid")
