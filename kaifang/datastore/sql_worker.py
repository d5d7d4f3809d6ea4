"""Where checked SQL runs: a few worker processes, each opening a locked-down DuckDB per query.

A query runs in a child process, not in the server: DuckDB's `memory_limit` covers its buffers
but not every allocation (a string built by `repeat` or nested `replace` can take gigabytes), and
its interrupt is only checked between chunks of work (a single `regexp_replace` over a huge
string runs to the end). The worker caps its own memory with `RLIMIT_DATA`, so such a query fails
with an out-of-memory error inside the worker; a query that will not stop is killed with its
process. Either way the server goes on, and a fresh worker takes the place of a spent one.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import resource
import signal
import threading
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import duckdb

from kaifang.datastore.query import ROW, quote
from kaifang.datastore.types import ColumnType

TABLE = "data"
THREADS = 2  # one query may use two cores; it must not take the whole machine from other requests
WORKERS = 4  # queries running at once in one server process; more wait for a free worker
GRACE_SECONDS = 1.0  # past the time limit the worker is killed if DuckDB's interrupt did not stop it
STARTUP_SECONDS = 30.0
TIMEZONE = "Asia/Shanghai"  # stored datetimes are naive local (Beijing) time; now() agrees with them
_CONFIG: dict[str, str | int | float | list[str]] = {
    "threads": THREADS,
    "temp_directory": "",  # never spill to disk: a query past its memory limit fails instead
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,  # no table name may resolve to a Python variable
}


@dataclass(frozen=True)
class Job:
    """One query for a worker: the file, the checked SQL and its limits."""

    parquet: str
    sql: str
    timeout_seconds: float
    max_rows: int
    memory_mb: int


@dataclass(frozen=True)
class Outcome:
    """What a worker answers: `ready` once started; for a job `ok` with fields, records and
    truncated, else the kind of failure (`refused`, `failed`, `memory`, `timeout`, `crashed`,
    `busy`, `error`) and a message."""

    kind: str
    message: str = ""
    fields: tuple[dict[str, str], ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    truncated: bool = False


# ---------------------------------------------------------------- in the worker


def open_connection(parquet: Path, memory_mb: int) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB whose only readable file is `parquet`, seen as the view `data`.

    File access is granted for that one path and the view bound; then external access is
    switched off and the configuration locked, so no statement on this connection can read
    another file, load an extension, attach a database or undo these settings.
    """
    con = duckdb.connect(":memory:", config={**_CONFIG, "memory_limit": f"{memory_mb}MiB"})
    try:
        path = str(parquet.resolve())
        con.execute("SET allowed_paths = ?", [[path]])
        literal = "'" + path.replace("'", "''") + "'"  # DDL takes no parameters: a quoted literal
        con.execute(f"CREATE VIEW {TABLE} AS SELECT * EXCLUDE ({quote(ROW)}) FROM read_parquet({literal})")  # noqa: S608
        con.execute(f"SET TimeZone = '{TIMEZONE}'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _serve(conn: Connection) -> None:
    """A worker's life: answer jobs until the server closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which ends its workers
    conn.send(Outcome("ready"))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        # The data segment may grow past DuckDB's own limit by as much again plus the interpreter's
        # needs; beyond that an allocation fails and DuckDB reports it as out of memory.
        limit = (2 * job.memory_mb + 512) * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
        try:
            outcome = _run(job)
        except MemoryError:
            outcome = Outcome("memory")
        except Exception as exc:  # the server's fault (a missing data file …), not the query's
            outcome = Outcome("error", f"{type(exc).__name__}: {exc}")
        conn.send(outcome)


def _run(job: Job) -> Outcome:
    con = open_connection(Path(job.parquet), job.memory_mb)
    try:
        statements = con.extract_statements(job.sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            return Outcome("refused", "只允许执行一条 SELECT 查询")
        timer = threading.Timer(job.timeout_seconds, con.interrupt)
        timer.start()
        try:
            con.execute(statements[0])
            columns = [(str(name), str(kind)) for name, kind, *_ in con.description or []]
            rows = con.fetchmany(job.max_rows + 1)
        finally:
            timer.cancel()
            timer.join()  # an interrupt already under way finishes before the connection closes
    except duckdb.InterruptException:
        return Outcome("timeout")
    except duckdb.OutOfMemoryException:
        return Outcome("memory")
    except duckdb.Error as exc:
        return Outcome("failed", str(exc).replace(str(Path(job.parquet).resolve()), TABLE).strip()[:500])
    except (ValueError, OverflowError):  # a value Python cannot hold
        return Outcome("failed", "查询结果中有无法表示的值，请转换为文本（CAST(… AS VARCHAR)）后再试")
    finally:
        con.close()
    return _result(columns, rows, job.max_rows)


def _result(columns: list[tuple[str, str]], rows: list[tuple[Any, ...]], max_rows: int) -> Outcome:
    names = [name for name, _ in columns]
    duplicate = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if duplicate is not None:  # records are keyed by column name: one of the two would be lost
        return Outcome("failed", f"结果中有重名的列“{duplicate}”，请用 AS 为各列起不同的名称")
    return Outcome(
        "ok",
        fields=tuple({"name": name, "type": _column_type(kind), "sql_type": kind} for name, kind in columns),
        records=tuple(
            {name: _json_value(v) for name, v in zip(names, row, strict=True)} for row in rows[:max_rows]
        ),
        truncated=len(rows) > max_rows,
    )


_INTEGERS = (
    *("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"),
    *("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"),
)
_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE")
_TYPES = {
    **dict.fromkeys(_INTEGERS, ColumnType.integer),
    **dict.fromkeys(("FLOAT", "DOUBLE", "DECIMAL"), ColumnType.decimal),
    **dict.fromkeys(_TIMESTAMPS, ColumnType.datetime),
    "BOOLEAN": ColumnType.boolean,
    "DATE": ColumnType.date,
    "VARCHAR": ColumnType.text,
}


def _column_type(sql_type: str) -> str:
    """The data dictionary's type for a DuckDB result type; `other` for lists, structs, intervals …"""
    return str(_TYPES.get(sql_type.split("(", 1)[0], "other"))


def _json_value(value: Any) -> Any:
    """Dates as ISO text, decimals as numbers, NaN and infinities as null; nested values likewise."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)  # UUID, interval (timedelta) …


# ---------------------------------------------------------------- in the server


class _Worker:
    """A child process and the pipe to it. Started with `spawn`: the server has threads (and
    DuckDB's own), which a forked child would inherit in whatever state they were."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True, name="kaifang-sql")
        self.process.start()
        child.close()
        # Wait until it has started, so that its start-up never counts against a query's time.
        try:
            ready = self.conn.poll(STARTUP_SECONDS) and self.conn.recv().kind == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise RuntimeError("the SQL worker process did not start")

    def run(self, job: Job) -> Outcome:
        """The worker's answer, or `timeout` after killing it if it did not answer in time."""
        try:
            self.conn.send(job)
            if not self.conn.poll(job.timeout_seconds + GRACE_SECONDS):
                self.stop()
                return Outcome("timeout")
            outcome: Outcome = self.conn.recv()
            return outcome
        except (EOFError, OSError):  # the worker died (killed for its memory, or crashed)
            self.stop()
            return Outcome("crashed")

    def stop(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    @property
    def usable(self) -> bool:
        return not self.conn.closed and self.process.is_alive()


class _Pool:
    """`WORKERS` slots, each holding a worker once one was needed (started on first use)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(WORKERS):
            self.slots.put(None)

    def run(self, job: Job) -> Outcome:
        try:
            worker = self.slots.get(timeout=job.timeout_seconds)
        except queue.Empty:
            return Outcome("busy")
        try:
            if worker is None or not worker.usable:
                worker = _Worker()
            outcome = worker.run(job)
            if outcome.kind == "memory" and worker.usable:
                worker.stop()  # a process that ran out of memory may keep it: start afresh
            return outcome
        finally:
            self.slots.put(worker if worker is not None and worker.usable else None)


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def run(job: Job) -> Outcome:
    """Run `job` in a worker of this process (a forked server process gets its own workers)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool()
        pool = _pool
    return pool.run(job)
