"""Reading the audit archive back: verifying it as the start of the chain, searching it with
DuckDB when an inspector's time range reaches past the retention, and its status for the audit
page. The files and how they are written: `kaifang.audit.archive`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaifang.audit import chain
from kaifang.audit.archive import (
    ARCHIVED,
    Archive,
    ArchiveFile,
    Manifest,
    live_manifests,
    record_values,
    rows_of,
    sha256_of,
)
from kaifang.audit.models import AuditRecord
from kaifang.audit.query import AuditQuery, duckdb_where
from kaifang.db import utcnow

UNREADABLE = (pa.ArrowException, OSError, KeyError, TypeError, ValueError)  # json errors are ValueErrors


# --- verification ------------------------------------------------------------------------------------


def walk_archive(archive: Archive, db: Session, walk: chain.Walk) -> bool:
    """The archived part of the chain, for `chain.verify`: every committed file re-hashed in
    order from the genesis, then each manifest held against its file (present, same SHA-256,
    signed by the platform) and each file against its manifest. False when it found tampering."""
    result = walk.result
    latest = archive.latest(db)
    end = latest[1].last_seq if latest else 0
    files = archive.present()
    committed = [f for f in files if f.first_seq <= end]
    result.notes += [f"归档文件 {f.name} 属于未完成的归档，已忽略" for f in files if f.first_seq > end]
    manifests = _manifests(archive, db, committed, result)
    if manifests is None:
        return False
    for archived in committed:
        if archived.first_seq > walk.seq + 1 and _missing(manifests, walk.seq + 1, result):
            return False
        if not _walk_file(archived, walk):
            return False
    if end > walk.seq and _missing(manifests, walk.seq + 1, result):
        return False
    return _held_against(manifests, committed, result)


def _manifests(
    archive: Archive, db: Session, committed: list[ArchiveFile], result: chain.Verification
) -> dict[str, Manifest] | None:
    """Every manifest, in the database and in the files, by file name; None (failed) for a
    manifest the platform's key did not sign."""
    found: list[tuple[int, Any]] = [(row.id, row.summary) for row, _ in live_manifests(db)]
    for archived in committed:
        try:
            table = pq.read_table(
                archived.path, columns=["id", "summary"], filters=[("action", "=", ARCHIVED)]
            )
            found += [(row["id"], json.loads(row["summary"])) for row in table.to_pylist()]
        except UNREADABLE:
            continue  # the walk names the unreadable file
    manifests = {}
    for record_id, summary in found:
        manifest = Manifest.from_summary(summary)
        if manifest is None or not manifest.valid(archive.key.public_hex):
            result.fail(
                f"归档记录 {record_id} 不是本平台密钥签名的归档清单：已被伪造或改动", record_id=record_id
            )
            return None
        manifests[manifest.file] = manifest
    return manifests


def _missing(manifests: dict[str, Manifest], seq: int, result: chain.Verification) -> bool:
    """Name the archive file that held `seq`, if a manifest says which; True when it did."""
    for manifest in manifests.values():
        if manifest.first_seq <= seq <= manifest.last_seq:
            result.fail(
                f"归档文件 {manifest.file}（第 {manifest.first_seq}–{manifest.last_seq} 号记录）缺失", seq=seq
            )
            return True
    return False


def _walk_file(archived: ArchiveFile, walk: chain.Walk) -> bool:
    place = f"归档文件 {archived.name} 中的"
    count = 0
    try:
        for row in rows_of(archived.path):
            content = chain.canonical_values(record_values(row))
            if not walk.step(row["seq"], row["hash"], content, row["id"], place):
                return False
            count += 1
    except UNREADABLE:
        walk.result.fail(f"归档文件 {archived.name} 无法读取：已损坏或被改动", seq=walk.seq + 1)
        return False
    walk.result.archived += count
    walk.result.archive_files += 1
    return True


def _held_against(
    manifests: dict[str, Manifest], committed: list[ArchiveFile], result: chain.Verification
) -> bool:
    on_disk = {f.name: f for f in committed}
    for manifest in manifests.values():
        archived = on_disk.get(manifest.file)
        if archived is None:
            result.fail(f"归档文件 {manifest.file}（第 {manifest.first_seq}–{manifest.last_seq} 号记录）缺失")
            return False
        if sha256_of(archived.path) != manifest.sha256:
            result.fail(f"归档文件 {manifest.file} 已被改动：SHA-256 与签名的归档清单不符")
            return False
    for name in on_disk.keys() - manifests.keys():
        result.fail(f"归档文件 {name} 不在任何签名的归档清单中：不是本平台归档的文件")
        return False
    return True


# --- search ------------------------------------------------------------------------------------------


def reaches(archive: Archive, db: Session, q: AuditQuery) -> list[Path]:
    """The archive files a search must read: when its time range reaches back past what the
    database still holds (a search without dates stays in the database, as it is the usual one)."""
    latest = archive.latest(db)
    if latest is None or not q.dated:
        return []
    if q.since is not None and q.since > datetime.fromisoformat(latest[1].last_at):
        return []
    return [f.path for f in archive.committed(db)]


def _select(files: list[Path], q: AuditQuery, tail: str, *extra: Any) -> Iterator[dict[str, Any]]:
    """Run `SELECT * … WHERE <q> <tail>` over the files in DuckDB; rows a batch at a time."""
    where, params = duckdb_where(q)
    # The WHERE clause is built from fixed column names; every value is a parameter.
    sql = f"SELECT * FROM read_parquet(?) WHERE {where} {tail}"  # noqa: S608
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        cursor = con.execute(sql, [[str(f) for f in files], *params, *extra])
        names = [d[0] for d in cursor.description or ()]
        while batch := cursor.fetchmany(2000):
            yield from (dict(zip(names, row, strict=True)) for row in batch)


def count(files: list[Path], q: AuditQuery) -> int:
    if not files:
        return 0
    where, params = duckdb_where(q)
    sql = f"SELECT count(*) FROM read_parquet(?) WHERE {where}"  # noqa: S608 (values are parameters)
    with duckdb.connect() as con:
        row = con.execute(sql, [[str(f) for f in files], *params]).fetchone()
    return int(row[0]) if row else 0


def page(files: list[Path], q: AuditQuery, offset: int, limit: int) -> list[AuditRecord]:
    """Archived records matching `q`, newest first (not attached to any session)."""
    if not files or limit <= 0:
        return []
    return [_record(row) for row in _select(files, q, "ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset)]


def oldest_first(files: list[Path], q: AuditQuery, limit: int) -> Iterator[AuditRecord]:
    """Archived records matching `q`, oldest first, a batch at a time (the CSV export)."""
    if files:
        yield from (_record(row) for row in _select(files, q, "ORDER BY id LIMIT ?", limit))


def _record(row: dict[str, Any]) -> AuditRecord:
    return AuditRecord(**record_values(row))


# --- status ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveStatus:
    retention_days: int
    directory: Path
    oldest_live: datetime | None  # the oldest record still in the database
    files: int
    size: int  # bytes of all archive files
    records: int  # records in them
    last_run: datetime | None  # when records last moved
    next_until: datetime  # records before this move at the next run


def status(archive: Archive, db: Session) -> ArchiveStatus:
    files = archive.committed(db)
    latest = archive.latest(db)
    records = 0
    for archived in files:
        try:
            records += pq.ParquetFile(archived.path).metadata.num_rows
        except UNREADABLE:
            continue  # verification names it
    return ArchiveStatus(
        retention_days=archive.retention_days,
        directory=archive.directory,
        oldest_live=db.scalar(select(func.min(AuditRecord.at))),
        files=len(files),
        size=sum(f.path.stat().st_size for f in files if f.path.exists()),
        records=records,
        last_run=latest[0].at if latest else None,
        next_until=archive.until(utcnow()),
    )
