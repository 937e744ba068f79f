"""End to end over SMPP: due messages on the database go out through the worker and the SMPP
transport to the SMSC simulator, the receipts mark them delivered in the database, and a reply
"STOPP" over the same bind records the objection. On SQLite and PostgreSQL.

Proves P3 (the evaluation is sent by SMS and its status is known) and P7 (STOPP by SMS reaches
the invitations domain).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.factories import interaction_in
from tests.peers.smsc import Smsc
from tests.test_worker import intake
from tilfreds.config import Settings
from tilfreds.invitations.models import Message
from tilfreds.people.service import suppressed_numbers
from tilfreds.runtime import Runtime
from tilfreds.sms.smpp import build
from tilfreds.worker import Worker


@pytest.fixture
def smpp_rt(rt: Runtime) -> Iterator[tuple[Runtime, Smsc]]:
    smsc = Smsc(users={"tilfreds": "secret"}).start()
    settings = Settings(
        smpp_port=smsc.port,
        smpp_system_id="tilfreds",
        smpp_password="secret",
        smpp_provider_name="Test SMSC AS",
        smpp_provider_country="NO",
    )
    rt.transport = build(settings)
    try:
        yield rt, smsc
    finally:
        rt.transport.close()
        smsc.stop()


def messages(rt: Runtime) -> list[Message]:
    with rt.db.read_only() as session:
        return list(session.execute(select(Message).order_by(Message.id)).scalars())


def test_p3_p7_due_messages_go_out_over_smpp_receipts_deliver_them_and_stopp_objects(
    smpp_rt: tuple[Runtime, Smsc],
) -> None:
    rt, smsc = smpp_rt
    intake(rt, 1, 2, 3)
    assert Worker(rt).drain() == 3
    assert smsc.wait_for(lambda: len(smsc.received) == 3)
    assert {m.destination for m in smsc.received} == {f"47{40000000 + n}" for n in (1, 2, 3)}
    assert all("https://survey.example.no/" in m.text for m in smsc.received)
    assert smsc.wait_for(lambda: [m.status.value for m in messages(rt)] == ["delivered"] * 3)
    ids = {pid for m in smsc.received for pid in m.message_ids}
    assert {m.provider_id for m in messages(rt)} <= ids
    assert {m.transport for m in messages(rt)} == {"smpp"}

    phone = interaction_in(2).phone_e164
    smsc.inject_mo(phone[1:], rt.settings.sms_sender, "STOPP")

    def objected() -> bool:
        with rt.db.read_only() as session:
            return suppressed_numbers(session, rt.keys, [phone]) == {phone}

    assert smsc.wait_for(objected)
