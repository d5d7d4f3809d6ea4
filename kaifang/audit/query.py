"""The filters of an audit search, applied to the database (SQLAlchemy) and to the archive files
(DuckDB) side by side, so both sources answer the same question the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, cast, select

from kaifang.audit.models import AuditRecord


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit search; empty fields do not filter."""

    actor: str = ""  # username, exact
    entry_id: int | None = None
    action: str = ""  # a tag, or a prefix ending in ":" (e.g. "data:access:")
    kind: str = ""
    ip: str = ""
    receipt: str = ""  # a download receipt id (checked against receipts.PATTERN: no wildcards)
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items() if v}

    @property
    def dated(self) -> bool:
        return self.since is not None or self.until is not None


def filtered(q: AuditQuery) -> Select[AuditRecord]:
    """The records of the database matching `q`."""
    stmt = select(AuditRecord)
    if q.actor:
        stmt = stmt.where(AuditRecord.actor_name == q.actor)
    if q.entry_id is not None:
        stmt = stmt.where(AuditRecord.entry_id == q.entry_id)
    if q.action.endswith(":"):
        stmt = stmt.where(AuditRecord.action.startswith(q.action, autoescape=True))
    elif q.action:
        stmt = stmt.where(AuditRecord.action == q.action)
    if q.kind:
        stmt = stmt.where(AuditRecord.kind == q.kind)
    if q.ip:
        stmt = stmt.where(AuditRecord.ip == q.ip)
    if q.receipt:
        stmt = stmt.where(AuditRecord.kind == "access", cast(AuditRecord.summary, Text).contains(q.receipt))
    if q.since is not None:
        stmt = stmt.where(AuditRecord.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditRecord.at < q.until)
    return stmt


def duckdb_where(q: AuditQuery) -> tuple[str, list[Any]]:
    """The same filters as a DuckDB WHERE clause over the archive files, with its parameters."""
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    equal = {"actor_name": q.actor, "entry_id": q.entry_id, "kind": q.kind, "ip": q.ip}
    for column, value in equal.items():
        if value not in ("", None):
            clauses.append(f"{column} = ?")
            params.append(value)
    if q.receipt:
        clauses.append("kind = 'access' AND contains(summary, ?)")
        params.append(q.receipt)
    if q.action.endswith(":"):
        clauses.append("starts_with(action, ?)")
        params.append(q.action)
    elif q.action:
        clauses.append("action = ?")
        params.append(q.action)
    if q.since is not None:
        clauses.append('"at" >= ?')
        params.append(q.since)
    if q.until is not None:
        clauses.append('"at" < ?')
        params.append(q.until)
    return " AND ".join(clauses), params
