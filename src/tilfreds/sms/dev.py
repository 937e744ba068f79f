"""The dev transport, the embedded default: a simulated phone whose inbox lives in the database.

It lives in the database (not in memory) so that a separate worker process and the web process
see the same phone. Numbers are stored like everywhere else: keyed hash plus ciphertext; message
texts (first name, survey link) are sealed too, so a dump holds no name (P9).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tilfreds.clock import Clock
from tilfreds.crypto import Keys, context
from tilfreds.db import Base, Database
from tilfreds.sms.transport import OutboundSms, Submitted


class DevPhoneMessage(Base):
    __tablename__ = "dev_phone_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3))  # "out" to the phone, "in" from it
    phone_index: Mapped[str] = mapped_column(String(80), index=True)
    phone_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    sender: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)  # the sealed text, in hex
    reference: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


def _context(phone_index: str, column: str = "phone") -> str:
    return context("dev_phone_messages", column, phone_index)


def _seal(keys: Keys, text: str, phone_index: str) -> str:
    return keys.encrypt(text, context=_context(phone_index, "body")).hex()


class DevTransport:
    name = "dev"

    def __init__(self, db: Database, keys: Keys, clock: Clock) -> None:
        self._db, self._keys, self._clock = db, keys, clock

    def send(self, sms: OutboundSms) -> Submitted:
        provider_id = secrets.token_hex(8)
        with self._db.unit_of_work() as session:
            session.add(
                DevPhoneMessage(
                    direction="out",
                    phone_index=(index := self._keys.blind_index(sms.to)),
                    phone_cipher=self._keys.encrypt(sms.to, context=_context(index)),
                    sender=sms.sender,
                    body=_seal(self._keys, sms.body, index),
                    reference=sms.reference,
                    at=self._clock.now(),
                )
            )
        return Submitted(provider_id=provider_id)


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
            body=_seal(keys, text, index),
            reference="",
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
            body=keys.decrypt(bytes.fromhex(r.body), context=_context(r.phone_index, "body")),
            reference=r.reference,
            at=r.at,
        )
        for r in rows
    ]
