"""One query engine per version, kept while used, and the query copies of large versions.

An engine keeps its version's cached totals (a version's rows never change). A published
version of `COPY_MIN_ROWS` rows or more also gets a *query copy*: the same rows in DuckDB's own
storage format under the store key `query-copies/{sha256}-{DuckDB version}.duckdb`, which
answers the data API several times faster than the Parquet file (see query.py). It is built
once, in the background, by one builder thread on a single DuckDB thread — meanwhile the engine
reads the Parquet file — and then serves every process and restart. The checksum in its name
ties a copy to exactly that data, the DuckDB version to a storage format the process can read.
Every published version with rows also gets a *row copy* (`{sha256}-rows{layout}.sqlite`,
rowcopy.py) for unsorted pages of rows: built by the same thread, after the query copy and in a
process of its own for a large version.
A copy is only ever a faster way to read the Parquet file: deleting one loses nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import partial
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from kaifang.datastore import rowcopy, service
from kaifang.datastore.models import ResourceVersion, VersionStatus
from kaifang.datastore.query import COPY_TABLE, ROW, QueryEngine, quote
from kaifang.datastore.rowcopy import build_row_copy
from kaifang.datastore.storage import FileStore

log = logging.getLogger("kaifang.datastore")

COPY_MIN_ROWS = 100_000  # below this the Parquet file answers about as fast
COPY_DIR = "query-copies"
MAX_ENGINES = 64
ABANDONED_AFTER_S = 3600

_engines: OrderedDict[tuple[int, str], QueryEngine] = OrderedDict()
_engines_lock = threading.Lock()
_row_copies = [True]  # setting `row_copies`


def configure(*, row_copies: bool) -> None:
    """Setting `row_copies` (called when the platform is built): off, no row copy is built or read."""
    _row_copies[0] = row_copies


def engine_for(store: FileStore, version: ResourceVersion) -> QueryEngine:
    """One engine per version, kept while used: its cached totals serve repeated queries."""
    key = (version.id, version.sha256)  # the file's checksum: a reused id never meets a stale engine
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = QueryEngine(store.path(version.data_key), service.schema_of(version))
            _plan_copy(store, version, engine)
            while len(_engines) > MAX_ENGINES:
                _engines.popitem(last=False)
        _engines.move_to_end(key)
    return engine


def copy_path(store: FileStore, version: ResourceVersion) -> Path:
    """Where the query copy of a version lives (whether or not it exists yet)."""
    return store.path(f"{COPY_DIR}/{version.sha256}-{duckdb.__version__}.duckdb")


def row_copy_path(store: FileStore, version: ResourceVersion) -> Path:
    """Where the row copy of a version lives (rowcopy.py; whether or not it exists yet)."""
    return store.path(f"{COPY_DIR}/{version.sha256}-rows{rowcopy.LAYOUT}.sqlite")


def _plan_copy(store: FileStore, version: ResourceVersion, engine: QueryEngine) -> None:
    """Read the version's copies if they exist; have them built if the version deserves them:
    every published version with rows a row copy, a large one a query copy first."""
    if version.status != VersionStatus.published or version.row_count < 1 or not version.sha256:
        return
    large = version.row_count >= COPY_MIN_ROWS
    plans: list[tuple[Path, Callable[[Path, Path], None], Callable[[QueryEngine, Path], None]]] = []
    if large:
        plans.append((copy_path(store, version), build_copy, QueryEngine.use_copy))
    if _row_copies[0]:
        build_rows = build_row_copy_apart if large else build_row_copy_here
        plans.append((row_copy_path(store, version), build_rows, QueryEngine.use_row_copy))
    parquet = Path(engine.path)
    for target, build, use in plans:
        if target.is_file():
            use(engine, target)
        else:
            _builder.submit(parquet, target, build, partial(use, engine))


def build_copy(parquet: Path, target: Path) -> None:
    """Write the rows of a version file as a one-table DuckDB database, atomically at `target`.

    One DuckDB thread in file order: `_row` order is kept (unsorted pages rely on it) and a core
    stays free for the requests served meanwhile. Before the rename the copy must hold every row,
    each at the position its `_row` names (deep pages of a copy are ranges of `_row`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    config: dict[str, str | bool | int | float | list[str]] = {
        "threads": 1,
        "memory_limit": "1GB",
        "preserve_insertion_order": True,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    source = "'" + str(parquet).replace("'", "''") + "'"
    try:
        with duckdb.connect(str(temp), config=config) as con:
            con.execute(f"CREATE TABLE {COPY_TABLE} ({_columns(con, source)})")
            con.execute(f"INSERT INTO {COPY_TABLE} SELECT * FROM read_parquet({source})")  # noqa: S608
            check = f"SELECT count(*), count(*) FILTER ({ROW} IS DISTINCT FROM rowid) FROM {COPY_TABLE}"  # noqa: S608
            copied, misplaced = con.execute(check).fetchall()[0]
            con.execute("CHECKPOINT")
        expected = pq.ParquetFile(parquet).metadata.num_rows
        if copied != expected or misplaced:
            raise RuntimeError(
                f"{parquet}: {copied} of {expected} rows copied, {misplaced} not at their _row"
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
        temp.with_name(temp.name + ".wal").unlink(missing_ok=True)


UNIQUE_SAMPLE_ROWS = 122_880  # one row group of the copy
MOSTLY_UNIQUE = 0.25


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """The copy's column definitions: the file's types, and mostly-unique text stored plain.

    DuckDB compresses text with a dictionary plus FSST. For names, addresses and codes that are
    mostly unique that saves space but costs about half a millisecond to read even one row of a
    page — the data API's page of 100 rows took twice as long. Such columns (distinct values in
    over a quarter of the first row group's rows) are stored uncompressed; repetitive ones keep
    the dictionary, which makes their filters and groups fast.
    """
    described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({source})").fetchall()  # noqa: S608
    texts = [name for name, kind, *_ in described if kind == "VARCHAR"]
    plain: set[str] = set()
    if texts:
        distinct = ", ".join(f"count(DISTINCT {quote(n)})" for n in texts)
        sample = f"SELECT count(*), {distinct} FROM read_parquet({source}) WHERE {ROW} < {UNIQUE_SAMPLE_ROWS}"  # noqa: S608
        rows, *counts = con.execute(sample).fetchall()[0]
        plain = {n for n, c in zip(texts, counts, strict=True) if rows and c > rows * MOSTLY_UNIQUE}
    return ", ".join(
        f"{quote(name)} {kind}" + (" USING COMPRESSION uncompressed" if name in plain else "")
        for name, kind, *_ in described
    )


def build_row_copy_here(parquet: Path, target: Path) -> None:
    """`rowcopy.build_row_copy` of a small version, in the builder thread (18 ms for 2,000 rows)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    build_row_copy(parquet, target)


def build_row_copy_apart(parquet: Path, target: Path) -> None:
    """`rowcopy.build_row_copy` of a large version in a process of its own, so the server's
    interpreter stays free."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    command = [sys.executable, "-m", "kaifang.datastore.rowcopy", str(parquet), str(target)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"building the row copy of {parquet} failed:\n{done.stderr[-2000:]}")


def _remove_abandoned(target: Path) -> None:
    """Half-built copies of `target` left by a process that stopped mid-build (builds take seconds)."""
    for part in target.parent.glob(f".{target.name}.*.part*"):
        try:
            if time.time() - part.stat().st_mtime > ABANDONED_AFTER_S:
                part.unlink()
        except FileNotFoundError:  # another process cleaned it first
            pass


class _Builder:
    """One daemon thread builds the copies asked for, one at a time, in the order asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[Path, Path, Callable[[Path, Path], None]]] = deque()
        self._waiting: dict[Path, list[Callable[[Path], None]]] = {}  # target → what to switch when built
        self._thread: threading.Thread | None = None

    def submit(
        self, parquet: Path, target: Path, build: Callable[[Path, Path], None], use: Callable[[Path], None]
    ) -> None:
        with self._lock:
            if target in self._waiting:
                self._waiting[target].append(use)
                return
            self._waiting[target] = [use]
            self._queue.append((parquet, target, build))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="kaifang-query-copies", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    return
                parquet, target, build = self._queue.popleft()
            built = False
            try:
                build(parquet, target)
                built = True
            except Exception:  # the engines keep reading as before; the next engine tries again
                log.exception("building %s from %s failed", target.name, parquet)
            with self._lock:
                uses = self._waiting.pop(target, [])
            for use in uses if built else []:
                use(target)

    def wait(self, timeout: float | None = None) -> None:
        """Until every copy asked for is built (for tests, benchmarks and a clean shutdown)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


_builder = _Builder()
wait_for_copies = _builder.wait
