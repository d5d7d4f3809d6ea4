"""Writing audit records. Call `record` inside the same session (transaction) as the change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, SessionTransaction

from kaifang.accounts.permissions import Actor
from kaifang.audit.models import RECORDS, AuditRecord, RecordKind
from kaifang.audit.tags import Tag
from kaifang.db import utcnow
from kaifang.errors import InvalidInput

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


# Set in a session's info when auditing is switched off (setting `audit_enabled`, never in
# production): data accesses go unrecorded; state changes are recorded all the same.
ACCESS_OFF = "kaifang.audit.access_off"


PENDING = "kaifang.audit.pending_accesses"


def record_access(
    db: Session,
    actor: Actor,
    action: Tag,
    access: DataAccess,
    *,
    summary: dict[str, Any] | None = None,
    http: Mapping[str, Any] | None = None,
) -> None:
    """Record a data access, kept before the data is sent: a download whose record was not kept
    never starts.

    The record waits in the session and is dropped if its transaction rolls back. A request's
    transaction (`web.security.request_transaction`) takes it out once it has committed and
    appends it to the audit journal before the response is sent (`take_accesses`,
    kaifang.audit.journal); a read writes nothing to the database. Any other
    session writes it as a Core insert just before it commits (`_write_accesses`). `http`: the
    request's own facts (`middleware.request_facts`) when this record stands for the request too."""
    if db.info.get(ACCESS_OFF):
        return
    values = {
        "at": utcnow(),
        "kind": RecordKind.access,
        "actor_id": actor.user_id,
        "actor_name": actor.username,
        "api_key_id": actor.api_key_id,
        "action": str(action),
        "target_type": "resource",
        "target_id": str(access.resource_id),
        "summary": _plain(summary or {}),
        "ip": actor.ip,
        "entry_id": access.entry_id,
        "resource_id": access.resource_id,
        "version_id": access.version_id,
        "data_format": access.data_format,
        "rows": access.rows,
        "grant_id": access.grant_id,
        **(http or {}),
    }
    if _holds_nul(values):  # as the session refuses it for ORM objects (kaifang.db)
        raise InvalidInput(
            "提交的内容含有不可见的控制字符（NUL），请删除后重试", fields={"summary": "含有非法字符"}
        )
    db.connection()  # the record belongs to the transaction: begin it if the caller has not yet
    db.info.setdefault(PENDING, []).append(values)


def take_accesses(db: Session) -> list[dict[str, Any]]:
    """The session's data-access records not written yet, taken out of its transaction: a
    request's transaction (`web.security.request_transaction`) journals them instead
    (`kaifang.audit.journal`) before the response is sent."""
    pending: list[dict[str, Any]] = db.info.pop(PENDING, [])
    return pending


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


@event.listens_for(Session, "before_commit")
def _write_accesses(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    if pending:  # on the connection, not through the session: no autoflush, no ORM events to run
        session.connection().execute(insert(RECORDS), pending)


@event.listens_for(Session, "after_transaction_end")
def _drop_accesses(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the transaction ended without a commit (rolled back, closed)
        session.info.pop(PENDING, None)


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
