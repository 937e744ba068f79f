"""Write and verify the audit chain. Each entry's hash covers its content and the previous hash.

Entries are written in the caller's transaction (convention 7). Appends lock the single head row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE), so
concurrent workers extend one chain; the head also reveals a deleted newest entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.audit.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1
_LOCKED_HEAD = "tilfreds.audit.head"  # session.info key: the head row this transaction locked


def _digest(entry: AuditEntry) -> str:
    """The entry's hash: its content and its predecessor's hash, canonically serialised."""
    payload = json.dumps(
        [
            entry.seq,
            entry.at.isoformat(),
            entry.actor,
            entry.action,
            entry.subject_type,
            entry.subject_id,
            sorted(entry.fields),
            entry.prev_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked once per (sub)transaction. The lock is taken again after a savepoint
    it was taken in ends, since rolling back a savepoint releases the row locks taken inside it."""
    txn = session.get_nested_transaction() or session.get_transaction()
    cached = session.info.get(_LOCKED_HEAD)
    if cached is not None and cached[0] is txn and txn is not None and txn.is_active:
        head: AuditHead = cached[1]
        return head
    found = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if found is None:  # the migration creates it; recreate if someone removed it
        found = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(found)
    session.info[_LOCKED_HEAD] = (txn, found)
    return found


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: object,
    at: datetime,
    fields: list[str] | None = None,
) -> AuditEntry:
    """Append who (``actor``) did ``action`` to which record, naming fields, never values."""
    head = _locked_head(session)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=at.astimezone(UTC).replace(microsecond=0),  # as it reads back from any database
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        fields=sorted(fields or []),
        prev_hash=head.hash,
    )
    entry.hash = _digest(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    return entry


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    problem: str = ""
    head_hash: str = ""


def verify(session: Session) -> Verification:
    """Walk the chain in order; report the first changed, inserted or missing entry."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for entry in rows:
        count += 1
        if entry.seq != expected_seq:
            return Verification(
                False, count, f"entry {expected_seq} is missing (found {entry.seq})"
            )
        if entry.prev_hash != expected_prev:
            return Verification(False, count, f"entry {entry.seq} does not follow its predecessor")
        actual = _digest(entry)
        if actual != entry.hash:
            return Verification(False, count, f"entry {entry.seq} was changed after it was written")
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    head = session.get(AuditHead, HEAD_ID)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (expected_seq - 1, expected_prev):
        return Verification(
            False, count, f"the newest entries after {expected_seq - 1} are missing"
        )
    return Verification(True, count, head_hash=head_hash)
