"""Off the request path: HTTP request records in batches, sealing, and signed checkpoints.

One thread per app process wakes every `interval` seconds (at most one second): it writes the
request records gathered since, seals every committed record into the hash chain, and signs a
checkpoint when one is due. A clean shutdown writes what is left (`stop`); a killed process loses
at most the last interval's request records. State changes and data accesses never pass through
here: they are written in the transaction of the change or access itself.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import DataError, IntegrityError

from kaifang.audit import chain
from kaifang.audit.models import AuditRecord
from kaifang.db import Database

log = logging.getLogger("kaifang.audit")

MAX_BUFFER = 100_000  # beyond this (database away for long), the oldest request records are dropped


class AuditWriter:
    def __init__(
        self, database: Database, key: chain.SigningKey, *, interval: float = 1.0, checkpoint_every: timedelta
    ) -> None:
        self.database = database
        self.key = key
        self.interval = interval
        self.checkpoint_every = checkpoint_every
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # guards the buffer
        self._flushing = threading.Lock()  # one flush at a time (thread, tests, shutdown)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # the database briefly away: the records stay buffered for the next try
                log.exception("writing audit records failed")

    def flush(self) -> int:
        """Write the buffered request records and seal the chain now; returns records written."""
        with self._flushing:
            with self._lock:
                batch, self._buffer = self._buffer, []
            try:
                with self.database.session() as db:
                    if batch:
                        db.execute(insert(AuditRecord), batch)
                    chain.seal(db)
                    chain.checkpoint(db, self.key, self.checkpoint_every)
            except (DataError, IntegrityError):  # one bad record must not hold the others back
                return self._one_by_one(batch)
            except Exception:  # the database is away: keep the batch for the next try
                with self._lock:
                    self._buffer[:0] = batch
                raise
            return len(batch)

    def _one_by_one(self, batch: list[dict[str, Any]]) -> int:
        written = 0
        for values in batch:
            try:
                with self.database.session() as db:
                    db.execute(insert(AuditRecord), [values])
                written += 1
            except (DataError, IntegrityError):
                log.error(
                    "audit request record refused by the database: %s %s",
                    values.get("method"),
                    values.get("path"),
                )
        return written
