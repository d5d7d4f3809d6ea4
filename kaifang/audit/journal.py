"""The data API's access records, journaled: appended to a file of this process before the answer
leaves, written into `audit_records` by the audit writer within a second.

Why not the request's own transaction: on SQLite every write, however small, takes the database's
one write lock, pays a commit, and empties the page cache of every other connection (the next
read of each re-reads its pages): measured, the data API lost 11% of its throughput to its
records (`bench/audit_bench.py`), with no other change. An append to a file costs a few
microseconds and leaves the database alone; the writer turns a second's records into one
transaction.

What is guaranteed is what the issue asks: a record is in the journal before its answer is sent,
and the kernel keeps what a process wrote when the process is killed, so no answered call loses its
record. Each process appends to its own file, locked (`flock`) as long as the process lives. The
writer takes the current file every second (new appends go to a new file), writes its records and
the file's name (`audit_journal_files`) in one transaction, then deletes the file; a name already
there means the file was written before a crash and is only deleted. The files of a process that
died are found by their lock being free and written the same way, by any process of the platform
on the same home (`kaifang serve` at its next start, `kaifang audit verify`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from kaifang.errors import ServiceError

log = logging.getLogger("kaifang.audit")

SUFFIX = ".jsonl"


class AuditUnavailable(ServiceError):
    """The record could not be kept: the call must not answer with data."""

    status = 503
    code = "audit_unavailable"


UNAVAILABLE = "访问记录暂时无法保存。每次数据访问都须留有记录，本次未返回数据，请稍后重试"


@dataclass
class JournalFile:
    """A journal file this process holds the lock of: no longer appended to, waiting to be written."""

    path: Path
    fd: int

    @property
    def name(self) -> str:
        return self.path.name

    def records(self) -> list[dict[str, Any]]:
        """The records in the file; a last line without its newline (a write cut short by a full
        disk, whose call failed) is not a record."""
        with open(self.fd, "rb", closefd=False) as raw:
            raw.seek(0)
            data = raw.read()
        lines = data.split(b"\n")
        return [_record(line) for line in lines[:-1] if line]

    def close(self) -> None:
        os.close(self.fd)  # releases the lock


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()  # one append or switch at a time
        self._current: JournalFile | None = None
        self._written = 0  # bytes in the current file
        self._held: dict[str, JournalFile] = {}  # taken, not yet written into the database

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append `records` (values of data-access records) in one write; returns once the kernel
        has them. Raises AuditUnavailable when the file cannot take them (a full disk)."""
        if not records:
            return
        data = b"".join(_line(values) for values in records)
        try:
            with self._lock:
                current = self._current or self._open()
                written = os.write(current.fd, data)
                self._written += written
        except OSError as error:
            log.error("audit journal: %s", error)
            raise AuditUnavailable(UNAVAILABLE) from error
        if written != len(data):  # the rest of the line is not a record (JournalFile.records)
            log.error("audit journal: %s of %s bytes written", written, len(data))
            raise AuditUnavailable(UNAVAILABLE)

    def take(self, *, orphans: bool = False) -> list[JournalFile]:
        """The files to write into the database now: the current one (if it holds anything: the
        next append starts a new file), those a failed write left, and with `orphans` those of
        processes that died. While a failed write's files wait, the current file keeps taking
        appends (the database away for an hour leaves two files, not one per second)."""
        with self._lock:
            if self._current is not None and self._written and not self._held:
                self._held[self._current.name] = self._current
                self._current, self._written = None, 0
        if orphans:
            self._adopt_orphans()
        return list(self._held.values())

    def written(self, files: list[JournalFile]) -> None:
        """The files' records are in the database: delete the files."""
        for file in files:
            self._held.pop(file.name, None)
            try:
                file.path.unlink(missing_ok=True)
            finally:
                file.close()

    def close(self) -> None:
        """Release the current file (empty by now, after a last `take` and write)."""
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            if not self._written:
                current.path.unlink(missing_ok=True)
            current.close()

    def _open(self) -> JournalFile:  # holding self._lock
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}-{time.time_ns()}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._current, self._written = JournalFile(path, fd), 0
        return self._current

    def _adopt_orphans(self) -> None:
        if not self.directory.is_dir():
            return
        mine = set(self._held) | ({self._current.name} if self._current else set())
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path.name in mine:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # written and deleted by another process meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive and will write it
                os.close(fd)
                continue
            if not path.exists():  # deleted between our open and our lock
                os.close(fd)
                continue
            log.info("audit journal %s of a stopped process found: its records are written now", path.name)
            self._held[path.name] = JournalFile(path, fd)


_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # datetimes through _encode: {"$at": ISO}, as always


def _line(values: dict[str, Any]) -> bytes:
    """One record as a JSON line (orjson: a fifth of the standard encoder's time on every call;
    the standard one for what orjson refuses, an integer past 64 bits)."""
    try:
        return orjson.dumps(values, default=_encode, option=_OPTIONS) + b"\n"
    except orjson.JSONEncodeError:
        return json.dumps(values, ensure_ascii=False, default=_encode, separators=(",", ":")).encode() + b"\n"


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$at": value.isoformat()}
    raise TypeError(f"not journaled: {type(value).__name__}")


def _record(line: bytes) -> dict[str, Any]:
    try:
        values: dict[str, Any] = orjson.loads(line)
    except orjson.JSONDecodeError:  # what the standard encoder wrote and orjson does not read (NaN)
        values = json.loads(line)
    at = values.get("at")
    if isinstance(at, dict) and "$at" in at:
        values["at"] = datetime.fromisoformat(at["$at"])
    return values
