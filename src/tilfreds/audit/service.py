"""Write and verify the audit chain. Each entry's hash covers its content and the previous hash.

Entries are written in the caller's transaction (convention 7). Appends lock the single head row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE), so
concurrent workers extend one chain; the head also reveals a deleted newest entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tilfreds.audit.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1


def _digest(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    fields: list[str],
    prev_hash: str,
) -> str:
    payload = json.dumps(
        [seq, at.isoformat(), actor, action, subject_type, subject_id, sorted(fields), prev_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


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
    head = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:  # the migration creates it; recreate if someone removed it
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
    seq, prev = head.seq + 1, head.hash
    at = at.replace(microsecond=0)
    names = sorted(fields or [])
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        fields=names,
        prev_hash=prev,
        hash=_digest(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            fields=names,
            prev_hash=prev,
        ),
    )
    session.add(entry)
    head.seq, head.hash = seq, entry.hash
    session.flush()
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
        actual = _digest(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            fields=list(entry.fields),
            prev_hash=entry.prev_hash,
        )
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
