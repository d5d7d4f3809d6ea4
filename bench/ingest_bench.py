"""How fast does the platform ingest an uploaded CSV, beside DuckDB's own CSV → Parquet?

Generates a hospitals-register CSV (8 columns: integer, Chinese text, an 18-character credit
code, integer, decimal, 是/否, date, datetime) in UTF-8 and in GBK, then times, per file, the
steps of the ingest job (`service.process_version`) one by one, and the same for the benchmark
table of DESIGN.md "Performance" (`table.py`, 7 columns; 5,000,000 rows are the "327 MB CSV",
here as DuckDB writes it):

- `read_table` (encoding detection, GBK transcoded by pyarrow as it reads, sniffing, pyarrow's
  CSV reader, trimming, blank-row checks);
- `infer_and_cast` (schema and typed table in one pass), and `infer_schema` + `cast_table`
  separately (the path after a provider edits the schema);
- `validate` (the report);
- writing the version's Parquet file with the job's own writer (zstd, dictionaries where values
  repeat, delta-encoded `_row`);

beside DuckDB's `COPY (SELECT * FROM read_csv_auto(...)) TO 'x.parquet'` on the same UTF-8 files
(DuckDB cannot read GBK without an extension downloaded at runtime), with the sizes of both
Parquet files. Runs are interleaved (ours, then DuckDB's) so that load on the shared machine hits
both alike; medians of `--runs`, seconds, and the ratio of the medians.

    .venv/bin/python bench/ingest_bench.py                 # 1,000,000 rows
    .venv/bin/python bench/ingest_bench.py --rows 5000000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from table import table_sql

from kaifang.datastore.infer import cast_table, infer_and_cast, infer_schema
from kaifang.datastore.reader import read_table
from kaifang.datastore.service import _write_parquet  # the ingest job's own writer
from kaifang.datastore.validate import validate

HEADER = "序号,机构名称,统一社会信用代码,床位数,面积,是否医保定点,成立日期,更新时间\n"
NAMES = [
    "海河市第一人民医院",
    "和平区社区卫生服务中心",
    "河西区中医医院",
    "南开区口腔诊所",
    "北辰区妇幼保健院",
]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A UTF-8 CSV of `rows` hospitals, written in blocks."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        for start in range(0, rows, 100_000):
            f.write("".join(_row(rng, i) for i in range(start, min(rows, start + 100_000))))


def _row(rng: random.Random, i: int) -> str:
    code = f"91120{rng.randint(10**11, 10**12 - 1)}{rng.choice('0123456789X')}"
    founded = f"{rng.randint(1950, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    updated = (
        f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{i % 60:02d}:00"
    )
    name = f"{rng.choice(NAMES)}{i % 97}号"
    beds, area, insured = rng.randint(0, 2000), rng.random() * 5000, "是" if i % 3 else "否"
    return f"{i + 1},{name},{code},{beds},{area:.2f},{insured},{founded},{updated}\n"


def to_gbk(source: Path, target: Path) -> None:
    with (
        source.open(encoding="utf-8", newline="") as src,
        target.open("w", encoding="gbk", newline="") as out,
    ):
        while chunk := src.read(8 << 20):
            out.write(chunk)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ingest_once(path: Path, workdir: Path) -> dict[str, float]:
    """One ingest of `path`, step by step, as the job runs it; seconds per step and sizes."""
    out = workdir / f"{path.stem}.parquet"
    read_s, raw = timed(lambda: read_table(path, filename=path.name))
    both_s, (schema, typed) = timed(lambda: infer_and_cast(raw.table, raw.source_headers))
    validate_s, _ = timed(lambda: validate(raw, schema, {}))
    write_s, _ = timed(lambda: _write_parquet(typed, out))
    infer_s, _ = timed(lambda: infer_schema(raw.table, raw.source_headers))
    cast_s, _ = timed(lambda: cast_table(raw.table, schema))
    print(
        f"  {path.name}: {raw.encoding}, {typed.num_rows:,} rows, types "
        + ", ".join(str(c.type) for c in schema),
        file=sys.stderr,
    )
    return {
        "read": read_s,
        "infer+cast": both_s,
        "validate": validate_s,
        "parquet": write_s,
        "total": read_s + both_s + validate_s + write_s,
        "infer": infer_s,
        "cast": cast_s,
        "mb": out.stat().st_size / 1e6,
    }


def duckdb_once(path: Path, workdir: Path) -> dict[str, float]:
    out = workdir / "duckdb.parquet"
    query = f"COPY (SELECT * FROM read_csv_auto('{path}')) TO '{out}' (FORMAT parquet)"
    seconds, _ = timed(lambda: duckdb.connect().execute(query))
    return {"total": seconds, "mb": out.stat().st_size / 1e6}


def write_table_csv(path: Path, rows: int) -> None:
    """The benchmark table of DESIGN.md "Performance" (`table.py`) as DuckDB writes it to CSV."""
    duckdb.connect().execute(f"COPY (SELECT * EXCLUDE (_row) FROM ({table_sql(rows)})) TO '{path}' (HEADER)")


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        utf8, gbk = workdir / "hospitals-utf8.csv", workdir / "hospitals-gbk.csv"
        table = workdir / "table-utf8.csv"
        start = time.perf_counter()
        generate(utf8, args.rows)
        to_gbk(utf8, gbk)
        write_table_csv(table, args.rows)
        print(f"generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        load = os.getloadavg()[0]
        ours: dict[Path, list[dict[str, float]]] = {utf8: [], gbk: [], table: []}
        theirs: dict[Path, list[dict[str, float]]] = {utf8: [], table: []}
        for _ in range(args.runs):
            for path in ours:
                ours[path].append(ingest_once(path, workdir))
                if path in theirs:
                    theirs[path].append(duckdb_once(path, workdir))
        results = {path: medians(runs) for path, runs in ours.items()}
        floors = {path: medians(runs) for path, runs in theirs.items()}
        report(args, results, floors, (load, os.getloadavg()[0]))


def report(
    args: argparse.Namespace,
    results: dict[Path, dict[str, float]],
    floors: dict[Path, dict[str, float]],
    loads: tuple[float, float],
) -> None:
    print(
        f"Ingest, {args.rows:,} rows (hospitals: 8 columns; table: the 7 columns of `table.py`), "
        f"median of {args.runs} interleaved runs, seconds "
        f"({os.cpu_count()} CPUs, load average {loads[0]:.1f} before, {loads[1]:.1f} after):\n"
    )
    print(
        "| file | CSV MB | read_table | infer_and_cast | validate | Parquet | whole ingest | "
        "Parquet MB | infer_schema / cast_table | DuckDB CSV→Parquet | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path, r in results.items():
        floor = floors.get(path)
        duck = f"{floor['total']:.2f} ({floor['mb']:.0f} MB)" if floor else "n/a (GBK)"
        ratio = f"{r['total'] / floor['total']:.2f}×" if floor else "—"
        print(
            f"| {path.name} | {path.stat().st_size / 1e6:.0f} | {r['read']:.2f} | {r['infer+cast']:.2f} | "
            f"{r['validate']:.2f} | {r['parquet']:.2f} | {r['total']:.2f} | {r['mb']:.0f} | "
            f"{r['infer']:.2f} / {r['cast']:.2f} | {duck} | {ratio} |"
        )


if __name__ == "__main__":
    main()
