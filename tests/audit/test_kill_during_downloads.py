"""A server killed during a burst of downloads or data API calls loses no data-access record
(Art. 18, issue 6).

The real `kaifang serve` runs in a subprocess on a SQLite home of its own. Client threads fire
downloads (or data API calls), each with a filter value of its own as a marker; the server is
killed with SIGKILL in the middle of the burst. Every call that received its status and a first
byte of data must have its record: it is in the process's journal before the response starts, and
the restarted server writes the killed one's journal (kaifang.audit.journal). After the restart
the chain verifies.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from kaifang.audit.models import AuditRecord
from tests.conftest import PASSING_REVIEW
from tests.datastore.processes import (
    env_for,
    free_port,
    make_home,
    publish_entry,
    serve,
    upload,
    wait_until_read,
    write_csv,
)

DOWNLOADS = 200
THREADS = 4
KILL_AFTER = 50  # answered downloads before the kill


@dataclass(frozen=True)
class Outcome:
    marker: int
    status: int | None  # None: no answer (connection refused or reset)
    first_byte: bool  # at least one byte of the body arrived


ACTIONS = {"download": "data:access:download", "data": "data:access:query"}


def _call(client: httpx.Client, url: str, marker: int) -> Outcome:
    # A filter that keeps every row (AQI is never negative) makes each call distinguishable.
    status: int | None = None
    first = b""
    extra = {"format": "csv"} if url.endswith("/download") else {"limit": "5"}
    try:
        with client.stream("GET", url, params={**extra, "AQI__ne": str(-marker)}) as response:
            status = response.status_code
            chunks = response.iter_raw()
            first = next(chunks, b"")
            for _ in chunks:
                pass
    except httpx.HTTPError:
        pass  # killed: what arrived before counts
    return Outcome(marker, status, bool(first))


def _burst(port: int, rid: int, server: subprocess.Popen[bytes], path: str, key: str) -> list[Outcome]:
    url = f"http://127.0.0.1:{port}/api/v1/resources/{rid}/{path}"
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def client_thread(markers: range) -> None:
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
            for marker in markers:
                outcome = _call(client, url, marker)
                with lock:
                    outcomes.append(outcome)

    threads = [
        threading.Thread(target=client_thread, args=(range(1 + n, DOWNLOADS + 1, THREADS),))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(outcomes) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()  # SIGKILL: no shutdown handler runs
    server.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _recorded_markers(home: Path, path: str) -> list[int]:
    engine = create_engine(f"sqlite:///{home / 'kaifang.db'}")
    try:
        with Session(engine) as db:
            summaries = db.scalars(
                select(AuditRecord.summary).where(AuditRecord.action == ACTIONS[path])
            ).all()
    finally:
        engine.dispose()
    return [-int(summary["filters"]["AQI__ne"]) for summary in summaries]


@pytest.mark.parametrize("path", ["download", "data"])
def test_no_data_access_record_is_lost_when_the_server_is_killed(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, path: str
) -> None:
    entry_id, key = make_home(tmp_path)
    publish_entry(tmp_path, entry_id)
    source = write_csv(tmp_path_factory.mktemp("upload") / "aqi.csv", 20_000)
    port = free_port()
    server = serve(tmp_path, port)
    try:
        rid = upload(port, entry_id, key, source)
        assert wait_until_read(tmp_path).status == "review"
        reviewed = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/resources/{rid}/versions/1/review",
            json=PASSING_REVIEW,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert reviewed.status_code == 201, reviewed.text
        published = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/resources/{rid}/versions/1/publish",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert published.status_code == 200, published.text
        outcomes = _burst(port, rid, server, path, key)
    finally:
        server.kill()
        server.wait(timeout=30)

    answered = [o.marker for o in outcomes if o.status == 200 and o.first_byte]
    unanswered = [o for o in outcomes if o.status is None]
    assert len(outcomes) == DOWNLOADS
    assert len(answered) >= KILL_AFTER and unanswered, "the kill must fall in the middle of the burst"
    if path == "data":  # the killed server's last records are in its journal only
        assert list((tmp_path / "audit-journal").glob("*.jsonl"))

    # The restarted server seals what the killed one left unsealed and writes its journal; the
    # verification writes what is left of it first too.
    server = serve(tmp_path, port)
    try:
        verified = subprocess.run(
            [sys.executable, "-m", "kaifang.cli", "audit", "verify"],
            env=env_for(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verified.returncode == 0, verified.stderr
        assert "审计记录完整" in verified.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
    recorded = _recorded_markers(tmp_path, path)
    assert len(recorded) == len(set(recorded)), "one record per call"
    lost = sorted(set(answered) - set(recorded))
    assert not lost, f"calls answered without a data-access record: {lost}"
    assert not list((tmp_path / "audit-journal").glob("*.jsonl")), "every journal written and deleted"
