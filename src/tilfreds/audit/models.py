"""The audit log table. Rows are only ever inserted; the keyed chain makes changes detectable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tilfreds.db import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"
    # a person's history (access requests, P16) is looked up by subject
    __table_args__ = (Index("ix_audit_log_subject_type_subject_id", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str] = mapped_column(String(60))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    key_id: Mapped[str] = mapped_column(String(8))  # the key whose audit key sealed this entry
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the newest entry's seq and MAC. Locked to append; catches a deleted tail entry."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(64))
