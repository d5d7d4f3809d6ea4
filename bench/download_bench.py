"""Downloads over HTTP: MB/s and the server's peak memory, per format, whole table and filtered.

    .venv/bin/pip install -e '.[bench]'                    # httpx (the server check), duckdb
    .venv/bin/python bench/download_bench.py               # the demo's 1M-row table and a 5M-row one
    .venv/bin/python bench/download_bench.py --rows 0 --runs 5 --output /tmp/download.md

What it does, on a temporary KAIFANG_HOME (SQLite metadata):

1. Loads the demo catalog and uploads two tables through the real ingest job
   (`service.process_version`, timed) into the published entry 空气质量实时监测数据, then
   publishes them: the demo's hourly air quality (1,051,200 rows × 11 columns, the CSV the demo
   loads) and, unless `--rows 0`, the benchmark table of `table.py` (`--rows`, default
   5,000,000, 7 columns) written as CSV by DuckDB.
2. Starts `kaifang serve` as a subprocess (as `search_bench.py` does) and downloads with curl to
   /dev/null, anonymously (the entry is 无条件开放), `--runs` times each: CSV, CSV with BOM,
   JSON, Parquet of the whole table; a filtered CSV (one district); XLSX of one district (a
   whole table is over Excel's row limit). The first run of a whole-table CSV or Parquet builds
   the version's cached file; the later runs are served from it: both are reported.
   Before measuring, each table is asked once and the run waits for the query copies the
   platform builds in the background for large published versions (`engines.py`): the steady
   state, and no copy being built during a measurement.
3. Before each download the server's peak RSS is reset (`/proc/PID/clear_refs`), after it the
   peak (`VmHWM`) is read: the server's memory high-water mark during that download, shown with
   its resident memory just before.

Client and server share the machine (curl takes little CPU); the load average is printed with
the figures. Report to standard output (and `--output`), progress to standard error.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from search_bench import running_server
from sqlalchemy import select
from table import table_sql

from kaifang.accounts.models import User
from kaifang.accounts.service import actor_for
from kaifang.app import Platform, build_platform, prepare_database
from kaifang.catalog.models import Entry
from kaifang.datastore import service
from kaifang.datastore.models import ResourceVersion, VersionStatus
from kaifang.demo.datasets import write_air_quality
from kaifang.demo.seed import seed
from kaifang.desensitize import service as desensitize
from kaifang.settings import load_settings

ENTRY = "空气质量实时监测数据"


@dataclass
class Table:
    name: str
    filename: str
    write: Callable[[Path], object]
    district: tuple[str, str]  # (column, value) for the filtered downloads
    resource_id: int = 0
    rows: int = 0
    ingest_s: float = 0.0


@dataclass
class Download:
    table: str
    label: str
    params: dict[str, str]
    seconds: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    peaks_mb: list[float] = field(default_factory=list)
    before_mb: list[float] = field(default_factory=list)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_bench_csv(rows: int) -> Callable[[Path], object]:
    def write(path: Path) -> None:
        sql = f"SELECT * EXCLUDE (_row) FROM ({table_sql(rows)})"
        duckdb.connect().execute(f"COPY ({sql}) TO '{path}' (FORMAT csv, HEADER)")

    return write


def ingest(platform: Platform, table: Table, tmp: Path) -> None:
    """Upload, read (timed) and publish one table, as a provider would."""
    path = tmp / table.filename
    table.write(path)
    key = f"staging/{secrets.token_hex(16)}"
    size, digest = platform.store.put_file(key, path)
    with platform.db.session() as db:
        entry = db.scalars(select(Entry).where(Entry.title == ENTRY)).one()
        actor = actor_for(db, db.get_one(User, entry.created_by))
        upload = service.Upload(filename=table.filename, staged_key=key, size=size, sha256=digest)
        resource, version = service.add_resource(db, actor, entry.id, upload, name=table.name)
        table.resource_id, version_id = resource.id, version.id
    started = time.perf_counter()
    service.process_version(platform.db, platform.store, version_id)
    table.ingest_s = time.perf_counter() - started
    with platform.db.session() as db:
        version = db.get_one(ResourceVersion, version_id)
        if version.status != VersionStatus.review or version.report.get("fatal"):
            raise SystemExit(f"{table.filename} was not read: {version.report}")
        store, settings = platform.store, platform.settings
        vouched = desensitize.Vouched("基准测试数据")
        desensitize.pass_review(db, actor, store, settings, table.resource_id, version.number, vouched)
        service.publish_version(db, actor, table.resource_id, version.number, store=store, settings=settings)
        table.rows = version.row_count
    log(f"  {table.name}: {table.rows:,} rows, ingest {table.ingest_s:.1f} s ({size / 1e6:,.0f} MB CSV)")


def prepare(home: Path, tables: list[Table]) -> None:
    settings = load_settings(mode="dev", home=home, database_url="")
    platform = build_platform(settings)
    prepare_database(platform)
    with platform.db.session() as db:
        seed(db)
    with tempfile.TemporaryDirectory(dir=platform.store.path("tmp").parent, prefix=".bench-") as tmp:
        for table in tables:
            ingest(platform, table, Path(tmp))
    platform.db.dispose()


def downloads(tables: list[Table]) -> list[Download]:
    plans = []
    for t in tables:
        column, value = t.district
        plans += [
            Download(t.name, "CSV, whole table", {"format": "csv"}),
            Download(t.name, "CSV with BOM, whole table", {"format": "csv", "bom": "true"}),
            Download(t.name, "JSON, whole table", {"format": "json"}),
            Download(t.name, "Parquet, whole table", {"format": "parquet"}),
            Download(t.name, f"CSV, {column}={value}", {"format": "csv", column: value}),
            Download(t.name, f"XLSX, {column}={value}", {"format": "xlsx", column: value}),
        ]
    return plans


def peak_reset(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def memory_mb(pid: int, field: str) -> float:
    """`VmHWM` (peak resident memory since the last reset) or `VmRSS` (now) of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_pid(base: str) -> int:
    port = base.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True)
    return int(out.stdout.split("pid=")[1].split(",")[0])


def fetch(url: str) -> tuple[int, float]:
    """(bytes, seconds) of one download to /dev/null with curl."""
    out = subprocess.run(
        ["curl", "-sS", "-o", os.devnull, "-w", "%{http_code} %{size_download} %{time_total}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if out[0] != "200":
        raise SystemExit(f"GET {url} answered {out[0]}")
    return int(out[1]), float(out[2])


def warm_up(base: str, home: Path, tables: list[Table]) -> None:
    """Ask each table once (a selection of nothing), and wait for the query copies that the
    platform builds in the background for large published versions: measure the steady state."""
    for t in tables:
        column, _value = t.district
        fetch(f"{base}/api/v1/resources/{t.resource_id}/download?{urllib.parse.urlencode({column: '无'})}")
    copies = load_settings(mode="dev", home=home, database_url="").files_dir / "query-copies"
    deadline = time.monotonic() + 300
    while len(list(copies.glob("*.duckdb"))) < len(tables) and time.monotonic() < deadline:
        time.sleep(0.5)
    log(f"  query copies ready: {len(list(copies.glob('*.duckdb')))} of {len(tables)}")


def measure(base: str, pid: int, tables: list[Table], runs: int) -> list[Download]:
    ids = {t.name: t.resource_id for t in tables}
    plans = downloads(tables)
    for run in range(runs):
        for d in plans:
            url = f"{base}/api/v1/resources/{ids[d.table]}/download?{urllib.parse.urlencode(d.params)}"
            d.before_mb.append(memory_mb(pid, "VmRSS"))
            peak_reset(pid)
            size, seconds = fetch(url)
            d.sizes.append(size)
            d.seconds.append(seconds)
            d.peaks_mb.append(memory_mb(pid, "VmHWM"))
            log(f"  run {run + 1}: {d.table} · {d.label}: {size / 1e6:,.1f} MB in {seconds:.2f} s")
    return plans


def report(tables: list[Table], plans: list[Download], runs: int, loads: tuple[float, float]) -> str:
    lines = [
        f"Downloads over HTTP (`kaifang serve`, curl to /dev/null), {runs} runs each "
        f"({os.cpu_count()} CPUs, load average {loads[0]:.1f} before, {loads[1]:.1f} after).",
        "",
        "| table | rows | ingest (process_version) |",
        "|---|---:|---:|",
        *[f"| {t.name} | {t.rows:,} | {t.ingest_s:.1f} s |" for t in tables],
        "",
        "| table | download | MB | first run MB/s | later runs MB/s (median) | server RSS before "
        "→ peak, first run | later runs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for d in plans:
        rates = [size / 1e6 / s for size, s in zip(d.sizes, d.seconds, strict=True)]
        later = f"{statistics.median(rates[1:]):,.0f}" if len(rates) > 1 else "—"
        later_memory = (
            f"{min(d.before_mb[1:]):,.0f} → {max(d.peaks_mb[1:]):,.0f} MB" if len(rates) > 1 else "—"
        )
        lines.append(
            f"| {d.table} | {d.label} | {d.sizes[0] / 1e6:,.1f} | {rates[0]:,.0f} | {later} | "
            f"{d.before_mb[0]:,.0f} → {d.peaks_mb[0]:,.0f} MB | {later_memory} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="benchmark table rows; 0 to skip it")
    parser.add_argument("--runs", type=int, default=3, help="downloads of each kind (default 3)")
    parser.add_argument("--output", type=Path, help="also write the markdown report to this file")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None or shutil.which("ss") is None:
        raise SystemExit("needs curl and ss (iproute2)")
    tables = [Table("空气质量小时数据", "空气质量小时数据.csv", write_air_quality, ("区", "中河区"))]
    if args.rows:
        tables.append(
            Table(f"基准表{args.rows:,}行", "bench.csv", write_bench_csv(args.rows), ("district", "海淀区"))
        )
    home = Path(tempfile.mkdtemp(prefix="kaifang-download-bench-"))
    try:
        log("loading the demo catalog and ingesting …")
        prepare(home, tables)
        with running_server(home, "") as base:
            warm_up(base, home, tables)
            before = os.getloadavg()[0]
            plans = measure(base, server_pid(base), tables, args.runs)
            output = report(tables, plans, args.runs, (before, os.getloadavg()[0]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(output)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(output + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
