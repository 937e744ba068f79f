"""The one interface senders see. Adapters (dev, SMPP, Kannel, HTTP providers) implement it.

Failures come in two kinds, because they are handled differently: ``TransportBusy`` says the
provider cannot take anything now (throttled, queue full, connection lost) - the worker backs off
and the message loses nothing; ``MessageRejected`` is about this one message - it counts toward
giving up on it, at once when ``permanent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundSms:
    to: str  # E.164
    body: str
    sender: str
    reference: str  # our message id, echoed in receipts


@dataclass(frozen=True)
class Submitted:
    provider_id: str


class TransportError(Exception):
    """The provider did not take the message."""


class TransportBusy(TransportError):
    """Nothing can be sent right now; back off and try again, the message is not at fault."""


class MessageRejected(TransportError):
    """The provider refused this message; ``permanent`` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    name: str
    # True when sending a reference the provider already took adds nothing (it deduplicates on
    # our reference): messages left in doubt by a crash can then be sent again safely
    idempotent: bool

    def send(self, sms: OutboundSms) -> Submitted: ...
