"""Writing audit records. Call `record` inside the same session (transaction) as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor
from kaifang.audit.models import AuditRecord, RecordKind
from kaifang.audit.tags import Tag

# Values of these keys never reach the audit table, whatever a caller passes.
SECRET_KEYS = frozenset({"password", "password_hash", "key", "key_hash", "token", "token_hash", "secret"})


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_KEYS else _plain(v)) for k, v in value.items()}
    return value


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The before/after summary of the fields that changed."""
    changed = {k for k in after if before.get(k) != after.get(k)}
    return {
        "before": {k: _plain(before.get(k)) for k in sorted(changed)},
        "after": {k: _plain(after.get(k)) for k in sorted(changed)},
    }


def record(
    db: Session,
    actor: Actor,
    action: Tag,
    target_type: str = "",
    target_id: object = "",
    *,
    summary: dict[str, Any] | None = None,
    comment: str = "",
) -> AuditRecord:
    """Append one audit record to the caller's transaction; it commits or rolls back with the change."""
    row = AuditRecord(
        kind=RecordKind.change,
        actor_id=actor.user_id,
        actor_name=actor.username,
        api_key_id=actor.api_key_id,
        action=str(action),
        target_type=target_type,
        target_id=str(target_id),
        summary=_plain(summary or {}),
        comment=comment,
        ip=actor.ip,
    )
    db.add(row)
    return row


@dataclass(frozen=True)
class DataAccess:
    """What one data access read: the entry, resource and version, the format, the rows."""

    entry_id: int
    resource_id: int
    version_id: int
    data_format: str
    rows: int | None = None
    grant_id: int | None = None  # the grant it was read under, when the entry is 有条件开放


def record_access(
    db: Session, actor: Actor, action: Tag, access: DataAccess, *, summary: dict[str, Any] | None = None
) -> AuditRecord:
    """Record a data access in the caller's transaction, committed before the data is sent: a
    download whose record was not written never starts."""
    row = record(db, actor, action, "resource", access.resource_id, summary=summary)
    row.kind = RecordKind.access
    row.entry_id = access.entry_id
    row.resource_id = access.resource_id
    row.version_id = access.version_id
    row.data_format = access.data_format
    row.rows = access.rows
    row.grant_id = access.grant_id
    return row


def records_for(db: Session, target_type: str, target_id: object) -> list[AuditRecord]:
    """The recorded state changes of one target, oldest first; callers check permission."""
    return list(
        db.scalars(
            select(AuditRecord)
            .where(
                AuditRecord.kind == RecordKind.change,
                AuditRecord.target_type == target_type,
                AuditRecord.target_id == str(target_id),
            )
            .order_by(AuditRecord.id)
        )
    )
