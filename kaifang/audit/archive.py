"""Retention: audit records older than `audit_retention_days` move out of the database into
compressed archive files that stay verifiable and searchable (Art. 18; China's Cybersecurity Law
asks for at least six months of network logs, the platform keeps three years by default).

Files: `KAIFANG_HOME/audit-archive/audit-YYYY-MM-<first seq>-<last seq>.parquet`, zstd-compressed
Parquet holding a contiguous stretch of the hash chain: every column of the records (the summary as
JSON text) with each record's seq and seal hash. The chain runs on from the files into the
database, so `kaifang audit verify` re-hashes the archived records from the genesis on and carries
on with the live ones, and the signed checkpoints cover both (`archive_read.walk`). Each move also
leaves a manifest in the chain, an `audit:records:archived` record naming the file with its
SHA-256, size, record count and chain position before and after, signed with the platform's key:
a deleted file is named by its manifest, an edited one by the first record whose hash no longer
matches and by its SHA-256, and a file nobody archived is reported.

What moves: whole calendar months (Beijing time) lying entirely before `now - retention`, as a
prefix of the chain: the move stops at the first younger record, so nothing younger than the
retention leaves the database, and never takes the chain's head (the sealer continues from it). A
month with more than SEGMENT_MAX records becomes several files. The file is complete on disk and
read back against the chain before its records are deleted, in one transaction with the manifest
(on PostgreSQL with the append-only guard lifted for that transaction only). A run that dies
between the two leaves a file past the last manifest, which the next run sets aside.

The server runs this once a day (`AuditWriter`, setting `audit_archive_daily`); where several hosts
serve the platform, turn that off and run it from cron on one host:
`30 3 * * *  KAIFANG_HOME=/srv/kaifang kaifang audit archive`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import JSON, CursorResult, Integer, delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import SYSTEM
from kaifang.audit import chain
from kaifang.audit.models import RECORDS, AuditRecord, AuditSeal
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import Database, UTCDateTime, is_sqlite, utcnow
from kaifang.errors import InvalidInput

if TYPE_CHECKING:
    from kaifang.settings import Settings

MIN_RETENTION_DAYS = 180  # the Cybersecurity Law's six months, with room
SEGMENT_MAX = 500_000  # records in one archive file
ROW_GROUP = 50_000
CITY_ZONE = ZoneInfo("Asia/Shanghai")
NAME = re.compile(r"^audit-(\d{4}-\d{2})-(\d{12})-(\d{12})\.parquet$")
ARCHIVED = str(Tag.audit_records_archived)
_COLUMNS = RECORDS.columns
JSON_COLUMNS = frozenset(c.name for c in _COLUMNS if isinstance(c.type, JSON))


def _arrow_type(column: Any) -> pa.DataType:
    if isinstance(column.type, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(column.type, Integer):
        return pa.int64()
    return pa.string()  # text, and JSON as its text


SCHEMA = pa.schema(
    [("seq", pa.int64()), ("hash", pa.string())] + [(c.name, _arrow_type(c)) for c in _COLUMNS]
)


class ArchiveRefused(RuntimeError):
    """The chain is not intact where records would move: nothing is archived until it is checked."""


def file_row(seq: int, hash_: str, row: AuditRecord) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in chain.CONTENT}
    for name in JSON_COLUMNS:
        values[name] = json.dumps(values[name], ensure_ascii=False, sort_keys=True)
    return {"seq": seq, "hash": hash_, **values}


def record_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record's values as the database held them, from a row of an archive file."""
    values = {name: row[name] for name in chain.CONTENT}
    for name in JSON_COLUMNS:
        values[name] = json.loads(values[name])
    return values


def month_of(at: datetime) -> str:
    return at.astimezone(CITY_ZONE).strftime("%Y-%m")


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    month: str
    first_seq: int
    last_seq: int

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def parse(cls, path: Path) -> ArchiveFile | None:
        match = NAME.match(path.name)
        return cls(path, match[1], int(match[2]), int(match[3])) if match else None


def file_name(month: str, first_seq: int, last_seq: int) -> str:
    return f"audit-{month}-{first_seq:012d}-{last_seq:012d}.parquet"


@dataclass(frozen=True)
class Manifest:
    """What one archive file holds, signed; kept in the chain as an `audit:records:archived` record."""

    file: str
    sha256: str
    size: int
    records: int
    first_seq: int
    last_seq: int
    previous: str  # the seal hash before the first record (the chain's genesis for the first file)
    last_hash: str
    first_at: str  # oldest and newest record time, ISO 8601
    last_at: str
    signature: str = ""

    def message(self) -> bytes:
        return (
            f"kaifang-audit-archive:{self.file}:{self.sha256}:{self.size}:{self.records}:"
            f"{self.first_seq}:{self.last_seq}:{self.previous}:{self.last_hash}"
        ).encode()

    def signed(self, key: chain.SigningKey) -> Manifest:
        return Manifest(**{**asdict(self), "signature": key.sign_bytes(self.message())})

    def valid(self, trusted_key: str) -> bool:
        return chain.signed_by(trusted_key, self.message(), self.signature)

    @classmethod
    def from_summary(cls, summary: Any) -> Manifest | None:
        try:
            return cls(**summary)
        except TypeError:
            return None


def live_manifests(db: Session) -> list[tuple[AuditRecord, Manifest | None]]:
    """The manifests still in the database, newest first (None: not a manifest's shape)."""
    rows = db.scalars(
        select(AuditRecord).where(AuditRecord.action == ARCHIVED).order_by(AuditRecord.id.desc())
    )
    return [(row, Manifest.from_summary(row.summary)) for row in rows]


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class _Segment:
    """An archive file being written: a stretch of the chain of one month."""

    month: str
    previous: str
    first_seq: int
    last_seq: int = 0
    last_hash: str = ""
    records: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None

    def add(self, seq: int, hash_: str, at: datetime) -> None:
        self.last_seq, self.last_hash, self.records = seq, hash_, self.records + 1
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)


class Archive:
    """The archive directory of one platform: moving records into it and reading them back."""

    def __init__(
        self, directory: Path, key: chain.SigningKey, retention_days: int, maintenance_url: str = ""
    ) -> None:
        if retention_days < MIN_RETENTION_DAYS:
            raise InvalidInput(f"审计记录至少保留 {MIN_RETENTION_DAYS} 天（网络日志留存不少于六个月）")
        self.directory = directory
        self.key = key
        self.retention_days = retention_days
        self.maintenance_url = maintenance_url
        self._maintenance: Database | None = None

    @classmethod
    def from_settings(cls, settings: Settings, key: chain.SigningKey) -> Archive:
        return cls(
            settings.home / "audit-archive",
            key,
            settings.audit_retention_days,
            settings.audit_maintenance_database_url,
        )

    def maintenance(self, database: Database) -> Database:
        """Where the records are deleted: on PostgreSQL only a member of the maintenance role may
        (migration 0010), so its own URL when one is set; otherwise the platform's database."""
        if not self.maintenance_url:
            return database
        if self._maintenance is None:
            self._maintenance = Database(self.maintenance_url)
        return self._maintenance

    def until(self, now: datetime) -> datetime:
        """Records before this moment may move: the start of the month (Beijing time) in which
        the retention ends, so whole months move and none younger than the retention."""
        cutoff = (now - timedelta(days=self.retention_days)).astimezone(CITY_ZONE)
        return cutoff.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def present(self) -> list[ArchiveFile]:
        """The archive files on disk, in chain order."""
        if not self.directory.is_dir():
            return []
        found = (ArchiveFile.parse(p) for p in self.directory.iterdir() if p.is_file())
        return sorted((f for f in found if f is not None), key=lambda f: (f.first_seq, f.last_seq))

    def latest(self, db: Session) -> tuple[AuditRecord, Manifest] | None:
        """The newest manifest in the database signed with the platform's key: where the archive ends."""
        for row, manifest in live_manifests(db):
            if manifest is not None and manifest.valid(self.key.public_hex):
                return row, manifest
        return None

    def committed(self, db: Session) -> list[ArchiveFile]:
        """The files whose move was committed; a later one is what a failed run left behind."""
        latest = self.latest(db)
        end = latest[1].last_seq if latest else 0
        return [f for f in self.present() if f.first_seq <= end]

    # --- moving ------------------------------------------------------------------------------------

    def run(self, database: Database, now: datetime | None = None) -> list[Manifest]:
        """Move every whole month past the retention into archive files; returns their manifests."""
        until = self.until(now or utcnow())
        self.directory.mkdir(parents=True, exist_ok=True)
        moved = []
        with self._exclusive():
            with database.session() as db:
                chain.seal(db)  # every committed record has its place in the chain before it moves
            while (manifest := self._move_next(database, until)) is not None:
                moved.append(manifest)
        return moved

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One run at a time on this archive directory (the daily thread, cron, a test)."""
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _move_next(self, database: Database, until: datetime) -> Manifest | None:
        with database.session() as db:
            latest = self.latest(db)
            written = self._write(db, latest[1] if latest else None, until)
        if written is None:
            return None
        manifest, path = written
        try:
            self._commit(self.maintenance(database), manifest)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return manifest

    def _write(self, db: Session, start: Manifest | None, until: datetime) -> tuple[Manifest, Path] | None:
        """Write the next archive file, checking the chain on the way; None when nothing is due."""
        previous, after = (start.last_hash, start.last_seq) if start else (chain.GENESIS, 0)
        top = chain.head(db)
        if top is None or top.seq <= after + 1:
            return None
        first = db.scalar(select(AuditSeal.seq).order_by(AuditSeal.seq).limit(1))
        if first != after + 1:
            raise ArchiveRefused(
                f"数据库中的链条从第 {first} 号开始，归档只到第 {after} 号：请先运行 kaifang audit verify"
            )
        for leftover in self.present():
            # Past the last manifest: written by a run that died before its records moved (they
            # are still in the database). Set aside, never deleted, so it cannot pass for a
            # committed file once the archive grows past its first record.
            if leftover.first_seq > after:
                leftover.path.rename(leftover.path.with_name(leftover.name + ".unfinished"))
        tmp = self.directory / f".writing-{os.getpid()}.parquet.tmp"
        try:
            segment = self._write_rows(db, tmp, previous, after, top.seq, until)
            if segment is None:
                tmp.unlink()
                return None
            return self._seal_file(tmp, segment)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _write_rows(
        self, db: Session, tmp: Path, previous: str, after: int, head: int, until: datetime
    ) -> _Segment | None:
        """Stream the due records of one month into `tmp`, checking each against its seal."""
        walk = chain.Walk(chain.Verification(), self.key.public_hex, {}, previous, after)
        segment: _Segment | None = None
        buffer: list[dict[str, Any]] = []
        with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as out:
            for seal_row, row in chain.seals(db, after):
                if row is None:
                    raise ArchiveRefused(
                        f"第 {seal_row.seq} 号链条记录对应的审计记录 {seal_row.record_id} 已被删除："
                        "请先运行 kaifang audit verify"
                    )
                if seal_row.seq >= head or row.at >= until:
                    break
                month = month_of(row.at)
                if segment is not None and (month > segment.month or segment.records >= SEGMENT_MAX):
                    break
                if not walk.step(seal_row.seq, seal_row.hash, chain.canonical(row), row.id):
                    raise ArchiveRefused(f"{walk.result.problem}：请先运行 kaifang audit verify")
                segment = segment or _Segment(month, previous, seal_row.seq)
                segment.add(seal_row.seq, seal_row.hash, row.at)
                buffer.append(file_row(seal_row.seq, seal_row.hash, row))
                if len(buffer) >= ROW_GROUP:
                    out.write_table(pa.Table.from_pylist(buffer, SCHEMA))
                    buffer.clear()
            if buffer:
                out.write_table(pa.Table.from_pylist(buffer, SCHEMA))
        return segment

    def _seal_file(self, tmp: Path, segment: _Segment) -> tuple[Manifest, Path]:
        """Read the file back against the chain, put it in place and describe it in a manifest."""
        _fsync(tmp)
        walk = chain.Walk(
            chain.Verification(), self.key.public_hex, {}, segment.previous, segment.first_seq - 1
        )
        for row in rows_of(tmp):
            if not walk.step(row["seq"], row["hash"], chain.canonical_values(record_values(row)), row["id"]):
                raise ArchiveRefused(f"归档文件读回后与链条不符（{walk.result.problem}），未移动任何记录")
        path = self.directory / file_name(segment.month, segment.first_seq, segment.last_seq)
        os.replace(tmp, path)
        _fsync(self.directory)
        assert segment.first_at is not None and segment.last_at is not None
        manifest = Manifest(
            file=path.name,
            sha256=sha256_of(path),
            size=path.stat().st_size,
            records=segment.records,
            first_seq=segment.first_seq,
            last_seq=segment.last_seq,
            previous=segment.previous,
            last_hash=segment.last_hash,
            first_at=segment.first_at.isoformat(),
            last_at=segment.last_at.isoformat(),
        ).signed(self.key)
        return manifest, path

    def _commit(self, database: Database, manifest: Manifest) -> None:
        """Delete the archived records and their seals and write the manifest, in one transaction."""
        with database.session() as db:
            if not is_sqlite(db):
                _take_maintenance_role(db)
            in_range = AuditSeal.seq.between(manifest.first_seq, manifest.last_seq)
            quiet = {"synchronize_session": False}
            records = db.execute(
                delete(AuditRecord).where(AuditRecord.id.in_(select(AuditSeal.record_id).where(in_range))),
                execution_options=quiet,
            )
            seals = db.execute(delete(AuditSeal).where(in_range), execution_options=quiet)
            counts = {cast(CursorResult[Any], r).rowcount for r in (records, seals)}
            if counts != {manifest.records}:
                raise ArchiveRefused("归档期间链条有变动（另一个归档进程？），本次未移动任何记录")
            record(
                db,
                SYSTEM,
                Tag.audit_records_archived,
                "audit_archive",
                manifest.file,
                summary=asdict(manifest),
                comment=f"超过保留期（{self.retention_days} 天）的审计记录已移入归档文件",
            )


def rows_of(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of an archive file in order, a row group at a time."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP):
        yield from batch.to_pylist()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


MAINTENANCE_ROLE = "kaifang_audit_maintainer"


def _take_maintenance_role(db: Session) -> None:
    """Act as the maintenance role for this transaction; a role that is not a member is told how
    to set one up instead of failing with the database's message."""
    try:
        with db.begin_nested():
            db.execute(text(f"SET LOCAL ROLE {MAINTENANCE_ROLE}"))
    except DBAPIError as exc:
        raise ArchiveRefused(
            f"数据库账号不是审计维护角色 {MAINTENANCE_ROLE} 的成员，不能删除已归档的审计记录："
            "请设置 KAIFANG_AUDIT_MAINTENANCE_DATABASE_URL（见 README“审计记录的保留与归档”）"
        ) from exc
