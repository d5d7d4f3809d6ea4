"""The audit tables (Art. 18). All three are append-only: on PostgreSQL triggers refuse UPDATE and
DELETE, and the hash chain over `audit_seals` shows any change made around them.

- `audit_records`: one row per state change, data access or HTTP request, written by
  `kaifang.audit.service` (state changes and data access in the caller's transaction; requests in
  batches off the request path).
- `audit_seals`: the chain. The sealer gives each committed record the next sequence number and
  `hash = sha256(previous hash + the record's canonical content + seq)`. Sealing after commit,
  rather than hashing in the writing transaction, keeps concurrent writers from contending on the
  chain's tail and orders records by when they became visible.
- `audit_checkpoints`: at intervals, the chain's head signed with the platform's Ed25519 key, so
  cutting records off the end or rewriting the whole chain is detected too.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from kaifang.db import Base, UTCDateTime, utcnow


class RecordKind(enum.StrEnum):
    change = "change"  # a state change (catalog workflow, accounts, data versions …)
    access = "access"  # a data access: preview, download, data API, SQL
    request = "request"  # an HTTP request, page or API


class AuditRecord(Base):
    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16), default=RecordKind.change, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    actor_name: Mapped[str] = mapped_column(
        String(64), default=""
    )  # username at the time, or "anonymous"/"system"
    api_key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    action: Mapped[str] = mapped_column(String(64), index=True)  # fixed vocabulary: kaifang.audit.tags
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # before/after of the changed fields
    comment: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="", index=True)
    # HTTP requests
    method: Mapped[str] = mapped_column(String(10), default="")
    path: Mapped[str] = mapped_column(String(500), default="")
    route: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    bytes_sent: Mapped[int | None] = mapped_column(BigInteger, default=None)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # data access
    entry_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    resource_id: Mapped[int | None] = mapped_column(Integer, default=None)
    version_id: Mapped[int | None] = mapped_column(Integer, default=None)
    data_format: Mapped[str] = mapped_column(String(16), default="")
    rows: Mapped[int | None] = mapped_column(BigInteger, default=None)
    grant_id: Mapped[int | None] = mapped_column(Integer, default=None)


class AuditSeal(Base):
    __tablename__ = "audit_seals"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[int] = mapped_column(Integer, unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))  # hex Ed25519 public key that signed it
    signature: Mapped[str] = mapped_column(String(128))  # hex Ed25519 signature of "seq:hash"


class AuditJournalFile(Base):
    """A journal file of data-access records already written into `audit_records` (journal.py)."""

    __tablename__ = "audit_journal_files"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    records: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The table itself, for the Core statements of the hot paths (every data access, the writer's batches).
RECORDS = cast(Table, AuditRecord.__table__)
