"""The benchmark table of DESIGN.md "Performance": N rows × 7 columns, the same in every bench.

`table_sql` is the one definition of the rows (deterministic: DuckDB's `hash` of the row number),
so the Parquet version file, the SQLite database behind Datasette and the PostgreSQL table of a
benchmark hold exactly the same data. `_row` (0..n-1) is the platform's hidden row column.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from kaifang.datastore.types import Column, ColumnType

DISTRICTS = [
    "东城区", "西城区", "朝阳区", "海淀区", "丰台区", "石景山区", "门头沟区", "房山区",
    "通州区", "顺义区", "昌平区", "大兴区", "怀柔区", "平谷区", "密云区", "延庆区",
]  # fmt: skip
SCHEMA = [
    Column("id", ColumnType.integer),
    Column("district", ColumnType.text),
    Column("category", ColumnType.text),
    Column("amount", ColumnType.decimal),
    Column("count", ColumnType.integer),
    Column("day", ColumnType.date),
    Column("name", ColumnType.text),
]
WRITERS = ("duckdb", "ingest", "ingest-delta")


def table_sql(rows: int) -> str:
    """The rows, `_row` first, in file order: a SELECT for DuckDB."""
    districts = "[" + ", ".join(f"'{d}'" for d in DISTRICTS) + "]"
    return f"""
        SELECT range AS _row,
               range + 1 AS id,
               {districts}[(1 + hash(range) % 16)::BIGINT] AS district,
               '类别' || lpad((hash(range * 7 + 1) % 50)::VARCHAR, 2, '0') AS category,
               round((hash(range * 13 + 5) % 1000000)::BIGINT / 100.0, 2)::DOUBLE AS amount,
               (hash(range * 17 + 3) % 1000)::BIGINT AS count,
               DATE '2020-01-01' + (hash(range * 19 + 11) % 1827)::INTEGER AS day,
               '名称' || (hash(range * 23 + 7) % 100000)::VARCHAR AS name
        FROM range({rows})
    """


def generate(path: Path, rows: int, writer: str) -> float:
    """The benchmark table in file (= `_row`) order; seconds taken.

    `duckdb`: DuckDB's own Parquet writer (row groups of 122,880 rows). `ingest`: pyarrow with
    zstd and dictionaries (row groups of 1,048,576 rows). `ingest-delta`: the same with `_row`
    delta-encoded — exactly what the ingest job writes for a published version.
    """
    started = time.perf_counter()
    con = duckdb.connect()
    if writer == "duckdb":
        con.execute(f"COPY ({table_sql(rows)}) TO '{path}' (FORMAT parquet)")
        return time.perf_counter() - started
    reader = con.sql(table_sql(rows)).to_arrow_reader(1 << 20)
    options: dict[str, Any] = {"compression": "zstd"}
    if writer == "ingest-delta":
        names = reader.schema.names
        options |= {"use_dictionary": names[1:], "column_encoding": {names[0]: "DELTA_BINARY_PACKED"}}
    with pq.ParquetWriter(path, reader.schema, **options) as out:
        for batch in reader:
            out.write_batch(batch)
    return time.perf_counter() - started
