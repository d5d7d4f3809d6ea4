"""Off the request path: HTTP request records in batches, sealing, signed checkpoints, and the
daily move of records past the retention into the archive.

One thread per app process wakes every `interval` seconds (at most one second): it writes the
request records gathered since and the data API's access records journaled since (journal.py),
seals every committed record into the hash chain, and signs a checkpoint when one is due. A clean
shutdown writes what is left (`stop`); a killed process loses at most the last interval's request
records, and none of the journaled ones (the next process writes them). State changes and the
other data accesses never pass through here: they are written in the transaction of the change or
access itself.

Once a day (the first time `archive_delay` seconds after start) the thread starts the archive run
(`kaifang.audit.archive`) in a thread of its own, so a long move never holds request records back.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from kaifang.audit import chain
from kaifang.audit.archive import Archive
from kaifang.audit.journal import Journal, JournalFile
from kaifang.audit.models import RECORDS, AuditJournalFile
from kaifang.audit.service import ACCESS_OFF
from kaifang.db import Database

if TYPE_CHECKING:
    from kaifang.settings import Settings

log = logging.getLogger("kaifang.audit")

MAX_BUFFER = 100_000  # beyond this (database away for long), the oldest request records are dropped
LATE_SWEEP_EVERY = 30  # flushes between looks for records that committed late (see chain.seal)
ARCHIVE_DELAY = 600.0  # seconds after start before the first archive run
ARCHIVE_EVERY = 24 * 3600.0


class AuditWriter:
    def __init__(
        self,
        database: Database,
        key: chain.SigningKey,
        *,
        interval: float = 1.0,
        checkpoint_every: timedelta,
        archive: Archive,
        archive_daily: bool = False,
        archive_delay: float = ARCHIVE_DELAY,
        enabled: bool = True,
        journal: Journal | None = None,
    ) -> None:
        self.database = database
        self.key = key
        self.interval = interval
        self.checkpoint_every = checkpoint_every
        self.archive = archive
        self.archive_daily = archive_daily
        self.archive_delay = archive_delay
        self.enabled = enabled
        if not enabled:
            # Only to measure what auditing costs (the settings refuse it in production): the
            # middleware records no requests, and sessions of this database no data accesses.
            database.sessionmaker.configure(info={ACCESS_OFF: True})
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards the buffer
        self._flushing = threading.Lock()  # one flush at a time (thread, tests, shutdown)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._archiving: threading.Thread | None = None
        # The data API's access records: appended before each answer, written here (journal.py).
        self.journal = journal or Journal(archive.directory.parent / "audit-journal")

    @classmethod
    def from_settings(cls, database: Database, settings: Settings) -> AuditWriter:
        key = chain.SigningKey.from_settings(settings)
        return cls(
            database,
            key,
            checkpoint_every=timedelta(minutes=settings.audit_checkpoint_minutes),
            archive=Archive.from_settings(settings, key),
            archive_daily=settings.audit_archive_daily,
            enabled=settings.audit_enabled,
            journal=Journal(settings.home / "audit-journal"),
        )

    def add(self, values: dict[str, Any]) -> None:
        """Queue one request record (called on the request path: no I/O here)."""
        with self._lock:
            if len(self._buffer) >= MAX_BUFFER:
                del self._buffer[0]
                log.error("audit buffer full: oldest request record dropped")
            self._buffer.append(values)

    def buffered(self) -> int:
        """Request records waiting to be written (for /metrics)."""
        with self._lock:
            return len(self._buffer)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="kaifang-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write everything still buffered, then stop the thread (clean shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        self.journal.close()

    def _run(self) -> None:
        next_archive = time.monotonic() + self.archive_delay
        rounds = 0
        while not self._stop.wait(self.interval):
            rounds += 1
            try:
                self.flush(late=rounds % LATE_SWEEP_EVERY == 1)  # the first round and every 30th
            except Exception:  # the database briefly away: the records stay buffered for the next try
                log.exception("writing audit records failed")
            if self.archive_daily and time.monotonic() >= next_archive:
                next_archive = time.monotonic() + ARCHIVE_EVERY
                self._start_archive()

    def _start_archive(self) -> None:
        if self._archiving is None or not self._archiving.is_alive():
            self._archiving = threading.Thread(
                target=self._archive, name="kaifang-audit-archive", daemon=True
            )
            self._archiving.start()

    def _archive(self) -> None:
        """One archive run; a process stopped during it leaves the records in the database (the
        move commits last) and a file the next run sets aside."""
        try:
            for manifest in self.archive.run(self.database):
                log.info(
                    "audit records %s–%s archived to %s", manifest.first_seq, manifest.last_seq, manifest.file
                )
        except Exception:
            log.exception("archiving audit records failed")

    def flush(self, *, late: bool = True) -> int:
        """Write the buffered request records and the journaled data-access records, and seal the
        chain now; returns records written. `late`: look for records that committed late too
        (chain.seal), and for the journals of processes that stopped without writing theirs."""
        with self._flushing:
            with self._lock:
                batch, self._buffer = self._buffer, []
            files = self.journal.take(orphans=late)
            try:
                with self.database.session() as db:
                    accesses = _journaled(db, files)
                    if accesses or batch:
                        db.execute(insert(RECORDS), accesses + batch)
                    chain.seal(db, late=late)
                    chain.checkpoint(db, self.key, self.checkpoint_every)
            except (DataError, IntegrityError):  # one bad record must not hold the others back
                return self._one_by_one(batch) + self._files_one_by_one(files)
            except Exception:  # the database is away: keep the batch (and the files) for the next try
                with self._lock:
                    self._buffer[:0] = batch
                raise
            self.journal.written(files)
            return len(accesses) + len(batch)

    def _files_one_by_one(self, files: list[JournalFile]) -> int:
        written = 0
        for file in files:
            with self.database.session() as db:
                accesses = _journaled(db, [file])
            for values in accesses:  # the file's name is in: a record refused now is not retried
                written += self._one(values)
            self.journal.written([file])
        return written

    def _one_by_one(self, batch: list[dict[str, Any]]) -> int:
        return sum(self._one(values) for values in batch)

    def _one(self, values: dict[str, Any]) -> int:
        try:
            with self.database.session() as db:
                db.execute(insert(RECORDS), [values])
        except (DataError, IntegrityError):
            log.error(
                "audit record refused by the database: %s %s %s",
                values.get("action"),
                values.get("method"),
                values.get("path"),
            )
            return 0
        return 1


def _journaled(db: Session, files: list[JournalFile]) -> list[dict[str, Any]]:
    """The records of the journal files not written before, with each file's name added to the
    transaction (a file written before a crash that kept it on disk is skipped)."""
    if not files:
        return []
    names = [file.name for file in files]
    done = set(db.scalars(select(AuditJournalFile.name).where(AuditJournalFile.name.in_(names))))
    records: list[dict[str, Any]] = []
    for file in files:
        if file.name in done:
            continue
        found = file.records()
        db.add(AuditJournalFile(name=file.name, records=len(found)))
        records += (_complete(values) for values in found)
    db.flush()
    return records


def _complete(values: dict[str, Any]) -> dict[str, Any]:
    """Every column in: one statement writes the batch, and a record that stands for its request
    too carries columns another leaves to their defaults."""
    for column in RECORDS.columns:
        if column.name not in values and not column.primary_key:
            default: Any = column.default
            if default is None:
                values[column.name] = None
            else:
                values[column.name] = default.arg(None) if default.is_callable else default.arg
    return values
