"""Create, list, revoke and check bearer tokens. The token itself is shown once, never stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tilfreds.audit import service as audit
from tilfreds.db import Database
from tilfreds.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from tilfreds.operators.models import ApiToken

ROLES = ("admin",)
TOKEN_PREFIX = "tf_"  # noqa: S105 - a prefix, not a secret


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Operator:
    token_id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"token:{self.token_id}"


@dataclass(frozen=True)
class TokenInfo:
    """What an operator may see of a token: never the token, nor its hash."""

    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_token(session: Session, *, name: str, role: str, now: datetime) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if not name.strip():
        raise InvalidInput("a token needs a name saying who or what uses it", field="name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name.strip(), role=role, token_hash=_hash(token), created_at=now)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor="cli",
        action="token.created",
        subject_type="api_token",
        subject_id=row.id,
        at=now,
        fields=["name", "role"],
    )
    return token


def list_tokens(session: Session) -> list[TokenInfo]:
    rows = session.execute(select(ApiToken).order_by(ApiToken.id)).scalars()
    return [_info(row) for row in rows]


def revoke_token(session: Session, *, token_id: int, now: datetime) -> tuple[TokenInfo, bool]:
    """Revoke a token from ``now`` on; ``authenticate`` refuses it in the next request.

    Returns the token and whether this call revoked it: revoking twice changes nothing and
    writes no second audit entry. The row is locked first, so concurrent revokes record one.
    """
    row = session.get(ApiToken, token_id, with_for_update=True)
    if row is None:
        raise NotFound(f"there is no token {token_id}", field="id")
    if row.revoked_at is not None:
        return _info(row), False
    row.revoked_at = now
    session.flush()
    audit.record(
        session,
        actor="cli",
        action="token.revoked",
        subject_type="api_token",
        subject_id=row.id,
        at=now,
        fields=["revoked_at"],
    )
    return _info(row), True


def authenticate(
    session: Session, token: str | None, *, roles: tuple[str, ...] = ROLES
) -> Operator:
    if not token:
        raise Unauthorized("a bearer token is required")
    row = session.connection().execute(_VALID_TOKEN, {"hash": _hash(token)}).first()
    return _operator(None if row is None else tuple(row), roles)


def authenticate_alone(db: Database, token: str | None) -> Operator:
    """``authenticate`` as one statement of its own: every API request runs it
    (``Database.one_row``), and it is read at that moment, never cached, so a revoked token
    stops working at once."""
    if not token:
        raise Unauthorized("a bearer token is required")
    return _operator(db.one_row(_VALID_TOKEN, {"hash": _hash(token)}), ROLES)


def _operator(row: tuple[Any, ...] | None, roles: tuple[str, ...]) -> Operator:
    if row is None:
        raise Unauthorized("the token is not valid")
    token_id, name, role = row
    if role not in roles:
        raise Forbidden("this token's role may not do that")
    return Operator(token_id=token_id, name=name, role=role)


_VALID_TOKEN = select(ApiToken.id, ApiToken.name, ApiToken.role).where(
    ApiToken.token_hash == bindparam("hash"), ApiToken.revoked_at.is_(None)
)
