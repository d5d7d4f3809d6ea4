"""Inspecting the audit log: verification, search and export for the operator and the regulator
(Art. 18), each inspection itself recorded."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain as chained
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import SYSTEM, Actor, require, require_login
from kaifang.audit import archive_read, chain
from kaifang.audit.archive import Archive
from kaifang.audit.models import AuditRecord, RecordKind
from kaifang.audit.query import AuditQuery, filtered
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import Database

__all__ = ["AuditQuery", "SearchResult", "export_records", "search_records", "verify_chain"]

EXPORT_LIMIT = 1_000_000  # rows in one CSV export; narrow the filters for more


def require_inspector(actor: Actor) -> None:
    """The operator and the regulator inspect the log; so does a shell command (the system)."""
    require(
        actor.is_operator or actor.is_regulator or actor == SYSTEM,
        "只有平台运营单位和监管部门可以查阅审计记录",
    )


def verify_chain(
    db: Session, actor: Actor, key: chain.SigningKey, archive: Archive | None = None
) -> chain.Verification:
    """Seal what is committed, walk the whole chain (from the archive files on, when there are
    any) and record the outcome (shown on the audit page)."""
    require_inspector(actor)
    chain.seal(db)
    db.flush()
    walk_archive = (
        (lambda session, walk: archive_read.walk_archive(archive, session, walk)) if archive else None
    )
    result = chain.verify(db, key.public_hex, walk_archive)
    record(db, actor, Tag.audit_chain_verified, "audit", "chain", summary=result.summary())
    return result


def archive_status(db: Session, actor: Actor, archive: Archive) -> archive_read.ArchiveStatus:
    """Retention and archive at a glance: the oldest record in the database, the archive files."""
    require_inspector(actor)
    return archive_read.status(archive, db)


def last_verification(db: Session, actor: Actor) -> AuditRecord | None:
    require_inspector(actor)
    return db.scalar(
        select(AuditRecord)
        .where(AuditRecord.action == str(Tag.audit_chain_verified))
        .order_by(AuditRecord.id.desc())
        .limit(1)
    )


@dataclass
class SearchResult:
    rows: list[AuditRecord]  # one page, newest first: the database's records, then archived ones
    total: int
    archived: int = 0  # of the matches, how many are in archive files
    archived_ids: set[int] = field(default_factory=set)  # the archived records on this page


def search_records(
    db: Session,
    actor: Actor,
    q: AuditQuery,
    *,
    page: int = 1,
    page_size: int = 50,
    archive: Archive | None = None,
) -> SearchResult:
    """One page of matching records and the number of matches. When the time range reaches back
    past the retention, the archive files are searched too (after the database's records)."""
    require_inspector(actor)
    stmt = filtered(q)
    live = db.scalar(stmt.with_only_columns(func.count()).order_by(None)) or 0
    files = archive_read.reaches(archive, db, q) if archive else []
    archived = archive_read.count(files, q)
    offset = (page - 1) * page_size
    rows = list(db.scalars(stmt.order_by(AuditRecord.id.desc()).offset(offset).limit(page_size)))
    older = archive_read.page(files, q, max(0, offset - live), page_size - len(rows))
    summary = {"filters": q.describe(), "total": live + archived, "archived": archived}
    record(db, actor, Tag.audit_records_searched, "audit", "records", summary=summary)
    return SearchResult(rows + older, live + archived, archived, {r.id for r in older})


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
    ("summary", "摘要"),  # before/after of a change; filters and download receipt of an access
    ("user_agent", "客户端"),
)


@dataclass(frozen=True)
class Export:
    """What an export streams: the archived records the time range reaches (oldest first), then
    the database's."""

    q: AuditQuery
    stmt: Select[AuditRecord]
    files: list[Path]


def export_records(db: Session, actor: Actor, q: AuditQuery, archive: Archive | None = None) -> Export:
    """Record the export and return what to export; the caller commits, then streams `csv_chunks`."""
    require_inspector(actor)
    record(db, actor, Tag.audit_records_exported, "audit", "records", summary={"filters": q.describe()})
    files = archive_read.reaches(archive, db, q) if archive else []
    return Export(q, filtered(q).order_by(AuditRecord.id).limit(EXPORT_LIMIT), files)


def csv_chunks(database: Database, export: Export) -> Iterator[str]:
    """The records as CSV text (UTF-8 with BOM so Excel reads the Chinese header), read in batches
    (the database's in a session of its own that lives as long as the stream)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([label for _, label in CSV_COLUMNS])
    yield "\ufeff" + buffer.getvalue()
    with database.session() as db:
        live = db.scalars(export.stmt.execution_options(yield_per=2000))
        rows = islice(
            chained(archive_read.oldest_first(export.files, export.q, EXPORT_LIMIT), live), EXPORT_LIMIT
        )
        while batch := list(islice(rows, 2000)):
            buffer.seek(0)
            buffer.truncate()
            for row in batch:
                writer.writerow([_cell(getattr(row, name)) for name, _ in CSV_COLUMNS])
            yield buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formulas in a spreadsheet
