"""The hash chain over audit records, its signed checkpoints, and their verification.

Each committed record gets a seal: the next sequence number and
`sha256(previous seal's hash ‖ canonical content of the record ‖ seq)`. Editing a record, deleting
one, or swapping two changes a hash the chain no longer matches; deleting seals leaves a gap in the
sequence; rewriting the chain from some point on, or cutting its end off, contradicts the latest
checkpoint, which only the holder of the platform's Ed25519 key can sign.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaifang.audit.models import RECORDS, AuditCheckpoint, AuditRecord, AuditSeal
from kaifang.db import is_sqlite, utcnow

if TYPE_CHECKING:
    from kaifang.settings import Settings

GENESIS = "0" * 64
SEAL_BATCH = 5_000
# Every column of a record is covered by its hash, the id included: moving content between rows
# is a change like any other.
CONTENT = tuple(column.name for column in RECORDS.columns)
_ADVISORY_LOCK = 0x6B6169_66616E67  # "kaifang": one sealer at a time across app processes


def _value(value: Any) -> Any:
    if isinstance(value, datetime):  # in UTC whatever time zone the database session answers in
        return value.astimezone(UTC).isoformat()
    return value


def canonical_values(values: Mapping[Any, Any]) -> bytes:
    """A record's content as bytes that do not depend on the database, the dict order or where the
    values were read from (a database row or an archive file)."""
    content = {name: _value(values[name]) for name in CONTENT}
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def canonical(record: AuditRecord) -> bytes:
    return canonical_values({name: getattr(record, name) for name in CONTENT})


def link_content(previous: str, content: bytes, seq: int) -> str:
    return hashlib.sha256(previous.encode() + content + str(seq).encode()).hexdigest()


def link(previous: str, record: AuditRecord, seq: int) -> str:
    return link_content(previous, canonical(record), seq)


# --- signing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningKey:
        seed = settings.audit_signing_key or f"kaifang-audit:{settings.secret_key}"
        return cls.from_seed(seed.encode())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))

    @property
    def public_hex(self) -> str:
        return self.private.public_key().public_bytes_raw().hex()

    def sign(self, seq: int, hash_: str) -> str:
        return self.sign_bytes(_signed_text(seq, hash_))

    def sign_bytes(self, message: bytes) -> str:
        return self.private.sign(message).hex()


def _signed_text(seq: int, hash_: str) -> bytes:
    return f"kaifang-audit-checkpoint:{seq}:{hash_}".encode()


def signed_by(trusted: str, message: bytes, signature: str) -> bool:
    """Whether `signature` (hex) is the trusted key's signature of `message`."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(trusted)).verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_valid(checkpoint: AuditCheckpoint, trusted: str) -> bool:
    return checkpoint.public_key == trusted and signed_by(
        trusted, _signed_text(checkpoint.seq, checkpoint.hash), checkpoint.signature
    )


# --- sealing -----------------------------------------------------------------------------------------


def head(db: Session) -> AuditSeal | None:
    return db.scalar(select(AuditSeal).order_by(AuditSeal.seq.desc()).limit(1))


def seal(db: Session, limit: int = SEAL_BATCH, *, late: bool = True) -> int:
    """Seal committed records not sealed yet, oldest id first; returns how many. The caller commits.

    `late`: also look for records that committed after records with higher ids were sealed (a
    scan of a window behind the highest sealed id); without it only ids above it are read, which
    is what the audit writer does every second, sweeping for late ones now and then.
    On PostgreSQL an advisory lock keeps two processes from sealing at once (the loser returns 0
    and seals next time); on SQLite the write transaction does the same. Rows are read and
    written with Core statements: this runs every second in every app process.
    """
    if not is_sqlite(db) and not db.scalar(text(f"SELECT pg_try_advisory_xact_lock({_ADVISORY_LOCK})")):
        return 0
    last = head(db)
    previous, seq = (last.hash, last.seq) if last else (GENESIS, 0)
    start = db.scalar(select(func.max(AuditSeal.record_id))) or 0
    records = RECORDS
    stmt = select(records).order_by(records.c.id).limit(limit)
    if late:  # records below the highest sealed id that committed late are found by the outer join
        stmt = stmt.outerjoin(AuditSeal, AuditSeal.record_id == records.c.id).where(
            AuditSeal.seq.is_(None), records.c.id > _late_floor(db, start)
        )
    else:
        stmt = stmt.where(records.c.id > start)
    seals = []
    for row in db.execute(stmt).mappings():
        seq += 1
        previous = link_content(previous, canonical_values(row), seq)
        seals.append({"seq": seq, "record_id": row["id"], "hash": previous})
    if not seals:
        return 0
    try:
        db.execute(insert(AuditSeal), seals)
    except IntegrityError:  # another process sealed the same records first
        db.rollback()
        return 0
    return len(seals)


def _late_floor(db: Session, start: int) -> int:
    """Ids below this are all sealed: a window behind the highest sealed id catches records whose
    transaction committed after later ones were sealed, without scanning the whole table."""
    return max(0, start - 100_000)


def checkpoint(db: Session, key: SigningKey, every: timedelta) -> AuditCheckpoint | None:
    """Sign the chain's head when it moved and the last checkpoint is older than `every`."""
    top = head(db)
    if top is None:
        return None
    last = db.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))
    if last is not None and (last.seq == top.seq or utcnow() - last.at < every):
        return None
    row = AuditCheckpoint(
        seq=top.seq, hash=top.hash, public_key=key.public_hex, signature=key.sign(top.seq, top.hash)
    )
    db.add(row)
    db.flush()
    return row


# --- verification ------------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool = True
    records: int = 0  # sealed records checked, in archive files and in the database
    archived: int = 0  # of which in archive files
    archive_files: int = 0
    checkpoints: int = 0
    unsealed: int = 0  # committed records the sealer has not reached yet
    record_id: int | None = None  # the first record found altered, deleted or out of order
    seq: int | None = None
    problem: str = ""
    notes: list[str] = field(default_factory=list)  # what was seen that is no tampering

    def fail(self, problem: str, *, record_id: int | None = None, seq: int | None = None) -> Verification:
        self.ok, self.problem, self.record_id, self.seq = False, problem, record_id, seq
        return self

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "archived": self.archived,
            "archive_files": self.archive_files,
            "checkpoints": self.checkpoints,
            "unsealed": self.unsealed,
            "record_id": self.record_id,
            "seq": self.seq,
            "problem": self.problem,
        }


@dataclass
class Walk:
    """The chain followed seal by seal: from the genesis through the archive files (oldest first)
    into the database. `place` prefixes a problem with where the record lies (an archive file)."""

    result: Verification
    trusted_key: str  # hex public key checkpoints and archive files must be signed with
    marks: dict[int, AuditCheckpoint]
    previous: str = GENESIS
    seq: int = 0  # the last seal checked

    def expect(self, seq: int, place: str = "") -> bool:
        if seq == self.seq + 1:
            return True
        self.result.fail(
            f"{place}第 {self.seq + 1} 号起的链条记录缺失（下一条为第 {seq} 号）", seq=self.seq + 1
        )
        return False

    def step(self, seq: int, stored: str, content: bytes, record_id: int, place: str = "") -> bool:
        """Check the next seal against the record's content; False (the result failed) if it breaks."""
        if not self.expect(seq, place):
            return False
        computed = link_content(self.previous, content, seq)
        if computed != stored:
            self.result.fail(
                f"{place}审计记录 {record_id}（第 {seq} 号）的内容或次序已被改动",
                record_id=record_id,
                seq=seq,
            )
            return False
        mark = self.marks.get(seq)
        if mark is not None and mark.hash != computed:
            self.result.fail(
                f"{place}第 {seq} 号处的链条与签名检查点不符：链条被重写", record_id=record_id, seq=seq
            )
            return False
        self.previous, self.seq = computed, seq
        self.result.records += 1
        return True


ArchiveWalk = Callable[[Session, Walk], bool]  # walks the archive files first; False when it failed


def seals(db: Session, after: int) -> Iterator[tuple[AuditSeal, AuditRecord | None]]:
    """Seals in order with their records, a batch at a time (constant memory on long chains)."""
    while True:
        rows = db.execute(
            select(AuditSeal, AuditRecord)
            .outerjoin(AuditRecord, AuditRecord.id == AuditSeal.record_id)
            .where(AuditSeal.seq > after)
            .order_by(AuditSeal.seq)
            .limit(SEAL_BATCH)
        ).all()
        if not rows:
            return
        yield from ((row[0], row[1]) for row in rows)
        after = rows[-1][0].seq
        db.expunge_all()


def verify(db: Session, trusted_key: str, archived: ArchiveWalk | None = None) -> Verification:
    """Walk the chain and the checkpoints; name the first record that was altered, deleted or
    reordered. `trusted_key` is the hex public key checkpoints must be signed with; `archived`
    walks the records moved to archive files, which come before those in the database."""
    result = Verification()
    marks = {c.seq: c for c in db.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))}
    walk = Walk(result, trusted_key, marks)
    if archived is not None and not archived(db, walk):
        return result
    for seal_row, record in seals(db, walk.seq):
        if not walk.expect(seal_row.seq):
            return result
        if record is None:
            return result.fail(
                f"第 {seal_row.seq} 号链条记录对应的审计记录 {seal_row.record_id} 已被删除",
                record_id=seal_row.record_id,
                seq=seal_row.seq,
            )
        if not walk.step(seal_row.seq, seal_row.hash, canonical(record), record.id):
            return result
    for mark in marks.values():
        if not signature_valid(mark, trusted_key):
            return result.fail(
                f"检查点 {mark.id}（第 {mark.seq} 号）的签名无效或非本平台密钥所签", seq=mark.seq
            )
        if mark.seq > walk.seq:
            return result.fail(
                f"检查点记录到第 {mark.seq} 号，链条只到第 {walk.seq} 号：末尾的记录被删除", seq=walk.seq + 1
            )
        result.checkpoints += 1
    result.unsealed = (
        db.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .outerjoin(AuditSeal, AuditSeal.record_id == AuditRecord.id)
            .where(AuditSeal.seq.is_(None))
        )
        or 0
    )
    return result
