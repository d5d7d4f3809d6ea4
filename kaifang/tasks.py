"""Background jobs: reading uploads into versions.

Two backends behind one interface (`Jobs`), chosen by `KAIFANG_JOBS_BACKEND`:

- `inprocess` (the embedded default): the server runs jobs itself, in one worker thread.
- `redis` (production): the app only enqueues on a huey queue in Redis; `kaifang worker` runs the
  jobs in separate processes, as many as asked, on any machine that reaches the database, the
  file store and Redis.

Every job is keyed by a database row (a version in `processing`) and is idempotent, so the row, not
the queue, is the truth. A job lost to a crash or a kill is run again: in-process at the next
start; on Redis by the worker, which re-enqueues every `processing` version whose lease has
expired (a running job holds a lease in Redis and renews it while it works, so a killed worker's
lease runs out after `jobs_lease_seconds` and its version is picked up again).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from huey import RedisHuey
    from redis import Redis

    from kaifang.datastore.storage import FileStore
    from kaifang.db import Database
    from kaifang.settings import Settings

log = logging.getLogger("kaifang.tasks")


class Jobs(Protocol):
    def process_version(self, version_id: int) -> None:
        """Read a version's staged upload (the version row must be committed first)."""

    def resume(self) -> None:
        """Run again the jobs a crash or a kill interrupted."""

    def drain(self, timeout: float = 60) -> None:
        """Wait for the jobs this process runs (tests and clean shutdown)."""

    def shutdown(self) -> None:
        """Stop taking jobs; finish the running ones."""


def make_jobs(settings: Settings, db: Database, store: FileStore) -> Jobs:
    if settings.jobs_backend == "redis":
        return RedisJobs(settings)
    return InProcessJobs(db, store)


# --- in-process ----------------------------------------------------------------------------------


class JobRunner:
    """A thread pool that outlives failures of its jobs and can be drained and restarted."""

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
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)


class InProcessJobs:
    """The embedded default: jobs run in a thread of the server process."""

    def __init__(self, db: Database, store: FileStore) -> None:
        self.db = db
        self.store = store
        self.runner = JobRunner(workers=1)

    def process_version(self, version_id: int) -> None:
        from kaifang.datastore.service import process_version

        self.runner.submit(process_version, self.db, self.store, version_id)

    def resume(self) -> None:
        for version_id in _pending_versions(self.db):
            self.process_version(version_id)

    def drain(self, timeout: float = 60) -> None:
        self.runner.drain(timeout)

    def shutdown(self) -> None:
        self.runner.shutdown()  # queued jobs are not lost: their versions resume at the next start


def _pending_versions(db: Database) -> list[int]:
    from kaifang.datastore.service import pending_versions

    with db.session() as session:
        return pending_versions(session)


# --- Redis (production) ----------------------------------------------------------------------------


@dataclass
class Queue:
    """The huey queue, its Redis connection and the names of its keys."""

    huey: RedisHuey
    redis: Redis
    prefix: str
    lease_seconds: int

    def lease_key(self, version_id: int) -> str:
        return f"{self.prefix}:lease:version:{version_id}"

    def queued_key(self, version_id: int) -> str:
        return f"{self.prefix}:queued:version:{version_id}"

    def enqueue(self, version_id: int) -> None:
        """Put the job on the queue, marked so the resume sweep does not queue it twice."""
        self.redis.set(self.queued_key(version_id), 1, ex=self.lease_seconds * 10)
        self.huey.enqueue(_process_version_task(self.huey).s(version_id))

    def resume(self, pending: list[int]) -> list[int]:
        """Enqueue the pending versions that no worker holds and nothing has queued."""
        queued = []
        for version_id in pending:
            if self.redis.exists(self.lease_key(version_id), self.queued_key(version_id)):
                continue
            self.enqueue(version_id)
            queued.append(version_id)
        return queued


def make_queue(settings: Settings) -> Queue:
    from huey import RedisHuey
    from redis import Redis

    connection = Redis.from_url(settings.redis_url)
    huey = RedisHuey(settings.jobs_queue, connection_pool=connection.connection_pool, results=False)
    queue = Queue(huey, connection, f"{settings.jobs_queue}:kaifang", settings.jobs_lease_seconds)
    _process_version_task(huey)
    return queue


_tasks: dict[int, Any] = {}


def _process_version_task(huey: RedisHuey) -> Any:
    """The job, registered once on this huey instance under a stable name (web and worker agree)."""
    task = _tasks.get(id(huey))
    if task is None:
        task = _tasks[id(huey)] = huey.task(name="kaifang.process_version")(run_version_job)
    return task


class RedisJobs:
    """The app's side of the Redis backend: it enqueues; `kaifang worker` runs and resumes."""

    def __init__(self, settings: Settings) -> None:
        self.queue = make_queue(settings)

    def process_version(self, version_id: int) -> None:
        self.queue.enqueue(version_id)

    def resume(self) -> None:
        """The workers resume interrupted jobs; an app process starting up has nothing to do."""

    def drain(self, timeout: float = 60) -> None:
        """Jobs run in the workers, not here."""

    def shutdown(self) -> None:
        self.queue.redis.close()


# --- the worker ------------------------------------------------------------------------------------


@dataclass
class WorkerContext:
    settings: Settings
    db: Database
    store: FileStore
    queue: Queue


_context: dict[int, WorkerContext] = {}  # per process id: connections are never shared across a fork


def worker_context() -> WorkerContext:
    pid = os.getpid()
    context = _context.get(pid)
    if context is None:
        from kaifang.datastore.storage import LocalFileStore
        from kaifang.db import Database
        from kaifang.settings import load_settings

        settings = load_settings()
        context = _context[pid] = WorkerContext(
            settings, Database(settings.db_url), LocalFileStore(settings.files_dir), make_queue(settings)
        )
    return context


def run_version_job(version_id: int) -> None:
    """What a worker process runs for one queued version: under a lease, at most once at a time."""
    from kaifang.datastore.service import process_version

    context = worker_context()
    queue = context.queue
    with _lease(queue, version_id) as held:
        if not held:
            log.info("version %s is being read by another worker", version_id)
            return
        queue.redis.delete(queue.queued_key(version_id))
        process_version(context.db, context.store, version_id)


@contextmanager
def _lease(queue: Queue, version_id: int) -> Iterator[bool]:
    """Hold the version's lease while the job runs, renewing it; a killed worker's lease expires."""
    lock = queue.redis.lock(queue.lease_key(version_id), timeout=queue.lease_seconds, blocking=False)
    if not lock.acquire():
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(queue.lease_seconds / 3):
            lock.extend(queue.lease_seconds, replace_ttl=True)

    renewer = threading.Thread(target=renew, name="kaifang-lease", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        lock.release()


def resume_stalled() -> list[int]:
    """Enqueue every version left `processing` whose lease expired (its worker died)."""
    context = worker_context()
    queued = context.queue.resume(_pending_versions(context.db))
    if queued:
        log.info("re-queued interrupted versions %s", queued)
    return queued


def run_worker(workers: int) -> None:
    """`kaifang worker`: resume what was interrupted, then consume the queue until stopped.

    Jobs run in `workers` child processes; a sweep process re-queues stalled versions every
    `jobs_lease_seconds`.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    context = worker_context()
    if context.settings.jobs_backend != "redis":
        raise SystemExit("kaifang worker 需要 KAIFANG_JOBS_BACKEND=redis（内置模式下由服务进程自行运行任务）")
    interval = context.settings.jobs_lease_seconds
    # The sweep runs in a process of its own, started before anything else: a thread here would
    # be inherited mid-lock by the job processes the consumer forks.
    multiprocessing.get_context("fork").Process(
        target=_sweep, args=(interval, os.getpid()), name="kaifang-sweep", daemon=True
    ).start()
    consumer = context.queue.huey.create_consumer(workers=workers, worker_type="process")
    log.info("worker: %s processes on queue %s", workers, context.settings.jobs_queue)
    consumer.run()


def _sweep(interval: float, parent: int) -> None:
    """Every `interval` seconds, re-queue stalled versions; stop when the worker is gone."""
    while os.getppid() == parent:
        try:
            resume_stalled()
        except Exception:  # Redis or the database briefly away: try again at the next sweep
            log.exception("resume sweep failed")
        time.sleep(interval)
