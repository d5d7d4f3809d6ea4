"""A server killed while it reads an upload leaves no partial version, and finishes after restart.

This runs the real `kaifang serve` in a subprocess on its own SQLite home, kills it with SIGKILL
while the ingest job is running, and starts it again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from kaifang.accounts.models import Membership, Organisation, User
from kaifang.accounts.permissions import Actor
from kaifang.accounts.service import hash_password, issue_api_key
from kaifang.app import build_platform, prepare_database
from kaifang.catalog import service as catalog
from kaifang.datastore.models import ResourceVersion
from kaifang.db import utcnow
from kaifang.settings import load_settings
from tests.conftest import complete_fields

ROWS = 3_000_000


@pytest.fixture
def own_home(tmp_path: Path) -> Iterator[tuple[Path, int, str]]:
    """A fresh SQLite home with a provider, a draft entry and the publisher's API key."""
    settings = load_settings(home=tmp_path, database_url="", mode="test")
    platform = build_platform(settings)
    prepare_database(platform)
    with platform.db.session() as db:
        org = Organisation(slug="sthj", name="海河市生态环境局")
        user = User(
            username="pub",
            email="pub@example.com",
            display_name="Pub",
            password_hash=hash_password("x"),
            email_verified_at=utcnow(),
        )
        db.add_all([org, user])
        db.flush()
        db.add(Membership(user_id=user.id, org_id=org.id, role="publisher"))
        db.flush()
        actor = Actor(user_id=user.id, username="pub", org_roles={org.id: frozenset({"publisher"})})
        entry_id = catalog.create_entry(db, actor, org.id, complete_fields(title="空气质量小时数据")).id
        _key, plain = issue_api_key(db, actor, user.id, "test")
    platform.db.dispose()
    yield tmp_path, entry_id, plain


def _serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAIFANG_HOME": str(home), "KAIFANG_DATABASE_URL": "", "KAIFANG_MODE": "test"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kaifang.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _versions(home: Path) -> list[ResourceVersion]:
    engine = create_engine(f"sqlite:///{home / 'kaifang.db'}")
    try:
        with Session(engine) as db:
            return list(db.scalars(select(ResourceVersion)))
    finally:
        engine.dispose()


def test_kill_during_ingest_then_restart(
    own_home: tuple[Path, int, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root, entry_id, key = own_home
    source = tmp_path_factory.mktemp("upload") / "aqi.csv"
    n = pa.array(range(ROWS))
    pacsv.write_csv(
        pa.table(
            {
                "站点": pa.compute.cast(pa.compute.bit_wise_and(n, 63), pa.string()),
                "AQI": n,
                "PM2.5": pa.compute.divide(n, 7.0),
            }
        ),
        source,
    )
    port = _free_port()
    server = _serve(root, port)
    try:
        with source.open("rb") as f:
            response = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/datasets/{entry_id}/resources",
                headers={"Authorization": f"Bearer {key}"},
                files={"file": ("aqi.csv", f)},
                timeout=120,
            )
        assert response.status_code == 202, response.text
        time.sleep(0.3)  # the job is reading the file now
        [version] = _versions(root)
        assert version.status == "processing", "the job finished before the kill: make ROWS larger"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    [version] = _versions(root)
    assert version.status == "processing" and version.row_count == 0
    data = root / "files" / "data"
    assert not data.exists() or not [p for p in data.rglob("*") if p.is_file() and p.suffix == ".parquet"]
    server = _serve(root, port)  # the new process resumes the interrupted job
    try:
        for _ in range(600):
            [version] = _versions(root)
            if version.status != "processing":
                break
            time.sleep(0.1)
        assert version.status == "review" and version.row_count == ROWS
        assert (root / "files" / version.data_key).is_file()
    finally:
        server.terminate()
        server.wait(timeout=30)
