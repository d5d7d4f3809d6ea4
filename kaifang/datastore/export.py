"""Downloads of a query: CSV, JSON, XLSX and Parquet, written batch by batch in constant memory.

Every writer takes an iterator of Arrow record batches (`QueryEngine.batches`), so a whole
5,000,000-row table never sits in memory. Text cells that a spreadsheet would run as a formula
(starting with `=`, `+`, `-`, `@`, tab or carriage return) are neutralised in CSV with a leading
`'`; in XLSX they are stored as strings with Excel's quote prefix, so they show and stay as text.
Numbers are never touched: `-5` in a numeric column is a number.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote as percent_encode

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from kaifang.datastore.types import ARROW_TYPES, Column
from kaifang.errors import InvalidInput

ROW = "_row"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_576  # Excel's sheet limit, header row included
XLSX_MAX_DATA_ROWS = XLSX_MAX_ROWS - 1
_FORMULA_RE = r"^[=+\-@\t\r]"
_BOM = "\ufeff".encode()
_EXACT_IN_EXCEL = 10**15  # Excel keeps 15 significant digits; larger integers are written as text


def citation(provider: str, entry_title: str, version: int, platform: str, url: str, date: str) -> str:
    """The source line a user must cite (Art. 24), in Chinese."""
    return f"数据来源：{provider}《{entry_title}》第{version}版，{platform}，{url}，下载日期：{date}"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real (Chinese) name per RFC 5987/6266."""
    name = re.sub(r'[\x00-\x1f\x7f"\\/]', "_", filename).strip() or "download"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    fallback_ext = re.sub(r"[^A-Za-z0-9]", "", ext)
    fallback_stem = re.sub(r"[^A-Za-z0-9.-]+", "_", stem).strip("_.")
    if not re.search(r"[A-Za-z0-9]", fallback_stem):
        fallback_stem = "download"
    fallback = fallback_stem + (f".{fallback_ext}" if fallback_ext else "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{percent_encode(name, safe='')}"


# ---------------------------------------------------------------- shared cell preparation


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _neutral(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _finite(values: pa.Array) -> pa.Array:
    """NaN and ±inf become nulls: no format here can carry them faithfully."""
    return pc.if_else(pc.is_finite(values), values, pa.scalar(None, values.type))


def _plain(batch: pa.RecordBatch, timestamp_format: str) -> pa.RecordBatch:
    """The batch without `_row`, timestamps as text in `timestamp_format`, non-finite floats as null."""
    names, arrays = [], []
    for name, values in zip(batch.schema.names, batch.columns, strict=True):
        if name == ROW:
            continue
        if pa.types.is_timestamp(values.type):
            values = pc.strftime(values.cast(pa.timestamp("s"), safe=False), format=timestamp_format)
        elif pa.types.is_floating(values.type):
            values = _finite(values)
        names.append(name)
        arrays.append(values)
    return pa.RecordBatch.from_arrays(arrays, names=names)


# ---------------------------------------------------------------- CSV


def _neutralised(values: pa.Array) -> pa.Array:
    # Matching is several times cheaper than replacing, and most batches have nothing to replace.
    risky = pc.match_substring_regex(values, pattern=_FORMULA_RE)
    if not pc.any(risky).as_py():
        return values
    return pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)


def _csv_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    batch = _plain(batch, "%Y-%m-%d %H:%M:%S")
    arrays = [_neutralised(v) if _is_text(v.type) else v for v in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=[_neutral(n) for n in batch.schema.names])


def csv_chunks(batches: Iterable[pa.RecordBatch], *, bom: bool) -> Iterator[bytes]:
    """UTF-8 CSV (RFC 4180 quoting, CRLF, a header row), one chunk per batch; `bom` for Excel."""
    if bom:
        yield _BOM
    header = True
    for batch in batches:
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(include_header=header, eol="\r\n")
        pacsv.write_csv(_csv_ready(batch), sink, options)
        header = False
        yield sink.getvalue().to_pybytes()


# ---------------------------------------------------------------- JSON


def _json_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    batch = _plain(batch, "%Y-%m-%dT%H:%M:%S")
    arrays = [
        values.cast(pa.string()) if pa.types.is_date(values.type) else values for values in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def json_chunks(
    batches: Iterable[pa.RecordBatch], fields: list[dict[str, str]], citation: str
) -> Iterator[bytes]:
    """One JSON object, streamed: `{"source": citation, "fields": [...], "records": [...]}`."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    yield f'{{"source":{dump(citation)},"fields":{dump(fields)},"records":['.encode()
    separator = ""
    for batch in batches:
        if batch.num_rows:
            yield (separator + dump(_json_ready(batch).to_pylist())[1:-1]).encode()
            separator = ","
    yield b"]}"


# ---------------------------------------------------------------- XLSX


def _too_many_rows() -> InvalidInput:
    return InvalidInput(
        f"XLSX 每个工作表最多 {XLSX_MAX_ROWS:,} 行（含表头），本次导出的数据超过了这个限制。"
        "请缩小筛选范围，或改用 CSV 或 Parquet 格式下载。",
        fields={"format": "行数超过 XLSX 上限"},
    )


def _cell_writer(kind: pa.DataType, workbook: Any, sheet: Worksheet) -> Callable[[int, int, Any], Any]:
    """How one column's non-null cells are written, chosen once per column from its Arrow type."""
    if _is_text(kind):
        text_format = workbook.add_format({"quote_prefix": True})

        def write_text(row: int, col: int, value: str) -> Any:
            if value.startswith(FORMULA_STARTS):  # a string, shown and kept as text when edited
                return sheet.write_string(row, col, value, text_format)
            return sheet.write_string(row, col, value)

        return write_text
    if pa.types.is_integer(kind):
        return lambda r, c, v: (
            sheet.write_number(r, c, v) if abs(v) < _EXACT_IN_EXCEL else sheet.write_string(r, c, str(v))
        )
    if pa.types.is_floating(kind):
        return lambda r, c, v: sheet.write_number(r, c, v) if math.isfinite(v) else None
    if pa.types.is_boolean(kind):
        return sheet.write_boolean
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        shape = "yyyy-mm-dd" if pa.types.is_date(kind) else "yyyy-mm-dd hh:mm:ss"
        date_format = workbook.add_format({"num_format": shape})
        return lambda r, c, v: sheet.write_datetime(r, c, v, date_format)
    return lambda r, c, v: sheet.write_string(r, c, str(v))


def _write_rows(sheet: Worksheet, workbook: Any, batches: Iterable[pa.RecordBatch], first_row: int) -> None:
    row = first_row
    writers: list[Callable[[int, int, Any], Any]] | None = None
    for batch in batches:
        batch = batch.drop_columns([ROW]) if ROW in batch.schema.names else batch
        if row + batch.num_rows > XLSX_MAX_ROWS:
            raise _too_many_rows()
        if writers is None:
            writers = [_cell_writer(values.type, workbook, sheet) for values in batch.columns]
        columns = [values.to_pylist() for values in batch.columns]
        for values in zip(*columns, strict=True):
            for col, (value, write) in enumerate(zip(values, writers, strict=True)):
                if value is not None:
                    write(row, col, value)
            row += 1


def xlsx_file(
    batches: Iterable[pa.RecordBatch], fields: list[dict[str, str]], citation: str, path: Path
) -> None:
    """An XLSX workbook: sheet 数据 (bold header, the rows) and sheet 数据来源 (the citation).

    More rows than a sheet holds raises InvalidInput (suggesting CSV or Parquet) and leaves no file.
    """
    options = {
        "constant_memory": True,  # rows are flushed as written: memory stays flat
        "strings_to_formulas": False,
        "strings_to_numbers": False,
        "strings_to_urls": False,
    }
    workbook = xlsxwriter.Workbook(str(path), options)
    try:
        sheet = workbook.add_worksheet("数据")
        sheet.write_row(0, 0, [f["name"] for f in fields], workbook.add_format({"bold": True}))
        _write_rows(sheet, workbook, batches, first_row=1)
        source = workbook.add_worksheet("数据来源")
        for number, line in enumerate(citation.splitlines() or [""]):
            source.write_string(number, 0, line)
        workbook.close()
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise


# ---------------------------------------------------------------- Parquet


def _arrow_schema(schema: list[Column]) -> pa.Schema:
    def describe(column: Column) -> dict[str, str] | None:
        notes = {"description": column.description, "unit": column.unit}
        return {key: value for key, value in notes.items() if value} or None

    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], metadata=describe(c)) for c in schema if c.name != ROW]
    )


def _conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    arrays = [
        # Stored datetimes are whole seconds; DuckDB hands them back in microseconds.
        batch.column(f.name).cast(f.type, safe=not pa.types.is_timestamp(f.type))
        for f in target
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def parquet_file(batches: Iterable[pa.RecordBatch], schema: list[Column], path: Path) -> None:
    """A Parquet file of the batches with the columns and types of `schema`, never `_row`."""
    target = _arrow_schema(schema)
    with pq.ParquetWriter(str(path), target, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(_conform(batch, target))
