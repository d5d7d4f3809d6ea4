"""A server killed while it reads an upload leaves no partial version, and finishes after restart.

This runs the real `kaifang serve` in a subprocess on its own SQLite home, kills it with SIGKILL
while the ingest job is running, and starts it again.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.datastore.processes import (
    free_port,
    make_home,
    parquet_files,
    serve,
    upload,
    versions,
    wait_until_read,
    write_csv,
)

ROWS = 3_000_000


def test_kill_during_ingest_then_restart(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    entry_id, key = make_home(tmp_path)
    source = write_csv(tmp_path_factory.mktemp("upload") / "aqi.csv", ROWS)
    port = free_port()
    server = serve(tmp_path, port)
    try:
        upload(port, entry_id, key, source)
        time.sleep(0.3)  # the job is reading the file now
        [version] = versions(tmp_path)
        assert version.status == "processing", "the job finished before the kill: make ROWS larger"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    [version] = versions(tmp_path)
    assert version.status == "processing" and version.row_count == 0
    assert not parquet_files(tmp_path)
    server = serve(tmp_path, port)  # the new process resumes the interrupted job
    try:
        version = wait_until_read(tmp_path)
        assert version.status == "review" and version.row_count == ROWS
        assert (tmp_path / "files" / version.data_key).is_file()
    finally:
        server.terminate()
        server.wait(timeout=30)
