"""Background jobs. In the embedded default the server runs them in-process, in one worker thread.

Every job is idempotent and keyed by a database row (a version in `processing`), so a job lost
to a crash or a kill is simply run again at the next start (`JobRunner.resume`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("kaifang.tasks")


class JobRunner:
    def __init__(self, workers: int = 1) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., None], *args: object) -> Future[None]:
        with self._lock:
            if self._pool is None:  # started on first use, and again after a shutdown (app restarts, tests)
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="kaifang-job")
            future = self._pool.submit(self._run, fn, *args)
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    @staticmethod
    def _run(fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # a job must never take the worker down; it records its own failure
            log.exception("job %s%r failed", getattr(fn, "__name__", fn), args)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def drain(self, timeout: float = 60) -> None:
        """Wait for every submitted job (tests and clean shutdown)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        """Finish the running and queued jobs, then stop the worker thread."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)
