"""Data API query engine benchmark: the five questions of DESIGN.md on a generated Parquet table.

    .venv/bin/python bench/query_bench.py                    # 5,000,000 rows, the five questions
    .venv/bin/python bench/query_bench.py --export           # also: whole-table CSV export speed/RSS
    .venv/bin/python bench/query_bench.py --rows 500000 --keep /tmp/t.parquet

Writes the table of `table.py` (hidden `_row` first, then id, district, category, amount,
count, day, name) as a Parquet file, then times each question as raw DuckDB SQL on the same file
(the floor) and through `QueryEngine.run` (what the data API calls, query parsing included),
median of N runs, interleaved so that load on the machine hits both alike. "cold" builds a new
engine for every run, so totals are counted every time; "warm" reuses one engine, whose totals
for a filter set are cached (one file per version never changes). With `--export` a child
process streams the whole table as CSV (`QueryEngine.batches` → `csv_chunks`) and reports MB/s
and its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from table import SCHEMA, WRITERS, generate

from kaifang.datastore.export import csv_chunks
from kaifang.datastore.query import DataQuery, QueryEngine, parse_query


def questions(path: Path, rows: int) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(label, raw DuckDB SQL, data API parameters) for the five questions."""
    src = f"read_parquet('{path}')"
    page = 40_000 if rows >= 4_000_000 else max(1, rows * 8 // 1000)
    return [
        (
            "equality filter, first 100 rows",
            f"SELECT * EXCLUDE (_row) FROM {src} WHERE district = '海淀区' LIMIT 100",
            {"district": ["海淀区"], "limit": ["100"]},
        ),
        (
            "count with two filters",
            f"SELECT count(*) FROM {src} WHERE district = '海淀区' AND category = '类别07'",
            {"district": ["海淀区"], "category": ["类别07"], "limit": ["0"]},
        ),
        (
            "range filter, sort, top 100",
            f"SELECT * EXCLUDE (_row) FROM {src} WHERE amount >= 1000 AND amount <= 2000 "
            "ORDER BY amount DESC LIMIT 100",
            {"amount__gte": ["1000"], "amount__lte": ["2000"], "sort": ["-amount"], "limit": ["100"]},
        ),
        (
            "group by, 3 aggregates",
            f"SELECT district, count(*), sum(amount), avg(count) FROM {src} GROUP BY district",
            {"group_by": ["district"], "agg": ["count,sum:amount,avg:count"]},
        ),
        (
            f"page {page:,} of 100 rows (cursor)",
            f"SELECT * EXCLUDE (_row) FROM {src} LIMIT 100 OFFSET {(page - 1) * 100}",
            {"limit": ["100"], "cursor": [_cursor_before(path, (page - 1) * 100)]},
        ),
    ]


def _cursor_before(path: Path, offset: int) -> str:
    """The `next` a client holds after walking to row `offset` (the previous page's cursor)."""
    result = QueryEngine(path, SCHEMA).run(DataQuery(limit=100, offset=offset - 100))
    assert result.next is not None
    return result.next


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _raw(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()


def _cold(path: Path, params: Any) -> Any:
    return QueryEngine(path, SCHEMA).run(parse_query(params, SCHEMA))


def _warm(engine: QueryEngine, params: Any) -> Any:
    return engine.run(parse_query(params, SCHEMA))


def measure(path: Path, rows: int, repeat: int) -> list[dict[str, Any]]:
    raw = duckdb.connect()
    warm = QueryEngine(path, SCHEMA)
    results = []
    for label, sql, params in questions(path, rows):
        runs: dict[str, Callable[[], Any]] = {
            "raw": partial(_raw, raw, sql),
            "cold": partial(_cold, path, params),
            "warm": partial(_warm, warm, params),
        }
        samples: dict[str, list[float]] = {name: [] for name in runs}
        answers = {name: run() for name, run in runs.items()}  # warm-up, and the answers to check
        for _ in range(repeat):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - started)
        check(label, answers["raw"], answers["cold"])
        results.append({"question": label, "total": answers["cold"].total} | {
            name: median_ms(times) for name, times in samples.items()
        })  # fmt: skip
    return results


def check(label: str, raw: list[tuple[Any, ...]], result: Any) -> None:
    """The engine must give the floor's answer, not merely be as fast."""
    if label.startswith("count"):
        assert result.total == raw[0][0], (label, result.total, raw)
    elif label.startswith("group"):
        assert sorted(r["count"] for r in result.records) == sorted(r[1] for r in raw), label
    elif label.startswith("range"):
        assert [r["amount"] for r in result.records] == [r[3] for r in raw], label
    else:
        assert [r["id"] for r in result.records] == [r[0] for r in raw], label


def export_child(path: Path) -> None:
    """Stream the whole table as CSV (with BOM) to /dev/null; print bytes, seconds, peak RSS."""
    engine = QueryEngine(path, SCHEMA)
    started = time.perf_counter()
    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in csv_chunks(engine.batches(DataQuery()), bom=True):
            size += len(chunk)
            sink.write(chunk)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"bytes": size, "seconds": seconds, "peak_rss_mb": peak_mb}))


def export(path: Path, rows: int) -> None:
    out = subprocess.run(
        [sys.executable, __file__, "--export-child", str(path)], check=True, capture_output=True, text=True
    )
    figures = json.loads(out.stdout)
    rate = figures["bytes"] / 1e6 / figures["seconds"]
    print(f"\n#### Whole-table CSV export, {rows:,} rows\n")
    print("| measure | value | target |\n|---|---:|---|")
    print(f"| CSV size | {figures['bytes'] / 1e6:,.0f} MB | — |")
    print(f"| time | {figures['seconds']:.2f} s | — |")
    print(f"| throughput | {rate:,.0f} MB/s | ≥ 100 MB/s ({'met' if rate >= 100 else 'missed'}) |")
    peak = figures["peak_rss_mb"]
    verdict = "met" if peak < 500 else "missed"
    print(f"| peak RSS of the exporting process | {peak:,.0f} MB | < 500 MB ({verdict}) |")


def report(results: list[dict[str, Any]], rows: int, repeat: int, generated: float, writer: str) -> None:
    load = os.getloadavg()[0]
    print(f"#### Data API query engine, {rows:,} rows × 7 columns, median of {repeat} (ms)\n")
    made = f"written by the {writer} writer in {generated:.1f} s" if generated else "reused (--keep)"
    print(f"Table {made}; load average {load:.1f}; {os.cpu_count()} CPUs.\n")
    print("| question | raw DuckDB | engine, cold | ratio | engine, warm totals | ratio | total |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['question']} | {r['raw']:.1f} | {r['cold']:.1f} | {r['cold'] / r['raw']:.2f}× "
            f"| {r['warm']:.1f} | {r['warm'] / r['raw']:.2f}× | {r['total']:,} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--writer", choices=WRITERS, default="duckdb")
    parser.add_argument("--keep", type=Path, help="write the table here and keep it (reused if it exists)")
    parser.add_argument("--export", action="store_true", help="also measure a whole-table CSV export")
    parser.add_argument("--export-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child)
        return
    with tempfile.TemporaryDirectory(prefix="kaifang-query-bench-") as scratch:
        path = args.keep or Path(scratch) / "table.parquet"
        generated = 0.0 if path.exists() else generate(path, args.rows, args.writer)
        rows = QueryEngine(path, SCHEMA).row_count
        report(measure(path, rows, args.repeat), rows, args.repeat, generated, args.writer)
        if args.export:
            export(path, rows)


if __name__ == "__main__":
    main()
