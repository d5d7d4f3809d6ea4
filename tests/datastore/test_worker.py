"""Production jobs: the app enqueues on Redis, `kaifang worker` runs them in separate processes.

The real `kaifang serve` and `kaifang worker` run in subprocesses on their own SQLite home and a
queue name of their own in the machine's Redis. A worker killed mid-ingest leaves no partial
version; its lease runs out and the next worker reads the version from the start.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from kaifang.cli import main
from tests.datastore.processes import (
    env_for,
    free_port,
    make_home,
    parquet_files,
    serve,
    upload,
    versions,
    wait_until_read,
    write_csv,
)

REDIS_URL = os.environ.get("KAIFANG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROWS = 3_000_000
LEASE = 2


@pytest.fixture
def queue() -> Iterator[dict[str, str]]:
    """Settings for a queue of this test's own; its keys are removed afterwards."""
    name = f"kaifang-test-{secrets.token_hex(6)}"
    yield {
        "KAIFANG_JOBS_BACKEND": "redis",
        "KAIFANG_REDIS_URL": REDIS_URL,
        "KAIFANG_JOBS_QUEUE": name,
        "KAIFANG_JOBS_LEASE_SECONDS": str(LEASE),
    }
    redis = Redis.from_url(REDIS_URL)
    for key in redis.scan_iter(f"*{name}*"):
        redis.delete(key)
    redis.close()


def _worker(home: Path, queue: dict[str, str]) -> subprocess.Popen[bytes]:
    """`kaifang worker` in a process group of its own, so a kill reaches its job processes too."""
    return subprocess.Popen(
        [sys.executable, "-m", "kaifang.cli", "worker", "--workers", "1"],
        env=env_for(home, **queue),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=30)


def _lease_taken(queue: dict[str, str], seconds: float = 30) -> bool:
    redis = Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(redis.scan_iter(f"{queue['KAIFANG_JOBS_QUEUE']}:kaifang:lease:*")):
                return True
            time.sleep(0.05)
        return False
    finally:
        redis.close()


def test_worker_runs_the_job_and_a_killed_worker_loses_nothing(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, queue: dict[str, str]
) -> None:
    entry_id, key = make_home(tmp_path)
    source = write_csv(tmp_path_factory.mktemp("upload") / "aqi.csv", ROWS)
    port = free_port()
    server = serve(tmp_path, port, **queue)
    try:
        upload(port, entry_id, key, source)
        time.sleep(1)
        [version] = versions(tmp_path)
        assert version.status == "processing", "with the Redis backend the server does not run jobs itself"

        worker = _worker(tmp_path, queue)
        try:
            assert _lease_taken(queue), "the worker never started the job"
            time.sleep(0.3)  # reading the file now
        finally:
            _stop(worker, signal.SIGKILL)
        [version] = versions(tmp_path)
        assert version.status == "processing" and version.row_count == 0
        assert not parquet_files(tmp_path)

        worker = _worker(tmp_path, queue)  # the lease runs out; the sweep queues the version again
        try:
            version = wait_until_read(tmp_path, seconds=120)
            assert version.status == "review" and version.row_count == ROWS
            assert (tmp_path / "files" / version.data_key).is_file()
            assert len(parquet_files(tmp_path)) == 1
        finally:
            _stop(worker, signal.SIGTERM)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_worker_refuses_the_embedded_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAIFANG_HOME", str(tmp_path))
    monkeypatch.setenv("KAIFANG_DATABASE_URL", "")
    monkeypatch.setenv("KAIFANG_JOBS_BACKEND", "inprocess")
    with pytest.raises(SystemExit) as exited:
        main(["worker"])
    assert "KAIFANG_JOBS_BACKEND=redis" in str(exited.value)
