"""Write the audit chain: who did what to which record, naming fields, never values (P12, P18).

Each entry's MAC is HMAC-SHA256, under the audit key of the key that sealed it (``key_id``), over
its content and the previous entry's MAC; so rewriting the chain needs the master key, and rotating
the master key never rewrites old entries. The sealed content holds no personal data (actor,
action, subject type and id, field names, time, key id), so erasure never has to touch the chain.

``record`` only buffers the entry in the session; the buffer is appended just before the outermost
commit (a ``before_commit`` session event), so the audit head is the LAST lock every transaction
takes (ARCHITECTURE convention 13) and two transactions can never wait for each other through it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import Integer, String, Table, TextClause, bindparam, event, select, text, update
from sqlalchemy.orm import Session, SessionTransaction

from tilfreds.audit.models import AuditEntry, AuditHead
from tilfreds.crypto import Keys

GENESIS = "0" * 64
HEAD_ID = 1
KEYS = "tilfreds.keys"  # session.info key: the Keys whose current audit key seals new entries
_PENDING = "tilfreds.audit.pending"  # session.info key: entries buffered until the commit
_HELD = "tilfreds.audit.held"  # session.info key: the head as read by a caller that locked it
# what each MAC covers, in this order; ``mac`` itself is stored next to it
CONTENT = ("seq", "at", "actor", "action", "subject_type", "subject_id", "fields", "key_id",
           "prev_mac")  # fmt: skip
_ROWS_PER_INSERT = 500  # 11 parameters a row stays far below every database's parameter limit

# Names only: an identifier cannot carry a name with a space, a phone number or an e-mail address.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,59}")
_ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_ACTOR = re.compile(r"[a-z][a-z0-9_]*(:[A-Za-z0-9_-]{1,60})?")
_SUBJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,60}")


def session_info(keys: Keys) -> dict[str, object]:
    """What ``Database(url, session_info=...)`` needs so that its sessions can seal entries."""
    return {KEYS: keys}


def pending(session: Session) -> bool:
    """Whether entries wait for the session's commit, which appends them (the head last)."""
    return bool(session.info.get(_PENDING))


def _keys(session: Session) -> Keys:
    keys = session.info.get(KEYS)
    if not isinstance(keys, Keys):
        raise RuntimeError(
            "this session has no keys to seal the audit chain with: build the Database with "
            "session_info=audit.session_info(keys)"
        )
    return keys


@dataclass(frozen=True)
class _Pending:
    transaction: SessionTransaction  # the (sub)transaction it was recorded in
    row: dict[str, Any]


def _check(pattern: re.Pattern[str], what: str, value: str) -> None:
    if not pattern.fullmatch(value):
        # the value may be personal data, so the message names the argument, not the value
        raise ValueError(f"audit {what} must be a name or id, not free text or a value")


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: object,
    at: datetime,
    fields: list[str] | None = None,
) -> None:
    """Note who (``actor``) did ``action`` to which record, naming fields, never values. The entry
    is sealed and appended when the session commits, and dropped if its (sub)transaction rolls
    back."""
    _keys(session)  # fail here, at the caller, rather than at commit
    _check(_ACTOR, "actor", actor)
    _check(_ACTION, "action", action)
    _check(_NAME, "subject type", subject_type)
    _check(_SUBJECT_ID, "subject id", str(subject_id))
    for name in fields or []:
        _check(_NAME, "field name", name)
    if at.tzinfo is None:
        raise ValueError("audit time must be timezone-aware")
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        transaction = session.begin()  # what the session's next statement would do anyway
    row = {
        "at": at.astimezone(UTC).replace(microsecond=0),  # as it reads back from any database
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "fields": sorted(fields or []),
    }
    session.info.setdefault(_PENDING, []).append(_Pending(transaction, row))


def seal(key: hmac.HMAC, row: Sequence[Any]) -> str:
    """The MAC of one entry: ``key`` (an HMAC-SHA256 keyed with an audit key, copied, never
    updated) over (seq, at, actor, action, subject_type, subject_id, fields, key_id, prev_mac),
    canonically serialised. The one function that both writing and verifying use."""
    seq, at, actor, action, subject_type, subject_id, fields, key_id, prev_mac = row
    content = [seq, at.isoformat(), actor, action, subject_type, subject_id, sorted(fields),
               key_id, prev_mac]  # fmt: skip
    mac = key.copy()
    mac.update(_CANONICAL.encode(content).encode())
    return mac.hexdigest()


# compact, ASCII-only JSON; one encoder, as json.dumps would build one per call
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def mac_key(audit_key: bytes) -> hmac.HMAC:
    return hmac.new(audit_key, digestmod=hashlib.sha256)


_entries, _head = (cast(Table, model.__table__) for model in (AuditEntry, AuditHead))
_COLUMNS = (*CONTENT, "mac")


@cache
def lock_head() -> Any:
    """The head's locking read, for a caller that sends it with its own last statements (see
    ``holding_head``)."""
    return select(_head.c.seq, _head.c.mac).where(_head.c.id == HEAD_ID).with_for_update()


def holding_head(session: Session, seq: int, mac: str) -> None:
    """This transaction has locked the head with ``lock_head`` and read ``(seq, mac)``: the
    append at its commit starts from there instead of locking it again. Only for a caller that
    then writes nothing more before the commit (and leaves no ORM change for its flush), so the
    head is still the last lock taken; it applies to the outermost transaction only, and is
    forgotten when that ends."""
    if session.in_nested_transaction():
        raise RuntimeError("the audit head is held for the outermost transaction only")
    session.info[_HELD] = (session.get_transaction(), seq, mac)


@lru_cache(maxsize=32)
def _insert(rows: int, move_head: bool) -> TextClause:
    """INSERT of ``rows`` entries as typed bound parameters (``<column>_<n>``), built once per
    size and written as text, because SQLAlchemy compiles a multi-row ``insert().values()`` (and
    any statement holding one) anew at every execution: an append is on every writing request.
    With ``move_head`` (PostgreSQL) the INSERT rides in the head's UPDATE as a data-modifying
    CTE, one round trip less."""
    names = ", ".join(_COLUMNS)
    rows_sql = ", ".join("(" + ", ".join(f":{c}_{n}" for c in _COLUMNS) + ")" for n in range(rows))
    # only constant names and placeholders go into the text: no value is ever formatted in
    sql = f"INSERT INTO {_entries.name} ({names}) VALUES {rows_sql}"  # noqa: S608
    if move_head:
        sql = (
            f"WITH entries AS ({sql} RETURNING seq) "  # noqa: S608
            f"UPDATE {_head.name} SET seq = :head_seq, mac = :head_mac WHERE id = {HEAD_ID}"
        )
    binds = [bindparam(f"{c}_{n}", type_=_entries.c[c].type) for n in range(rows) for c in _COLUMNS]
    if move_head:
        binds += [bindparam("head_seq", type_=Integer()), bindparam("head_mac", type_=String())]
    return text(sql).bindparams(*binds)


@cache
def _move_head() -> Any:
    return (
        update(_head)
        .where(_head.c.id == HEAD_ID)
        .values(seq=bindparam("head_seq"), mac=bindparam("head_mac"))
    )


def _append(session: Session, rows: list[dict[str, Any]]) -> None:
    """Seal and insert ``rows`` after the head: lock the head, one multi-row INSERT per 500
    entries, move the head (on PostgreSQL the last INSERT and the move are one statement)."""
    key = _keys(session).current
    # on the session's connection: these are Core statements, and the ORM's execute path around
    # them cost more than the statements themselves (every writing request appends)
    conn = session.connection()
    held = session.info.pop(_HELD, None)
    if held is not None and held[0] is session.get_transaction():
        seq, prev = held[1], held[2]
    else:
        head = conn.execute(lock_head()).one_or_none()
        if head is None:
            raise RuntimeError("the audit head row is missing; run `tilfreds audit verify`")
        seq, prev = head.seq, head.mac
    base = mac_key(key.audit)
    for row in rows:
        seq += 1
        row |= {"seq": seq, "key_id": key.id, "prev_mac": prev}
        row["mac"] = prev = seal(base, [row[c] for c in CONTENT])
    chunks = [rows[i : i + _ROWS_PER_INSERT] for i in range(0, len(rows), _ROWS_PER_INSERT)]
    postgres = conn.dialect.name == "postgresql"
    moved = {"head_seq": seq, "head_mac": prev}
    for n, chunk in enumerate(chunks, start=1):
        last = n == len(chunks)
        params = {f"{c}_{i}": row[c] for i, row in enumerate(chunk) for c in _COLUMNS}
        conn.execute(_insert(len(chunk), postgres and last), params | (moved if last else {}))
    if not postgres:
        conn.execute(_move_head(), moved)


@event.listens_for(Session, "before_commit")
def _append_before_commit(session: Session) -> None:
    # before_commit also fires when a savepoint is released; only the outermost commit appends
    if session.in_nested_transaction() or not session.info.get(_PENDING):
        return
    session.flush()  # the transaction's own row locks first ...
    rows = [p.row for p in session.info.pop(_PENDING, [])]
    if rows:
        _append(session, rows)  # ... the audit head last


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous: SessionTransaction) -> None:
    """Forget entries recorded in ``previous`` (a savepoint, or the whole transaction) or in a
    savepoint inside it."""
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if pending:
        pending[:] = [p for p in pending if not _within(p.transaction, previous)]


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended, however it ended
        session.info.pop(_PENDING, None)
        session.info.pop(_HELD, None)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@dataclass(frozen=True)
class Head:
    """The newest entry, as ``SEQ:MAC``: what to keep outside the database as an anchor."""

    seq: int
    mac: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.mac}"

    @classmethod
    def parse(cls, text: str) -> Head:
        seq, _, mac = text.strip().partition(":")
        if not (seq.isascii() and seq.isdigit() and re.fullmatch(r"[0-9a-f]{64}", mac)):
            raise ValueError("expected SEQ:MAC, as `tilfreds audit verify` prints it")
        return cls(int(seq), mac)


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    problem: str = ""
    head: Head = Head(0, GENESIS)
    missing_key: str = ""  # set when an entry's key is not configured, so it cannot be checked


_CHUNK = 10_000  # rows fetched at a time: memory stays flat however long the log is


def verify(session: Session, *, expect_head: Head | None = None) -> Verification:
    """Walk the chain in order and report the first changed, inserted or missing entry; with
    ``expect_head``, also that the entry it names still has its MAC. Give it a session from
    ``Database.snapshot()``, or an entry committed during the walk looks like tampering."""
    walk = _Walk(_keys(session), expect_head)
    try:
        head = session.execute(
            select(AuditHead.seq, AuditHead.mac).where(AuditHead.id == HEAD_ID)
        ).one_or_none()
        if head is None:
            raise _Broken("the audit head row is missing")
        columns = [getattr(AuditEntry, c) for c in CONTENT]
        # Core rows from a server-side cursor, _CHUNK at a time: no ORM objects, flat memory
        rows = session.connection().execute(
            select(AuditEntry.mac, *columns)
            .order_by(AuditEntry.seq)
            .execution_options(yield_per=_CHUNK)
        )
        for mac, *content in rows:
            walk.step(mac, content)
        walk.finish(Head(head.seq, head.mac))
    except _Broken as broken:
        return Verification(False, walk.count, broken.problem, missing_key=broken.missing_key)
    return Verification(True, walk.count, head=Head(walk.seq, walk.prev))


class _Broken(Exception):
    def __init__(self, problem: str, *, missing_key: str = "") -> None:
        super().__init__(problem)
        self.problem, self.missing_key = problem, missing_key


class _Walk:
    """The state of one pass over the chain: the entry expected next and the keys met so far."""

    def __init__(self, keys: Keys, anchor: Head | None) -> None:
        self.keys, self.anchor = keys, anchor
        self.sealers: dict[str, hmac.HMAC] = {}
        self.prev, self.seq, self.count = GENESIS, 0, 0

    def step(self, mac: str, content: list[Any]) -> None:
        self.count += 1
        seq, key_id, prev = content[0], content[7], content[8]
        if seq != self.seq + 1:
            raise _Broken(f"entry {self.seq + 1} is missing (found {seq})")
        if prev != self.prev:
            raise _Broken(f"entry {seq} does not follow its predecessor")
        if not hmac.compare_digest(seal(self._sealer(seq, key_id), content), mac):
            raise _Broken(f"entry {seq} was changed after it was written")
        if self.anchor is not None and seq == self.anchor.seq and mac != self.anchor.mac:
            raise _Broken(f"entry {seq} is not the anchored one: the log was rewritten")
        self.prev, self.seq = mac, seq

    def _sealer(self, seq: int, key_id: str) -> hmac.HMAC:
        sealer = self.sealers.get(key_id)
        if sealer is None:
            material = self.keys.material(key_id)
            if material is None:
                raise _Broken(
                    f"entry {seq} is sealed with key {key_id}, which is not configured: add "
                    "that master key to TILFREDS_PREVIOUS_SECRET_KEYS to verify it",
                    missing_key=key_id,
                )
            sealer = self.sealers[key_id] = mac_key(material.audit)
        return sealer

    def finish(self, head: Head) -> None:
        anchor = self.anchor
        if anchor is not None and (
            anchor.seq > self.seq or (anchor.seq == 0 and anchor.mac != GENESIS)
        ):
            raise _Broken(f"the anchored entry {anchor.seq} is missing: the log ends at {self.seq}")
        if head.seq > self.seq:
            raise _Broken(f"the newest entries after {self.seq} are missing")
        if head != Head(self.seq, self.prev):
            raise _Broken(f"the head does not name the newest entry, {self.seq}")
