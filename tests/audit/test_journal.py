"""The data API's access records go through a journal file (kaifang.audit.journal): in it before
the answer leaves, in the audit log within the writer's next round, never twice, never lost with
a process that stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kaifang.app import Platform
from kaifang.audit.journal import Journal, JournalFile
from kaifang.audit.models import AuditJournalFile, AuditRecord
from kaifang.audit.service import DataAccess
from kaifang.db import utcnow
from tests.audit.test_data_access import access_records, table  # noqa: F401 - the fixture
from tests.datastore.test_data_api import auth


def _queries(platform: Platform) -> list[AuditRecord]:
    """The data API's records already in the log (the journal not written first)."""
    return access_records(platform, "data:access:query", flush=False)


def _journal_lines(platform: Platform) -> list[dict[str, Any]]:
    directory = platform.audit.journal.directory
    files = sorted(directory.glob("*.jsonl"))
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def _values(marker: int) -> dict[str, Any]:
    access = DataAccess(entry_id=1, resource_id=1, version_id=1, data_format="json", rows=marker)
    return {
        "at": utcnow(),
        "kind": "access",
        "actor_name": "anonymous",
        "action": "data:access:query",
        "target_type": "resource",
        "target_id": "1",
        "summary": {"filters": {"marker": str(marker)}},
        "ip": "127.0.0.1",
        "entry_id": access.entry_id,
        "resource_id": access.resource_id,
        "version_id": access.version_id,
        "data_format": access.data_format,
        "rows": access.rows,
    }


def test_a_data_api_call_is_in_the_journal_before_it_answers_and_in_the_log_after_the_round(
    client: TestClient,
    platform: Platform,
    table: dict[str, Any],  # noqa: F811 - the fixture
) -> None:
    platform.audit.stop()  # no writer rounds of its own during the test: this one calls them
    url = f"/api/v1/resources/{table['rid']}/data"
    answer = client.get(url, headers=auth(table["key"]), params={"limit": "3"})
    assert answer.status_code == 200
    [line] = _journal_lines(platform)
    assert (line["action"], line["rows"], line["actor_id"]) == ("data:access:query", 3, table["citizen"])
    assert _queries(platform) == []
    assert platform.audit.flush() >= 1
    [record] = _queries(platform)
    assert (record.rows, record.actor_id, record.status, record.summary) == (
        3,
        table["citizen"],
        200,
        {"filters": {"limit": "3"}},
    )
    assert record.at.tzinfo is not None
    assert _journal_lines(platform) == []  # written, then deleted
    with platform.db.session() as db:
        assert db.scalar(select(func.sum(AuditJournalFile.records))) == 1


def test_a_journal_written_before_a_crash_that_kept_its_file_is_not_written_twice(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = platform.audit.journal
    journal.append([_values(1), _values(2)])

    def crashed(files: list[JournalFile]) -> None:  # the commit happened; the file was not deleted
        for file in files:
            journal._held.pop(file.name, None)
            file.close()

    monkeypatch.setattr(journal, "written", crashed)
    assert platform.audit.flush() == 2
    monkeypatch.undo()
    assert len(list(journal.directory.glob("*.jsonl"))) == 1
    assert platform.audit.flush() == 0  # found again, known by name, deleted unwritten
    assert not list(journal.directory.glob("*.jsonl"))
    assert [r.rows for r in _queries(platform)] == [1, 2]


def _journaling_process(directory: Path, records: int, then: str) -> subprocess.Popen[str]:
    """Another process appending `records` to its journal in `directory`, then waiting for stdin
    (alive, its file locked) or killing itself (`then` = "wait" or "die")."""
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        from tests.audit.test_journal import _values
        from kaifang.audit.journal import Journal
        journal = Journal(Path({str(directory)!r}))
        for marker in range({records}):
            journal.append([_values(100 + marker)])
        print("appended", flush=True)
        if {then!r} == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdin.readline()
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_the_journal_of_a_live_process_is_left_to_it_and_that_of_a_killed_one_is_written(
    platform: Platform,
) -> None:
    directory = platform.audit.journal.directory
    alive = _journaling_process(directory, 3, "wait")
    try:
        assert alive.stdout is not None and alive.stdout.readline().strip() == "appended"
        assert platform.audit.flush() == 0  # its lock is held: it writes its own records
        assert len(list(directory.glob("*.jsonl"))) == 1
        alive.send_signal(signal.SIGKILL)
        alive.wait(timeout=30)
    finally:
        if alive.poll() is None:
            alive.kill()
    dead = _journaling_process(directory, 2, "die")
    assert dead.wait(timeout=30) == -signal.SIGKILL
    assert platform.audit.flush() == 5  # both killed processes' records, the next time round
    assert not list(directory.glob("*.jsonl"))
    assert sorted(r.rows for r in _queries(platform)) == [100, 100, 101, 101, 102]


def test_a_journal_that_cannot_be_written_refuses_the_answer_in_chinese(
    client: TestClient,
    platform: Platform,
    table: dict[str, Any],  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    journal = platform.audit.journal
    refusing = tmp_path / "refusing.jsonl"
    refusing.touch()

    def unwritable() -> JournalFile:  # a file the process cannot write (as a full disk refuses)
        journal._current = JournalFile(refusing, os.open(refusing, os.O_RDONLY))
        return journal._current

    monkeypatch.setattr(journal, "_open", unwritable)
    answer = client.get(f"/api/v1/resources/{table['rid']}/data", headers=auth(table["key"]))
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "audit_unavailable"
    assert "访问记录" in answer.json()["error"]["message"]
    assert "records" not in answer.json()


def test_a_line_cut_short_is_no_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append([_values(1)])
    [file] = journal.take()
    os.write(file.fd, b'{"action":"data:acc')  # a write the disk cut short: its call failed
    assert [r["rows"] for r in file.records()] == [1]
    journal.written([file])
    assert not list(tmp_path.iterdir())


def test_while_the_database_refuses_the_journal_waits_in_two_files(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.audit.stop()
    journal = platform.audit.journal
    journal.append([_values(1)])

    def away() -> None:
        raise RuntimeError("database away")

    monkeypatch.setattr(platform.audit.database, "session", away)
    for marker in range(2, 6):
        with pytest.raises(RuntimeError):
            platform.audit.flush()
        journal.append([_values(marker)])
    assert len(list(journal.directory.glob("*.jsonl"))) == 2  # the waiting file and the current one
    monkeypatch.undo()
    assert platform.audit.flush() == 1  # the waiting file first …
    assert platform.audit.flush() == 4  # … then the current one, which took the appends meanwhile
    assert [r.rows for r in _queries(platform)] == [1, 2, 3, 4, 5]
    assert not list(journal.directory.glob("*.jsonl"))
