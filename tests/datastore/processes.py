"""Helpers for tests that run the real `kaifang serve` and `kaifang worker` in subprocesses on a
home of their own, so they can be killed mid-job."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from kaifang.accounts.models import Membership, Organisation, User
from kaifang.accounts.permissions import Actor
from kaifang.accounts.service import actor_for, hash_password, issue_api_key
from kaifang.app import build_platform, prepare_database
from kaifang.catalog import service as catalog
from kaifang.datastore.models import ResourceVersion
from kaifang.db import utcnow
from kaifang.settings import load_settings
from tests.conftest import complete_fields


def make_home(root: Path) -> tuple[int, str]:
    """A fresh SQLite home with a provider, a draft entry and the publisher's API key."""
    settings = load_settings(home=root, database_url="", mode="test")
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
    return entry_id, plain


def publish_entry(root: Path, entry_id: int) -> None:
    """Walk the home's draft entry through the real workflow to 已发布: the publisher submits it,
    a regulator confirms it, the publisher publishes it."""
    platform = build_platform(load_settings(home=root, database_url="", mode="test"))
    with platform.db.session() as db:
        db.add(
            User(
                username="reg",
                email="reg@example.com",
                display_name="Reg",
                password_hash=hash_password("x"),
                email_verified_at=utcnow(),
                system_role="regulator",
            )
        )
    steps = ((catalog.submit_entry, "pub"), (catalog.confirm_entry, "reg"), (catalog.publish_entry, "pub"))
    for step, username in steps:
        with platform.db.session() as db:
            user = db.scalars(select(User).where(User.username == username)).one()
            step(db, actor_for(db, user), entry_id)
    platform.db.dispose()


def write_csv(path: Path, rows: int) -> Path:
    """A CSV large enough that reading it takes a few seconds."""
    n = pa.array(range(rows))
    table = pa.table(
        {"站点": pc.cast(pc.bit_wise_and(n, 63), pa.string()), "AQI": n, "PM2.5": pc.divide(n, 7.0)}
    )
    pacsv.write_csv(table, path)
    return path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAIFANG_HOME": str(home),
        "KAIFANG_DATABASE_URL": "",
        "KAIFANG_MODE": "test",
        **extra,
    }


def serve(home: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "kaifang.cli", "serve", "--port", str(port)],
        env=env_for(home, **env),
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


def upload(port: int, entry_id: int, key: str, source: Path) -> int:
    """Upload a file as a new resource of the entry; returns the resource id."""
    with source.open("rb") as f:
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/datasets/{entry_id}/resources",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": (source.name, f)},
            timeout=120,
        )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def versions(home: Path) -> list[ResourceVersion]:
    engine = create_engine(f"sqlite:///{home / 'kaifang.db'}")
    try:
        with Session(engine) as db:
            return list(db.scalars(select(ResourceVersion)))
    finally:
        engine.dispose()


def wait_until_read(home: Path, seconds: float = 60) -> ResourceVersion:
    deadline = time.monotonic() + seconds
    while True:
        [version] = versions(home)
        if version.status != "processing" or time.monotonic() > deadline:
            return version
        time.sleep(0.1)


def parquet_files(home: Path) -> list[Path]:
    """Version data files: unmasked ones of unpublished versions under staging/, published under data/."""
    areas = [home / "files" / name for name in ("staging", "data")]
    return [p for area in areas if area.exists() for p in area.rglob("*.parquet") if p.is_file()]
