"""Inspecting the audit log: verification, search and export for the operator and the regulator
(Art. 18), each inspection itself recorded."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import SYSTEM, Actor, require, require_login
from kaifang.audit import chain
from kaifang.audit.models import AuditRecord, RecordKind
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import Database

EXPORT_LIMIT = 1_000_000  # rows in one CSV export; narrow the filters for more


def require_inspector(actor: Actor) -> None:
    """The operator and the regulator inspect the log; so does a shell command (the system)."""
    require(
        actor.is_operator or actor.is_regulator or actor == SYSTEM,
        "只有平台运营单位和监管部门可以查阅审计记录",
    )


def verify_chain(db: Session, actor: Actor, key: chain.SigningKey) -> chain.Verification:
    """Seal what is committed, walk the whole chain and record the outcome (shown on the audit page)."""
    require_inspector(actor)
    chain.seal(db)
    db.flush()
    result = chain.verify(db, key.public_hex)
    record(db, actor, Tag.audit_chain_verified, "audit", "chain", summary=result.summary())
    return result


def last_verification(db: Session, actor: Actor) -> AuditRecord | None:
    require_inspector(actor)
    return db.scalar(
        select(AuditRecord)
        .where(AuditRecord.action == str(Tag.audit_chain_verified))
        .order_by(AuditRecord.id.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit search; empty fields do not filter."""

    actor: str = ""  # username, exact
    entry_id: int | None = None
    action: str = ""  # a tag, or a prefix ending in ":" (e.g. "data:access:")
    kind: str = ""
    ip: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def describe(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items() if v}


def _filtered(q: AuditQuery) -> Select[AuditRecord]:
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
    if q.since is not None:
        stmt = stmt.where(AuditRecord.at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditRecord.at < q.until)
    return stmt


def search_records(
    db: Session, actor: Actor, q: AuditQuery, *, page: int = 1, page_size: int = 50
) -> tuple[list[AuditRecord], int]:
    """One page of matching records, newest first, and the number of matches."""
    require_inspector(actor)
    stmt = _filtered(q)
    total = db.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0
    rows = list(
        db.scalars(stmt.order_by(AuditRecord.id.desc()).offset((page - 1) * page_size).limit(page_size))
    )
    record(
        db,
        actor,
        Tag.audit_records_searched,
        "audit",
        "records",
        summary={"filters": q.describe(), "total": total},
    )
    return rows, total


def own_history(
    db: Session, actor: Actor, *, page: int = 1, page_size: int = 50
) -> tuple[list[AuditRecord], int]:
    """The signed-in user's own data accesses, API calls and account events, newest first."""
    require_login(actor)
    stmt = select(AuditRecord).where(
        AuditRecord.actor_id == actor.user_id,
        or_(
            AuditRecord.kind == RecordKind.access,
            and_(AuditRecord.kind == RecordKind.request, AuditRecord.path.startswith("/api/")),
            AuditRecord.action.startswith("account:"),
        ),
    )
    total = db.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0
    rows = list(
        db.scalars(stmt.order_by(AuditRecord.id.desc()).offset((page - 1) * page_size).limit(page_size))
    )
    return rows, total


CSV_COLUMNS = (
    ("id", "记录编号"),
    ("at", "时间（UTC）"),
    ("kind", "类别"),
    ("action", "动作"),
    ("actor_name", "操作者"),
    ("actor_id", "用户编号"),
    ("api_key_id", "API 密钥编号"),
    ("ip", "IP 地址"),
    ("method", "请求方法"),
    ("path", "路径"),
    ("status", "状态码"),
    ("bytes_sent", "发送字节"),
    ("duration_ms", "耗时（毫秒）"),
    ("entry_id", "目录编号"),
    ("resource_id", "资源编号"),
    ("version_id", "版本编号"),
    ("data_format", "格式"),
    ("rows", "行数"),
    ("grant_id", "授权编号"),
    ("target_type", "对象类型"),
    ("target_id", "对象编号"),
    ("comment", "说明"),
    ("user_agent", "客户端"),
)


def export_records(db: Session, actor: Actor, q: AuditQuery) -> Select[AuditRecord]:
    """Record the export and return what to export; the caller commits, then streams `csv_chunks`."""
    require_inspector(actor)
    record(db, actor, Tag.audit_records_exported, "audit", "records", summary={"filters": q.describe()})
    return _filtered(q).order_by(AuditRecord.id).limit(EXPORT_LIMIT)


def csv_chunks(database: Database, stmt: Select[AuditRecord]) -> Iterator[str]:
    """The records as CSV text (UTF-8 with BOM so Excel reads the Chinese header), read in batches
    in a session of its own that lives as long as the stream."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in CSV_COLUMNS])
    yield "\ufeff" + buffer.getvalue()
    with database.session() as db:
        for partition in db.scalars(stmt.execution_options(yield_per=2000)).partitions():
            buffer.seek(0)
            buffer.truncate()
            for row in partition:
                writer.writerow([_cell(getattr(row, name)) for name, _ in CSV_COLUMNS])
            yield buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formulas in a spreadsheet
