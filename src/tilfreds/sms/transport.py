"""The one interface senders see. Adapters (dev, SMPP, Kannel, HTTP providers) implement it."""

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
    """The provider did not take the message. ``retryable`` means back off and try again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Transport(Protocol):
    name: str

    def send(self, sms: OutboundSms) -> Submitted: ...
