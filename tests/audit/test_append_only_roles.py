"""On PostgreSQL the application's role cannot change or remove audit rows, whatever it sets or
however it is granted; only a member of kaifang_audit_maintainer deletes them, and only as the
retention archive does (migration 0010)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, delete, text, update
from sqlalchemy.exc import DBAPIError

from kaifang.app import Platform
from kaifang.audit.archive import MAINTENANCE_ROLE, Archive, ArchiveRefused
from kaifang.audit.models import AuditCheckpoint, AuditRecord, AuditSeal
from kaifang.db import is_sqlite
from tests.audit.test_archive import DAYS_AGO, RETENTION, _history, _live_ids, _verify

AUDIT_TABLES = "audit_records, audit_seals, audit_checkpoints"


@pytest.fixture
def postgres(platform: Platform) -> None:
    with platform.db.session() as db:
        if is_sqlite(db):
            pytest.skip("roles and triggers are PostgreSQL's")


@pytest.fixture
def archive(platform: Platform, postgres: None) -> Iterator[Archive]:
    directory = platform.audit.archive.directory
    shutil.rmtree(directory, ignore_errors=True)
    yield Archive(directory, platform.audit.key, RETENTION)
    shutil.rmtree(directory, ignore_errors=True)


def _role(platform: Platform, prefix: str, *, member: bool) -> Iterator[str]:
    """A login role for this test process: not a superuser, granted every privilege on the audit
    tables (so only the trigger stands in the way), a member of the maintenance role or not."""
    name = f"{prefix}_{os.getpid()}"
    with platform.db.engine.begin() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
        conn.execute(text(f"CREATE ROLE {name} LOGIN NOSUPERUSER"))
        conn.execute(text(f"GRANT ALL ON {AUDIT_TABLES} TO {name}"))
        conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {name}"))
        if member:
            conn.execute(text(f"GRANT {MAINTENANCE_ROLE} TO {name}"))
    try:
        yield name
    finally:
        with platform.db.engine.begin() as conn:
            conn.execute(text(f"REVOKE ALL ON {AUDIT_TABLES} FROM {name}"))
            conn.execute(text(f"REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM {name}"))
            conn.execute(text(f"DROP ROLE {name}"))


@pytest.fixture
def app_role(platform: Platform, postgres: None) -> Iterator[str]:
    yield from _role(platform, "kaifang_app_probe", member=False)


@pytest.fixture
def archiver_role(platform: Platform, postgres: None) -> Iterator[str]:
    yield from _role(platform, "kaifang_archiver_probe", member=True)


def _url_as(platform: Platform, role: str) -> str:
    return re.sub(r"//[^@/]+@", f"//{role}@", platform.settings.database_url)


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditRecord).values(comment="x"),
        delete(AuditRecord),
        delete(AuditSeal),
        update(AuditSeal).values(hash="0" * 64),
        delete(AuditCheckpoint),
    ],
    ids=["update records", "delete records", "delete seals", "update seals", "delete checkpoints"],
)
def test_the_application_role_cannot_change_audit_rows(
    platform: Platform, app_role: str, statement: object
) -> None:
    _history(platform, DAYS_AGO[:4])
    engine = create_engine(_url_as(platform, app_role).replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SET LOCAL kaifang.audit_maintenance = 'on'"))  # the old guard's switch
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(statement)  # type: ignore[call-overload]
        with engine.connect() as conn, conn.begin(), pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text(f"SET ROLE {MAINTENANCE_ROLE}"))
        with engine.connect() as conn, conn.begin(), pytest.raises(DBAPIError):
            conn.execute(text("TRUNCATE audit_records CASCADE"))  # granted; the trigger refuses
    finally:
        engine.dispose()
    assert _verify(platform).ok


def test_even_the_maintenance_role_cannot_update(platform: Platform, archiver_role: str) -> None:
    _history(platform, DAYS_AGO[:4])
    engine = create_engine(_url_as(platform, archiver_role).replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn, conn.begin(), pytest.raises(DBAPIError, match="append-only: UPDATE"):
            conn.execute(update(AuditRecord).values(comment="x"))
        checkpoints = "append-only: DELETE on audit_checkpoints"
        with engine.connect() as conn, conn.begin(), pytest.raises(DBAPIError, match=checkpoints):
            conn.execute(delete(AuditCheckpoint))
    finally:
        engine.dispose()
    assert _verify(platform).ok


def test_the_archive_deletes_through_the_maintenance_url(
    platform: Platform, archive: Archive, archiver_role: str
) -> None:
    ids = _history(platform, DAYS_AGO)
    archive.maintenance_url = _url_as(platform, archiver_role)
    try:
        moved = archive.run(platform.db)
    finally:
        archive.maintenance(platform.db).dispose()
    assert sum(m.records for m in moved) > 0
    assert not set(ids[: moved[0].records]) & _live_ids(platform)
    assert _verify(platform).ok


def test_an_archive_without_the_role_is_refused_and_moves_nothing(
    platform: Platform, archive: Archive, app_role: str
) -> None:
    ids = _history(platform, DAYS_AGO)
    archive.maintenance_url = _url_as(platform, app_role)
    try:
        with pytest.raises(ArchiveRefused, match="KAIFANG_AUDIT_MAINTENANCE_DATABASE_URL"):
            archive.run(platform.db)
    finally:
        archive.maintenance(platform.db).dispose()
    assert set(ids) <= _live_ids(platform)
    assert archive.present() == []
    assert _verify(platform).ok
