"""The data API over HTTP beside its peers: the five questions of DESIGN.md "Performance".

    .venv/bin/pip install -e '.[bench]'          # httpx, datasette 0.65, pyinstrument
    .venv/bin/python bench/http_bench.py         # 5,000,000 rows, median of 5
    .venv/bin/python bench/http_bench.py --rows 1000000 --runs 9 --output /tmp/http.md

One table (`table.py`) in four systems, the same questions, one run (bench/README.md has the
details and the latest figures):

- DuckDB, the floor: plain SQL on the version's Parquet file over one warm connection.
- Kaifang: `kaifang serve` on a temporary home, `GET /api/v1/resources/{rid}/data` with an API
  key over one keep-alive client. The version is *registered*, not uploaded: the Parquet file,
  written with the ingest job's options, is put under the store key `data/{rid}/1.parquet` and a
  published 无条件开放 entry, Resource and published ResourceVersion (schema, row count, size,
  sha256) are inserted. The first data request starts the platform's query copy and row copy of
  the version; the bench waits until both exist and reports how long that took. `KAIFANG_DATA_MAX_OFFSET` is
  raised to the table size for the offset question (the default refuses offsets past 1,000,000).
- Datasette 0.65: the rows in SQLite (sqlite3 `executemany`, ANALYZE) with indexes on
  `(district)` and `(district, category)`, `datasette serve -i`; rows by `_shape=array`, the
  count from `filtered_table_rows_count`, the group-by by `?sql=`, the deep page by `_next=`.
- PostgreSQL (CKAN DataStore's engine): a temporary database, `id` primary key plus the same
  two indexes, VACUUM ANALYZE; plain SQL over psycopg, pages ordered by `id`, the deep page by
  OFFSET, and by `id > <last id>` for the cursor (the DataStore's `next_page`). Asked twice: as
  `datastore_search` answers (the page, then its exact count(*), which CKAN runs by default and
  Kaifang's answers carry as `total`), and the page's SQL alone, for reference.

The deep page is asked of Kaifang by `offset` and by `cursor` (the `next` of the page before,
as a client paging through holds it; Datasette's `_next` is found the same way). Every answer is
checked against DuckDB's first; then medians of `--runs` interleaved runs, with the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import psycopg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_bench import free_port, running_server
from table import SCHEMA, generate

from kaifang.accounts.models import Organisation, User
from kaifang.accounts.permissions import SYSTEM
from kaifang.accounts.service import hash_password, issue_api_key
from kaifang.app import build_platform, prepare_database
from kaifang.catalog.models import Entry, EntryStatus, OpenType
from kaifang.datastore.engines import COPY_MIN_ROWS, copy_path, row_copy_path
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.db import utcnow
from kaifang.settings import load_settings

TABLE = "data"  # the SQLite and PostgreSQL table; Datasette serves it as /bench/data
COLUMNS = [c.name for c in SCHEMA]
TARGET_RATIO = 1.5
# The same server settings but KAIFANG_DATA_CACHE_MB=0: every call runs its query, as the first
# time a question is asked does (the timed runs of "Kaifang HTTP" are answered from memory).
UNCACHED = "Kaifang, no answer cache"


@dataclass
class Question:
    """One question as each system is asked it."""

    label: str
    duckdb: str
    datasette: tuple[str, dict[str, str]]  # path and parameters
    postgres: str
    kaifang: dict[str, str]
    # The total CKAN's `datastore_search` counts with every page (include_total defaults to true,
    # an exact count(*) over the same filters); Kaifang's answer carries the same total. None: a
    # count or an aggregate, whose answer is the only query.
    postgres_total: str | None = None


GROUP_SQL = "SELECT district, count(*), sum(amount), avg(count) FROM {t} GROUP BY district"


def questions(parquet: Path, rows: int) -> list[Question]:
    """The five questions (the deep page twice); `{by_id}` orders PostgreSQL's pages by its key."""
    page = 40_000 if rows >= 4_000_000 else max(2, rows * 8 // 1000)
    offset = (page - 1) * 100
    names = ", ".join(f'"{n}"' for n in COLUMNS)
    duck = {"t": f"read_parquet('{parquet}')", "cols": names, "by_id": "", "offset": offset}
    pg = {"t": TABLE, "cols": names, "by_id": " ORDER BY id", "offset": offset}
    table = f"/bench/{TABLE}.json"
    eq, both = {"district": "海淀区"}, {"district": "海淀区", "category": "类别07"}
    amounts = {"amount__gte": "1000", "amount__lte": "2000"}
    rows100 = {"_size": "100", "_shape": "array"}  # + _next for the deep page, found later
    deep = "SELECT {cols} FROM {t}{by_id} LIMIT 100 OFFSET {offset}"
    specs = [
        (
            "equality filter, first 100 rows",
            "SELECT {cols} FROM {t} WHERE district = '海淀区'{by_id} LIMIT 100",
            (table, eq | rows100),
            eq | {"limit": "100"},
        ),
        (
            "count with two filters",
            "SELECT count(*) FROM {t} WHERE district = '海淀区' AND category = '类别07'",
            (table, both | {"_size": "0", "_nosuggest": "1"}),
            both | {"limit": "0"},
        ),
        (
            "range filter, sort, top 100",
            "SELECT {cols} FROM {t} WHERE amount >= 1000 AND amount <= 2000 ORDER BY amount DESC LIMIT 100",
            (table, amounts | {"_sort_desc": "amount"} | rows100),
            amounts | {"sort": "-amount", "limit": "100"},
        ),
        (
            "group by, 3 aggregates",
            GROUP_SQL,
            ("/bench.json", {"sql": GROUP_SQL.format(t=TABLE), "_shape": "array"}),
            {"group_by": "district", "agg": "count,sum:amount,avg:count"},
        ),
        (
            f"page {page:,} of 100 rows, offset",
            deep,
            (table, dict(rows100)),
            {"limit": "100", "offset": str(offset)},
        ),
        (f"page {page:,} of 100 rows, cursor", deep, (table, dict(rows100)), {"limit": "100"}),  # + cursor
    ]
    totals = [
        "SELECT count(*) FROM {t} WHERE district = '海淀区'",
        None,
        "SELECT count(*) FROM {t} WHERE amount >= 1000 AND amount <= 2000",
        None,
        "SELECT count(*) FROM {t}",
        "SELECT count(*) FROM {t}",
    ]
    return [
        Question(label, sql.format(**duck), ds, sql.format(**pg), kf, total and total.format(**pg))
        for (label, sql, ds, kf), total in zip(specs, totals, strict=True)
    ]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the four systems ---------------------------------------------------------------------------


def peer_batches(parquet: Path) -> Iterator[Any]:
    """The visible columns in file order, dates as ISO text (SQLite has no date type)."""
    con = duckdb.connect()
    select = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' if n == "day" else f'"{n}"' for n in COLUMNS)
    yield from con.sql(f"SELECT {select} FROM read_parquet('{parquet}')").to_arrow_reader(100_000)
    con.close()


def load_sqlite(path: Path, parquet: Path, indexes: bool) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute(
        f'CREATE TABLE {TABLE} ("id" INTEGER, "district" TEXT, "category" TEXT, "amount" REAL, '
        '"count" INTEGER, "day" TEXT, "name" TEXT)'
    )
    insert = f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(COLUMNS))})"
    for batch in peer_batches(parquet):
        con.executemany(insert, zip(*(column.to_pylist() for column in batch.columns), strict=True))
    if indexes:
        con.execute(f"CREATE INDEX idx_{TABLE}_district ON {TABLE} (district)")
        con.execute(f"CREATE INDEX idx_{TABLE}_district_category ON {TABLE} (district, category)")
    con.execute("ANALYZE")
    con.commit()
    con.close()


@contextmanager
def datasette_server(db: Path) -> Iterator[str]:
    port = free_port()
    datasette = Path(sys.executable).with_name("datasette")
    settings = {"sql_time_limit_ms": "120000", "max_returned_rows": "1000", "default_cache_ttl": "0"}
    command = [str(datasette), "serve", "-i", str(db), "--host", "127.0.0.1", "--port", str(port)]
    for name, value in settings.items():
        command += ["--setting", name, value]
    with (db.parent / "datasette.log").open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(f"{base}/-/versions.json", proc)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 60 s")


@contextmanager
def postgres_peer(url: str, parquet: Path, indexes: bool) -> Iterator[psycopg.Connection[Any]]:
    """A dedicated database with the table, dropped afterwards."""
    name = f"kaifang_http_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(re.sub(r"/[^/]*$", f"/{name}", url), autocommit=True) as con:
            con.execute(
                f"CREATE TABLE {TABLE} (id bigint PRIMARY KEY, district text, category text, amount numeric, "
                "count integer, day date, name text)"
            )
            with con.cursor().copy(f"COPY {TABLE} FROM STDIN (FORMAT csv)") as copy:
                for batch in peer_batches(parquet):
                    copy.write(_csv_bytes(batch))
            if indexes:
                con.execute(f"CREATE INDEX ON {TABLE} (district)")
                con.execute(f"CREATE INDEX ON {TABLE} (district, category)")
            con.execute(f"VACUUM ANALYZE {TABLE}")
            yield con
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _csv_bytes(batch: Any) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(batch, buffer, write_options=pacsv.WriteOptions(include_header=False))
    return buffer.getvalue()


def publish_version(
    home: Path, parquet: Path, *, database_url: str = "", title: str = "基准测试数据（500万行）"
) -> tuple[int, str, list[Path]]:
    """A temporary platform holding the table as a published resource.

    Returns the resource id, an API key, and where the platform will put the version's copies:
    its row copy, and first its query copy if the table is large enough to get one.
    """
    settings = load_settings(mode="dev", home=home, database_url=database_url)
    platform = build_platform(settings)
    prepare_database(platform)
    now = utcnow()
    with platform.db.session() as db:
        org = Organisation(slug="bench", name="基准测试单位")
        user = User(username="bench", email="bench@example.gov.cn", display_name="基准", password_hash="")
        user.password_hash = hash_password(secrets.token_urlsafe(16))
        db.add_all([org, user])
        db.flush()
        entry = Entry(
            provider_id=org.id,
            title=title,
            status=EntryStatus.published,
            open_type=OpenType.unconditional,
            published_at=now,
            last_published_at=now,
        )
        db.add(entry)
        db.flush()
        resource = Resource(entry_id=entry.id, name="基准表", kind=ResourceKind.table)
        db.add(resource)
        db.flush()
        key = f"data/{resource.id}/1.parquet"
        target = platform.store.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parquet, target)
        version = ResourceVersion(
            resource_id=resource.id,
            number=1,
            status=VersionStatus.published,
            source_filename="bench.csv",
            data_key=key,
            media_type="application/vnd.apache.parquet",
            schema=[c.to_dict() for c in SCHEMA],
            row_count=pq.ParquetFile(target).metadata.num_rows,
            byte_size=target.stat().st_size,
            sha256=hashlib.sha256(target.read_bytes()).hexdigest(),
            published_at=now,
        )
        db.add(version)
        db.flush()
        resource.published_version_id = version.id
        _, plain = issue_api_key(db, SYSTEM, user.id, "基准测试")
        rid = resource.id
        copies = [row_copy_path(platform.store, version)]  # every published version with rows
        if version.row_count >= COPY_MIN_ROWS:
            copies.insert(0, copy_path(platform.store, version))
    platform.db.dispose()
    return rid, plain, copies


# --- asking -------------------------------------------------------------------------------------

Answer = Any  # what is compared between systems: ids, amounts, a count, or (district, count) pairs


def digest(q: Question, rows: list[Any], *, total: int | None = None) -> Answer:
    """The comparable part of an answer; `rows` are tuples in COLUMNS order or dicts."""
    if q.label.startswith("count"):
        return total if total is not None else int(rows[0][0])
    if q.label.startswith("group"):
        return sorted((r[0], int(r[1])) for r in rows)
    column = COLUMNS.index("amount" if q.label.startswith("range") else "id")
    return [float(r[column]) for r in rows]


def _as_tuples(records: list[dict[str, Any]], keys: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in records]


class Systems:
    """The four systems, each asked a question by `ask(system, question)` → its answer's digest."""

    def __init__(
        self, pg: psycopg.Connection[Any], datasette: str, kaifang: str, uncached: str, rid: int, key: str
    ) -> None:
        self.duck = duckdb.connect()
        self.pg = pg
        self.datasette = httpx.Client(base_url=datasette, timeout=300)
        bearer = {"Authorization": f"Bearer {key}"}
        self.kaifang = httpx.Client(base_url=kaifang, timeout=300, headers=bearer)
        self.uncached = httpx.Client(base_url=uncached, timeout=300, headers=bearer)
        self.data = f"/api/v1/resources/{rid}/data"

    def close(self) -> None:
        self.datasette.close()
        self.kaifang.close()
        self.uncached.close()
        self.duck.close()

    def ask_duckdb(self, q: Question) -> Answer:
        return digest(q, self.duck.execute(q.duckdb).fetchall())

    def ask_postgres(self, q: Question) -> Answer:
        return digest(q, self.pg.execute(q.postgres).fetchall())

    def ask_datastore(self, q: Question) -> Answer:
        """As CKAN's DataStore answers a search: the page, then its exact total."""
        rows = self.pg.execute(q.postgres).fetchall()
        if q.postgres_total is not None:
            self.pg.execute(q.postgres_total).fetchall()
        return digest(q, rows)

    def ask_datasette(self, q: Question) -> Answer:
        path, params = q.datasette
        body = _json(self.datasette.get(path, params=params))
        if q.label.startswith("count"):
            return digest(q, [], total=body["filtered_table_rows_count"])
        if q.label.startswith("group"):
            return digest(q, _as_tuples(body, ["district", "count(*)"]))
        return digest(q, _as_tuples(body, COLUMNS))

    def ask_kaifang(self, q: Question, client: httpx.Client | None = None) -> Answer:
        body = _json((client or self.kaifang).get(self.data, params=q.kaifang))
        if q.label.startswith("count"):
            return digest(q, [], total=body["total"])
        if q.label.startswith("group"):
            return digest(q, _as_tuples(body["records"], ["district", "count"]))
        return digest(q, _as_tuples(body["records"], COLUMNS))

    def find_cursors(self, qs: list[Question]) -> None:
        """The `next` of the page before the deep page, as a client paging through would hold it."""
        offset_q, cursor_q = qs[-2], qs[-1]
        before = int(offset_q.kaifang["offset"]) - 100
        page = _json(self.kaifang.get(self.data, params={"limit": "100", "offset": str(before)}))
        cursor_q.kaifang["cursor"] = page["next"]
        path, _ = offset_q.datasette
        # Datasette pages a rowid table by rowid: the page before is reached with _next=<its start>.
        page = _json(self.datasette.get(path, params={"_size": "100", "_next": str(before)}))
        token = str(page["next"])
        for q in (offset_q, cursor_q):
            q.datasette[1]["_next"] = token
        # The DataStore pages by keyset on its key as well: its `next_page` is `_id > <last id>`.
        last = self.pg.execute(f"SELECT id FROM {TABLE} ORDER BY id LIMIT 1 OFFSET {before + 99}").fetchall()[
            0
        ][0]
        cursor_q.postgres = re.sub(
            r" ORDER BY id LIMIT 100 OFFSET \d+$",
            f" WHERE id > {last} ORDER BY id LIMIT 100",
            cursor_q.postgres,
        )
        cursor_q.postgres_total = f"SELECT count(*) FROM {TABLE} WHERE id > {last}"


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


DATASTORE = "PostgreSQL, page + total"
BARE = "PostgreSQL, page only"
SYSTEMS = ("DuckDB", "Datasette", DATASTORE, BARE, "Kaifang HTTP", UNCACHED)


def measure(systems: Systems, qs: list[Question], runs: int) -> dict[str, dict[str, float]]:
    """Median milliseconds per question and system; answers checked against DuckDB's first."""
    asks: dict[str, Callable[[Question], Answer]] = {
        "DuckDB": systems.ask_duckdb,
        "Datasette": systems.ask_datasette,
        DATASTORE: systems.ask_datastore,
        BARE: systems.ask_postgres,
        "Kaifang HTTP": systems.ask_kaifang,
        UNCACHED: lambda q: systems.ask_kaifang(q, systems.uncached),
    }
    for q in qs:  # the warm-up, and the answers to check
        floor = asks["DuckDB"](q)
        for name in SYSTEMS[1:]:
            answer = asks[name](q)
            if answer != floor:
                raise SystemExit(f"{name} answered {q.label!r} differently:\n{answer}\n!= DuckDB's\n{floor}")
    samples: dict[str, dict[str, list[float]]] = {q.label: {n: [] for n in SYSTEMS} for q in qs}
    for run in range(runs):
        log(f"run {run + 1} of {runs} …")
        for q in qs:
            for name in SYSTEMS:
                started = time.perf_counter()
                asks[name](q)
                samples[q.label][name].append((time.perf_counter() - started) * 1000)
    return {label: {n: statistics.median(ms) for n, ms in by.items()} for label, by in samples.items()}


def wait_for_copies(copies: list[Path], timeout: float = 600) -> float:
    """Seconds until the platform's copies of the table appear (built once per version, in the
    background: the query copy, then the row copy)."""
    started = time.perf_counter()
    for copy in copies:
        while not copy.exists():
            if time.perf_counter() - started > timeout:
                raise SystemExit(f"no copy at {copy} after {timeout:.0f} s")
            time.sleep(0.1)
        log(f"{copy.name} built after {time.perf_counter() - started:.1f} s")
    built = time.perf_counter() - started
    time.sleep(1)  # the engine switches to a copy right after it is renamed into place
    return built


def healthz_floor(base: str, requests: int = 200) -> float:
    with httpx.Client(base_url=base, timeout=30) as client:
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get("/healthz")
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# --- reporting ----------------------------------------------------------------------------------


def report(results: dict[str, dict[str, float]], facts: dict[str, Any]) -> str:
    lines = [
        f"#### Data API over HTTP beside its peers, {facts['rows']:,} rows × 7 columns, "
        f"median of {facts['runs']} (ms)",
        "",
        f"Load average {facts['load_before']:.1f} before and {facts['load_after']:.1f} after the run; "
        f"{os.cpu_count()} CPUs. Kaifang `/healthz` p50 {facts['healthz']:.1f} ms (its HTTP floor). "
        f"Setup: Parquet {facts['parquet_s']:.1f} s, SQLite {facts['sqlite_s']:.1f} s, "
        f"PostgreSQL {facts['postgres_s']:.1f} s; Kaifang's query and row copies (once per version, in "
        f"the background from the first query on) {facts['copy_s']:.1f} s. Peer indexes on (district) and "
        f"(district, category): {facts['peer_indexes']}.",
        "",
        f"| question | DuckDB | Datasette | {DATASTORE} | {BARE} | Kaifang HTTP | {UNCACHED} "
        "| Kaifang/DuckDB | faster than Datasette and the DataStore? | without the answer cache? |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for label, ms in results.items():
        ratio = ms[UNCACHED] / ms["DuckDB"]
        within = "" if ratio <= TARGET_RATIO else " (over 1.5×)"
        peers = min(ms["Datasette"], ms[DATASTORE])
        figures = " | ".join(f"{ms[n]:,.1f}" for n in SYSTEMS)
        verdicts = " | ".join(
            f"{'yes' if ms[n] < peers else 'no'} ({peers / ms[n]:.1f}×)" for n in ("Kaifang HTTP", UNCACHED)
        )
        lines.append(f"| {label} | {figures} | {ratio:.2f}×{within} | {verdicts} |")
    lines += [
        "",
        "Kaifang HTTP: the timed runs are answered from the answer cache (the warm-up asked each "
        f"question once); {UNCACHED}: a second server on the same home with KAIFANG_DATA_CACHE_MB=0, "
        "running every query, as the first time a question is asked. Kaifang/DuckDB is of the latter. "
        f"{DATASTORE}: the SQL CKAN's `datastore_search` runs for the same answer, the page and its "
        f"exact total (Kaifang's answers carry it too); {BARE}: the page's SQL alone, over psycopg "
        "with no HTTP layer, for reference.",
    ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def timed(what: str, action: Callable[[], Any]) -> float:
    log(f"{what} …")
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    log(f"  {seconds:.1f} s")
    return seconds


def run(args: argparse.Namespace, work: Path) -> str:
    home = Path(tempfile.mkdtemp(prefix="kaifang-http-bench-"))
    try:
        indexes = args.peer_indexes == "yes"
        # Datasette names the database after the file: keep it bench.db, one folder per index choice.
        parquet, sqlite_db = work / "table.parquet", work / ("indexed" if indexes else "plain") / "bench.db"
        sqlite_db.parent.mkdir(exist_ok=True)
        facts: dict[str, Any] = {
            "rows": args.rows,
            "runs": args.runs,
            "parquet_s": 0.0,
            "sqlite_s": 0.0,
            "peer_indexes": args.peer_indexes,
        }
        if not parquet.exists():
            facts["parquet_s"] = timed(
                f"writing {args.rows:,} rows as a version file",
                lambda: generate(parquet, args.rows, "ingest-delta"),
            )
        if not sqlite_db.exists():
            facts["sqlite_s"] = timed(
                "loading SQLite for Datasette", lambda: load_sqlite(sqlite_db, parquet, indexes)
            )
        rid, key, copies = publish_version(home, parquet)
        # The offset question goes past the default deepest offset (1,000,000); cursors have no limit.
        os.environ["KAIFANG_DATA_MAX_OFFSET"] = str(max(args.rows, 1_000_000))
        with ExitStack() as servers:
            started = time.perf_counter()
            log("loading PostgreSQL …")
            pg = servers.enter_context(postgres_peer(args.postgres, parquet, indexes))
            facts["postgres_s"] = time.perf_counter() - started
            datasette = servers.enter_context(datasette_server(sqlite_db))
            kaifang = servers.enter_context(running_server(home, ""))
            os.environ["KAIFANG_DATA_CACHE_MB"] = "0"
            try:
                uncached = servers.enter_context(running_server(home, ""))
            finally:
                del os.environ["KAIFANG_DATA_CACHE_MB"]
            systems = Systems(pg, datasette, kaifang, uncached, rid, key)
            try:
                qs = questions(parquet, args.rows)
                systems.find_cursors(qs)  # the first data request: the platform starts its query copy
                facts["copy_s"] = wait_for_copies(copies)
                facts["healthz"] = healthz_floor(kaifang)
                facts["load_before"] = os.getloadavg()[0]
                results = measure(systems, qs, args.runs)
                facts["load_after"] = os.getloadavg()[0]
            finally:
                systems.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return report(results, facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="table size (default 5,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of every question (default 5)")
    parser.add_argument("--output", type=Path, help="also write the markdown report to this file")
    parser.add_argument(
        "--postgres",
        default="postgresql://root@127.0.0.1:5432/postgres",
        help="PostgreSQL server to create the peer's temporary database on",
    )
    parser.add_argument(
        "--peer-indexes",
        choices=("yes", "no"),
        default="yes",
        help="yes: the peers get indexes on (district) and (district, category), as a careful publisher "
        "adds them; no: the tables as loaded by default (sqlite-utils, CKAN xloader), as DESIGN.md measured",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the Parquet file and the SQLite database here, and reuse them"
    )
    args = parser.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        output = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="kaifang-http-bench-data-") as work:
            output = run(args, Path(work))
    print(output)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(output + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
