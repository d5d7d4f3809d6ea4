"""Retention: records past it move to monthly archive files that stay verifiable and searchable."""

from __future__ import annotations

import csv
import io
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, text, update

from kaifang.accounts.permissions import SYSTEM
from kaifang.app import Platform
from kaifang.audit import chain
from kaifang.audit.archive import SCHEMA, Archive, ArchiveFile, ArchiveRefused, Manifest, rows_of
from kaifang.audit.inspection import verify_chain
from kaifang.audit.models import AuditRecord
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.audit.writer import AuditWriter
from kaifang.cli import main
from kaifang.db import is_sqlite, utcnow
from kaifang.errors import InvalidInput
from kaifang.settings import load_settings
from tests.conftest import Factory, csrf_token, login

RETENTION = 180
DAYS_AGO = list(range(400, -1, -20))  # 21 records, one every 20 days: about 7 months past the retention


@pytest.fixture
def archive(platform: Platform) -> Iterator[Archive]:
    """The platform's archive directory, empty, with the shortest retention; emptied afterwards."""
    directory = platform.audit.archive.directory
    shutil.rmtree(directory, ignore_errors=True)
    yield Archive(directory, platform.audit.key, RETENTION)
    shutil.rmtree(directory, ignore_errors=True)


def _history(platform: Platform, days_ago: list[int]) -> list[int]:
    """One download record per day given (oldest first), sealed, with a checkpoint halfway and one
    at the head; returns their ids. The chain must be empty before (it is, after the fixture)."""
    now = utcnow()
    with platform.db.session() as db:
        assert chain.head(db) is None
        rows = [
            AuditRecord(
                at=now - timedelta(days=days),
                kind="access",
                action="data:access:download",
                actor_name="zhang" if n % 2 == 0 else "li",
                ip=f"10.0.0.{n}",
                entry_id=7,
                resource_id=3,
                data_format="csv",
                rows=100 + n,
                summary={"filters": {"区": "和平区"}, "n": n},
            )
            for n, days in enumerate(days_ago)
        ]
        db.add_all(rows)
    with platform.db.session() as db:
        chain.seal(db, limit=len(rows) // 2)
        chain.checkpoint(db, platform.audit.key, every=timedelta(0))
    with platform.db.session() as db:
        chain.seal(db)
        chain.checkpoint(db, platform.audit.key, every=timedelta(0))
    return [row.id for row in rows]


def _verify(platform: Platform) -> chain.Verification:
    with platform.db.session() as db:
        return verify_chain(db, SYSTEM, platform.audit.key, platform.audit.archive)


def _live_ids(platform: Platform) -> set[int]:
    with platform.db.session() as db:
        return set(db.scalars(select(AuditRecord.id)))


def test_records_past_the_retention_move_to_monthly_files_and_verify(
    platform: Platform, archive: Archive
) -> None:
    ids = _history(platform, DAYS_AGO)
    moved = archive.run(platform.db)
    files = archive.present()
    assert [f.name for f in files] == [m.file for m in moved] and len(files) >= 6
    assert len({f.month for f in files}) == len(files), "one file per month"
    archived = [row for f in files for row in rows_of(f.path)]
    assert [row["seq"] for row in archived] == list(range(1, len(archived) + 1))
    now = utcnow()
    assert all(row["at"] < now - timedelta(days=RETENTION) for row in archived)
    archived_ids = {row["id"] for row in archived}
    assert archived_ids.isdisjoint(_live_ids(platform))
    with platform.db.session() as db:
        kept = {row.id: row.at for row in db.scalars(select(AuditRecord).where(AuditRecord.id.in_(ids)))}
    assert archived_ids | kept.keys() == set(ids)
    assert all(at >= archive.until(now) for at in kept.values()), "only whole months past the retention move"

    result = _verify(platform)
    assert result.ok, result.problem
    assert (result.archived, result.archive_files) == (len(archived), len(files))
    assert result.checkpoints == 2  # one of them signs a seal now in an archive file
    assert archive.run(platform.db) == []

    with platform.db.session() as db:  # the chain goes on from the archive
        record(db, SYSTEM, Tag.catalog_taxonomy_updated, "taxonomy", 1)
    assert _verify(platform).ok


def test_nothing_younger_than_the_retention_moves(platform: Platform, archive: Archive) -> None:
    """The move takes a prefix of the chain: it stops at the first record still within the retention."""
    ids = _history(platform, [300, 299, 10, 280, 270, 5])
    moved = archive.run(platform.db)
    assert sum(m.records for m in moved) == 2
    assert set(ids[2:]) <= _live_ids(platform)
    assert _verify(platform).ok


def test_a_tampered_chain_is_not_archived(platform: Platform, archive: Archive) -> None:
    ids = _history(platform, DAYS_AGO)
    with platform.db.session() as db:
        if not is_sqlite(db):
            db.execute(text("SET LOCAL session_replication_role = replica"))
        db.execute(update(AuditRecord).where(AuditRecord.id == ids[0]).values(ip="10.9.9.9"))
    with pytest.raises(ArchiveRefused, match=f"审计记录 {ids[0]}"):
        archive.run(platform.db)
    assert archive.present() == [] and set(ids) <= _live_ids(platform)


def test_a_run_killed_before_its_commit_leaves_nothing_that_breaks_the_chain(
    platform: Platform, archive: Archive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The file is in place before the records move; a process killed in between leaves the file
    (the database still holds its records). It is ignored, then set aside by the next run."""
    _history(platform, DAYS_AGO)
    survivor = tmp_path / "survivor"

    def killed(_database: object, manifest: Manifest) -> None:
        shutil.copyfile(archive.directory / manifest.file, survivor)
        raise KeyboardInterrupt

    monkeypatch.setattr(archive, "_commit", killed)
    with pytest.raises(KeyboardInterrupt):
        archive.run(platform.db)
    monkeypatch.undo()
    assert not list(archive.directory.glob("*.parquet"))  # the run cleaned up; a kill would not have
    leftover = archive.directory / "audit-2000-01-000000000001-000000000005.parquet"
    shutil.copyfile(survivor, leftover)
    result = _verify(platform)
    assert result.ok and result.archive_files == 0 and "未完成" in result.notes[0]
    moved = archive.run(platform.db)
    assert moved and not leftover.exists() and leftover.with_name(leftover.name + ".unfinished").exists()
    assert _verify(platform).ok


def test_the_retention_is_never_below_180_days(platform: Platform, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        load_settings(mode="test", home=tmp_path, audit_retention_days=179)
    with pytest.raises(InvalidInput, match="180"):
        Archive(tmp_path, platform.audit.key, 179)
    now = utcnow()
    assert Archive(tmp_path, platform.audit.key, 180).until(now) <= now - timedelta(days=180)


def _rewrite(path: Path, **changes: object) -> int:
    """Change the first record of an archive file as someone with file access could; its id."""
    rows = pq.read_table(path).to_pylist()
    rows[0].update(changes)
    pq.write_table(pa.Table.from_pylist(rows, SCHEMA), path, compression="zstd")
    return int(rows[0]["id"])


def _files(archive: Archive) -> list[ArchiveFile]:
    files = archive.present()
    assert len(files) >= 3
    return files


def test_an_edited_archive_file_is_named(platform: Platform, archive: Archive) -> None:
    _history(platform, DAYS_AGO)
    archive.run(platform.db)
    victim = _files(archive)[2]
    record_id = _rewrite(victim.path, ip="192.168.66.6")
    result = _verify(platform)
    assert not result.ok and result.record_id == record_id
    assert f"归档文件 {victim.name}" in result.problem and "改动" in result.problem


@pytest.mark.parametrize("which", [0, 3, -1])
def test_a_deleted_archive_file_is_named(platform: Platform, archive: Archive, which: int) -> None:
    _history(platform, DAYS_AGO)
    archive.run(platform.db)
    victim = _files(archive)[which]
    victim.path.unlink()
    result = _verify(platform)
    assert not result.ok and f"归档文件 {victim.name}" in result.problem and "缺失" in result.problem


def test_a_damaged_or_unknown_archive_file_is_named(platform: Platform, archive: Archive) -> None:
    _history(platform, DAYS_AGO)
    archive.run(platform.db)
    victim = _files(archive)[1]
    data = bytearray(victim.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.path.write_bytes(bytes(data))
    result = _verify(platform)
    assert not result.ok and f"归档文件 {victim.name}" in result.problem

    victim.path.unlink()
    renamed = victim.path.with_name(victim.name.replace(victim.month, "1999-01"))
    shutil.copyfile(_files(archive)[0].path, renamed)
    result = _verify(platform)
    assert not result.ok and "归档文件" in result.problem


def test_a_manifest_not_signed_by_the_platform_is_refused(platform: Platform, archive: Archive) -> None:
    """Inserting audit rows is allowed to the application: a forged manifest must not pass."""
    _history(platform, DAYS_AGO)
    [first, *_] = archive.run(platform.db)
    with platform.db.session() as db:
        summary = {**asdict(first), "sha256": "0" * 64}
        forged = record(db, SYSTEM, Tag.audit_records_archived, "audit_archive", first.file, summary=summary)
        db.flush()
        forged_id = forged.id
    result = _verify(platform)
    assert not result.ok and result.record_id == forged_id and "签名" in result.problem


def test_archived_records_are_found_by_search_and_export(
    client: TestClient, factory: Factory, platform: Platform, archive: Archive
) -> None:
    _history(platform, DAYS_AGO)
    archived = sum(m.records for m in archive.run(platform.db))
    zhang = len(DAYS_AGO[::2])
    zhang_archived = sum(1 for f in archive.present() for r in rows_of(f.path) if r["actor_name"] == "zhang")
    factory.user("reg", system_role="regulator")
    login(client, "reg")

    recent = client.get("/admin/audit", params={"actor": "zhang"})
    assert "已归档" not in recent.text and f"共 {zhang - zhang_archived} 条记录" in recent.text
    everything = client.get("/admin/audit", params={"actor": "zhang", "since": "2000-01-01"})
    assert everything.status_code == 200
    assert f"共 {zhang} 条记录" in everything.text and "已归档" in everything.text
    old = client.get("/admin/audit", params={"actor": "zhang", "until": "2000-01-01"})
    assert "共 0 条记录" in old.text
    by_ip = client.get(
        "/admin/audit", params={"ip": "10.0.0.0", "action": "data:access:", "since": "2000-01-01"}
    )
    assert "共 1 条记录" in by_ip.text and "已归档" in by_ip.text
    by_entry = client.get("/admin/audit", params={"entry": "7", "since": "2000-01-01"})
    assert f"共 {len(DAYS_AGO)} 条记录" in by_entry.text

    export = client.get("/admin/audit/export.csv", params={"entry": "7", "since": "2000-01-01"})
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))[1:]
    assert len(rows) == len(DAYS_AGO)
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)  # oldest first, archive first
    with platform.db.session() as db:
        searched = db.scalars(
            select(AuditRecord.summary).where(AuditRecord.action == "audit:records:searched")
        ).all()
    assert any(s["archived"] == archived for s in searched)


def test_the_audit_page_shows_the_archive_status(
    client: TestClient, factory: Factory, platform: Platform, archive: Archive
) -> None:
    _history(platform, DAYS_AGO)  # first: the chain must begin with them
    factory.user("op", system_role="operator")
    login(client, "op")
    before = client.get("/admin/audit")
    assert "保留与归档" in before.text and "尚无归档" in before.text and "1095 天" in before.text
    moved = archive.run(platform.db)
    page = client.get("/admin/audit")
    count = sum(m.records for m in moved)
    assert f"{len(moved)} 个，共 {count} 条记录" in page.text and "最近一次归档" in page.text
    verified = client.post("/admin/audit/verify", data={"csrf_token": csrf_token(client)})
    assert verified.status_code == 200 and f"{len(moved)} 个归档文件中" in verified.text


def test_the_archive_and_verify_commands(
    platform: Platform,
    archive: Archive,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAIFANG_HOME", str(platform.settings.home))
    monkeypatch.setenv("KAIFANG_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("KAIFANG_MODE", "test")
    assert main(["audit", "archive"]) == 0
    assert "没有需要归档的记录" in capsys.readouterr().out
    _history(platform, DAYS_AGO)
    monkeypatch.setenv("KAIFANG_AUDIT_RETENTION_DAYS", str(RETENTION))
    assert main(["audit", "archive"]) == 0
    out = capsys.readouterr().out
    assert out.count("已归档") == len(archive.present()) >= 6
    assert main(["audit", "verify"]) == 0
    assert "个归档文件中" in capsys.readouterr().out
    victim = archive.present()[4]
    victim.path.unlink()
    assert main(["audit", "verify"]) == 1
    assert victim.name in capsys.readouterr().err


def test_the_writer_archives_once_a_day(platform: Platform, archive: Archive) -> None:
    _history(platform, [400, 380, 360, 0])
    writer = AuditWriter(
        platform.db,
        platform.audit.key,
        interval=0.05,
        checkpoint_every=timedelta(minutes=10),
        archive=archive,
        archive_daily=True,
        archive_delay=0,
    )
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            not archive.present() or any(t.name == "kaifang-audit-archive" for t in threading.enumerate())
        ):
            time.sleep(0.05)
    finally:
        writer.stop()
    assert sum(1 for f in archive.present() for _ in rows_of(f.path)) == 3
    assert _verify(platform).ok
