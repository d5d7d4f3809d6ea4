"""How fast does the platform read an uploaded CSV, infer its schema and cast it?

Generates a hospitals-register CSV (8 columns: integer, Chinese text, an 18-character credit
code, integer, decimal, 是/否, date, datetime) in UTF-8 and in GBK, then times, per file:

- `read_table` (encoding detection or GBK → UTF-8 transcoding, sniffing, pyarrow CSV read,
  trimming, blank-row checks);
- `infer_and_cast` (the ingest path: schema and typed table in one pass), and `infer_schema`
  + `cast_table` separately (the path after a provider edits the schema);
- writing the typed table to Parquet (pyarrow, zstd), to show a whole ingest;

beside DuckDB's own `COPY (SELECT * FROM read_csv_auto(...)) TO 'x.parquet'` on the same
UTF-8 file (DuckDB cannot read GBK without an extension downloaded at runtime). Medians of
`--runs` runs, seconds.

    .venv/bin/python bench/ingest_bench.py                 # 1,000,000 rows
    .venv/bin/python bench/ingest_bench.py --rows 5000000 --runs 1
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
import pyarrow.parquet as pq

from kaifang.datastore.infer import cast_table, infer_and_cast, infer_schema
from kaifang.datastore.reader import read_table

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


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(path: Path, runs: int, workdir: Path) -> dict[str, float]:
    read_s, raw = timed(lambda: read_table(path, filename=path.name), runs)
    both_s, (schema, typed) = timed(lambda: infer_and_cast(raw.table, raw.source_headers), runs)
    infer_s, _ = timed(lambda: infer_schema(raw.table, raw.source_headers), runs)
    cast_s, _ = timed(lambda: cast_table(raw.table, schema), runs)
    out = workdir / f"{path.stem}.parquet"
    write_s, _ = timed(lambda: pq.write_table(typed, out, compression="zstd"), runs)
    print(
        f"  {path.name}: {raw.encoding}, {typed.num_rows:,} rows, types "
        + ", ".join(str(c.type) for c in schema),
        file=sys.stderr,
    )
    return {"read": read_s, "infer+cast": both_s, "infer": infer_s, "cast": cast_s, "parquet": write_s}


def duckdb_floor(path: Path, runs: int, workdir: Path) -> float:
    out = workdir / "duckdb.parquet"
    query = f"COPY (SELECT * FROM read_csv_auto('{path}')) TO '{out}' (FORMAT parquet)"
    return timed(lambda: duckdb.connect().execute(query), runs)[0]


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
        start = time.perf_counter()
        generate(utf8, args.rows)
        to_gbk(utf8, gbk)
        print(f"generated in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        results = {p: measure(p, args.runs, workdir) for p in (utf8, gbk)}
        floor = duckdb_floor(utf8, args.runs, workdir)
        report(args, results, floor, os.getloadavg()[0])


def report(
    args: argparse.Namespace, results: dict[Path, dict[str, float]], floor: float, load: float
) -> None:
    print(
        f"Ingest, {args.rows:,} rows × 8 columns, median of {args.runs}, seconds "
        f"({os.cpu_count()} CPUs, load average {load:.1f}):\n"
    )
    print(
        "| file | MB | read_table | infer_and_cast | read + infer + cast | + Parquet (zstd) | "
        "infer_schema / cast_table | DuckDB CSV→Parquet |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path, r in results.items():
        total = r["read"] + r["infer+cast"]
        duck = f"{floor:.2f}" if "utf8" in path.name else "n/a (GBK)"
        print(
            f"| {path.name} | {path.stat().st_size / 1e6:.0f} | {r['read']:.2f} | {r['infer+cast']:.2f} | "
            f"{total:.2f} | {total + r['parquet']:.2f} | {r['infer']:.2f} / {r['cast']:.2f} | {duck} |"
        )


if __name__ == "__main__":
    main()
