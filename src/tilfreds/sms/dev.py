"""The dev transport, the embedded default: a simulated phone whose inbox lives in the database.

It lives in the database (not in memory) so that a separate worker process and the web process
see the same phone. It reports each window's messages delivered through the events sink right
after storing them, before the worker records the submit: the status path real receipts take,
the early-receipt case included, is exercised in the embedded default. Numbers are stored like
everywhere else: keyed hash plus ciphertext; message texts (first name, survey link) are sealed
too, so a dump holds no name (P9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tilfreds.clock import Clock
from tilfreds.crypto import Keys, context
from tilfreds.db import Base, Database, insert_new
from tilfreds.sms.transport import (
    OutboundSms,
    Outcome,
    PerMessage,
    Provider,
    Receipt,
    ReceiptState,
    Submitted,
    TransportEvents,
)


class DevPhoneMessage(Base):
    __tablename__ = "dev_phone_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # "out" to the phone, "in" from it
    phone_index: Mapped[str] = mapped_column(String(80), index=True)
    phone_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    sender: Mapped[str] = mapped_column(String(20))
    body_cipher: Mapped[bytes] = mapped_column(LargeBinary)  # context: .../body/<phone_index>
    # our message id for what was sent, so sending it again after a crash adds nothing
    reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    at: Mapped[datetime]


def _context(phone_index: str, column: str = "phone") -> str:
    return context("dev_phone_messages", column, phone_index)


def _seal(keys: Keys, text: str, phone_index: str) -> bytes:
    return keys.encrypt(text, context=_context(phone_index, "body"))


class DevTransport(PerMessage):
    """Keys its inbox on our message reference, so a message sent again after a crash shows once."""

    name = "dev"
    # nothing leaves the system: the "provider" is this installation itself
    provider = Provider(name="tilfreds dev phone (no SMS leaves this system)", country="NO")
    idempotent = True

    def __init__(self, db: Database, keys: Keys, clock: Clock) -> None:
        self._db, self._keys, self._clock = db, keys, clock
        self._events: TransportEvents | None = None

    def start(self, events: TransportEvents) -> None:
        self._events = events

    def close(self) -> None:
        super().close()
        self._events = None

    def send_window(self, window: Sequence[OutboundSms]) -> list[Outcome]:
        outcomes = super().send_window(window)
        if self._events is not None:  # the phone has them: delivered, one receipt per id
            now = self._clock.now()
            self._events.receipts(
                [
                    Receipt(self.name, pid, ReceiptState.DELIVERED, at=now, reference=sms.reference)
                    for sms, outcome in zip(window, outcomes, strict=True)
                    if isinstance(outcome, Submitted)
                    for pid in outcome.provider_ids
                ]
            )
        return outcomes

    def send(self, sms: OutboundSms) -> Submitted:
        index = self._keys.blind_index(sms.to)
        with self._db.unit_of_work() as session:
            session.execute(
                insert_new(session, DevPhoneMessage, "reference").values(
                    direction="out",
                    phone_index=index,
                    phone_cipher=self._keys.encrypt(sms.to, context=_context(index)),
                    sender=sms.sender,
                    body_cipher=_seal(self._keys, sms.body, index),
                    reference=sms.reference,
                    at=self._clock.now(),
                )
            )
        return Submitted(provider_ids=(f"dev-{sms.reference}",))


def record_inbound(
    session: Session, keys: Keys, *, phone: str, to: str, text: str, now: datetime
) -> None:
    """Show a reply typed on the simulated phone in its conversation."""
    session.add(
        DevPhoneMessage(
            direction="in",
            phone_index=(index := keys.blind_index(phone)),
            phone_cipher=keys.encrypt(phone, context=_context(index)),
            sender=to,
            body_cipher=_seal(keys, text, index),
            reference=None,
            at=now,
        )
    )


@dataclass(frozen=True)
class PhoneMessage:
    id: int
    direction: str
    phone: str
    sender: str
    body: str
    reference: str
    at: datetime


def inbox(session: Session, keys: Keys, *, limit: int = 200) -> Sequence[PhoneMessage]:
    """The newest messages on the simulated phone, newest first, numbers decrypted for display."""
    rows = session.execute(
        select(DevPhoneMessage).order_by(DevPhoneMessage.id.desc()).limit(limit)
    ).scalars()
    return [
        PhoneMessage(
            id=r.id,
            direction=r.direction,
            phone=keys.decrypt(r.phone_cipher, context=_context(r.phone_index)),
            sender=r.sender,
            body=keys.decrypt(r.body_cipher, context=_context(r.phone_index, "body")),
            reference=r.reference or "",
            at=r.at,
        )
        for r in rows
    ]
