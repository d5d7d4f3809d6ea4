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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaifang.audit.models import AuditCheckpoint, AuditRecord, AuditSeal
from kaifang.db import is_sqlite, utcnow

if TYPE_CHECKING:
    from kaifang.settings import Settings

GENESIS = "0" * 64
SEAL_BATCH = 5_000
# Every column of a record is covered by its hash, the id included: moving content between rows
# is a change like any other.
CONTENT = tuple(column.name for column in AuditRecord.__table__.columns)
_ADVISORY_LOCK = 0x6B6169_66616E67  # "kaifang": one sealer at a time across app processes


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def canonical(record: AuditRecord) -> bytes:
    """The record's content as bytes that do not depend on the database or the dict order."""
    content = {name: _value(getattr(record, name)) for name in CONTENT}
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def link(previous: str, record: AuditRecord, seq: int) -> str:
    return hashlib.sha256(previous.encode() + canonical(record) + str(seq).encode()).hexdigest()


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
        return self.private.sign(_signed_text(seq, hash_)).hex()


def _signed_text(seq: int, hash_: str) -> bytes:
    return f"kaifang-audit-checkpoint:{seq}:{hash_}".encode()


def signature_valid(checkpoint: AuditCheckpoint, trusted: str) -> bool:
    if checkpoint.public_key != trusted:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(trusted)).verify(
            bytes.fromhex(checkpoint.signature), _signed_text(checkpoint.seq, checkpoint.hash)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# --- sealing -----------------------------------------------------------------------------------------


def head(db: Session) -> AuditSeal | None:
    return db.scalar(select(AuditSeal).order_by(AuditSeal.seq.desc()).limit(1))


def seal(db: Session, limit: int = SEAL_BATCH) -> int:
    """Seal committed records not sealed yet, oldest id first; returns how many. The caller commits.

    On PostgreSQL an advisory lock keeps two processes from sealing at once (the loser returns 0
    and seals next time); on SQLite the write transaction does the same.
    """
    if not is_sqlite(db) and not db.scalar(text(f"SELECT pg_try_advisory_xact_lock({_ADVISORY_LOCK})")):
        return 0
    last = head(db)
    previous, seq = (last.hash, last.seq) if last else (GENESIS, 0)
    start = db.scalar(select(func.max(AuditSeal.record_id))) or 0
    # Records below the highest sealed id that committed late are found by the outer join.
    pending = db.scalars(
        select(AuditRecord)
        .outerjoin(AuditSeal, AuditSeal.record_id == AuditRecord.id)
        .where(AuditSeal.seq.is_(None), AuditRecord.id > _late_floor(db, start))
        .order_by(AuditRecord.id)
        .limit(limit)
    ).all()
    for record in pending:
        seq += 1
        previous = link(previous, record, seq)
        db.add(AuditSeal(seq=seq, record_id=record.id, hash=previous))
    try:
        db.flush()
    except IntegrityError:  # another process sealed the same records first
        db.rollback()
        return 0
    return len(pending)


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
    records: int = 0  # sealed records checked
    checkpoints: int = 0
    unsealed: int = 0  # committed records the sealer has not reached yet
    record_id: int | None = None  # the first record found altered, deleted or out of order
    seq: int | None = None
    problem: str = ""
    details: list[str] = field(default_factory=list)

    def fail(self, problem: str, *, record_id: int | None = None, seq: int | None = None) -> Verification:
        self.ok, self.problem, self.record_id, self.seq = False, problem, record_id, seq
        return self

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "unsealed": self.unsealed,
            "record_id": self.record_id,
            "seq": self.seq,
            "problem": self.problem,
        }


def _seals(db: Session) -> Iterator[tuple[AuditSeal, AuditRecord | None]]:
    """Seals in order with their records, a batch at a time (constant memory on long chains)."""
    after = 0
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


def verify(db: Session, trusted_key: str) -> Verification:
    """Walk the chain and the checkpoints; name the first record that was altered, deleted or
    reordered. `trusted_key` is the hex public key checkpoints must be signed with."""
    result = Verification()
    hashes_at = {c.seq: c for c in db.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))}
    previous, expected_seq = GENESIS, 1
    for seal_row, record in _seals(db):
        if seal_row.seq != expected_seq:
            return result.fail(
                f"第 {expected_seq} 号起的链条记录缺失（下一条为第 {seal_row.seq} 号）", seq=expected_seq
            )
        if record is None:
            return result.fail(
                f"第 {seal_row.seq} 号链条记录对应的审计记录 {seal_row.record_id} 已被删除",
                record_id=seal_row.record_id,
                seq=seal_row.seq,
            )
        computed = link(previous, record, seal_row.seq)
        if computed != seal_row.hash:
            return result.fail(
                f"审计记录 {record.id}（第 {seal_row.seq} 号）的内容或次序已被改动",
                record_id=record.id,
                seq=seal_row.seq,
            )
        mark = hashes_at.get(seal_row.seq)
        if mark is not None and mark.hash != computed:
            return result.fail(
                f"第 {seal_row.seq} 号处的链条与签名检查点不符：链条被重写",
                record_id=record.id,
                seq=seal_row.seq,
            )
        previous, expected_seq = computed, expected_seq + 1
        result.records += 1
    last_seq = expected_seq - 1
    for mark in hashes_at.values():
        if not signature_valid(mark, trusted_key):
            return result.fail(
                f"检查点 {mark.id}（第 {mark.seq} 号）的签名无效或非本平台密钥所签", seq=mark.seq
            )
        if mark.seq > last_seq:
            return result.fail(
                f"检查点记录到第 {mark.seq} 号，链条只到第 {last_seq} 号：末尾的记录被删除", seq=last_seq + 1
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
