"""Downloads of a query: CSV, JSON, XLSX and Parquet, written batch by batch in constant memory.

Every writer takes an iterator of Arrow record batches (`QueryEngine.batches`), so a whole
5,000,000-row table never sits in memory. CSV and JSON text is made by Arrow kernels a batch
at a time, a few batches side by side in worker threads. Text cells that a spreadsheet would run
as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) are neutralised in CSV
with a leading `'`; in XLSX they are stored as strings with Excel's quote prefix, so they show
and stay as text. Numbers are never touched: `-5` in a numeric column is a number.

The whole-table CSV and Parquet files of a published version are the same bytes for everyone
(the citation travels in a header) and the version never changes: they are kept in the store
(`export_key`) and sent as files after the first download builds them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote as percent_encode

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import ARROW_TYPES, Column
from kaifang.errors import InvalidInput

log = logging.getLogger("kaifang.datastore")

ROW = "_row"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_576  # Excel's sheet limit, header row included
XLSX_MAX_DATA_ROWS = XLSX_MAX_ROWS - 1
_FORMULA_RE = r"^[=+\-@\t\r]"
BOM = "\ufeff".encode()
_EXACT_IN_EXCEL = 10**15  # Excel keeps 15 significant digits; larger integers are written as text
STREAM_BATCH_ROWS = 32_768  # rows per chunk of a CSV or JSON download: 1–4 MB of text
FORMAT_AHEAD = 2  # batches formatted ahead of the one being sent
# Shared by every download of the process: formatting is CPU work, so more threads than cores
# would only take turns.
_FORMATTERS = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="export")


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


def _seconds_text(values: pa.Array, separator: str) -> pa.Array:
    """Timestamps as `YYYY-MM-DD HH:MM:SS` (the space replaced by `separator`).

    Arrow's cast of whole seconds to text writes exactly that, some twenty times faster than
    `strftime`; stored datetimes are whole seconds (DuckDB hands them back in microseconds).
    """
    text = values.cast(pa.timestamp("s"), safe=False).cast(pa.string())
    return text if separator == " " else pc.replace_substring(text, " ", separator, max_replacements=1)


def _plain(batch: pa.RecordBatch, separator: str) -> pa.RecordBatch:
    """The batch without `_row`, timestamps as text (`separator` between date and time),
    non-finite floats as null."""
    names, arrays = [], []
    for name, values in zip(batch.schema.names, batch.columns, strict=True):
        if name == ROW:
            continue
        if pa.types.is_timestamp(values.type):
            values = _seconds_text(values, separator)
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
    batch = _plain(batch, " ")
    arrays = [_neutralised(v) if _is_text(v.type) else v for v in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=[_neutral(n) for n in batch.schema.names])


def csv_chunks(batches: Iterable[pa.RecordBatch], *, bom: bool) -> Iterator[bytes]:
    """UTF-8 CSV (RFC 4180 quoting, CRLF, a header row), one chunk per batch; `bom` for Excel.

    Arrow's CSV writer is single-threaded: batches are formatted side by side in worker threads
    (it releases the GIL), a few ahead of the one being sent, and come out in order.
    """
    if bom:
        yield BOM
    yield from _in_order(_csv_bytes, ((batch, i == 0) for i, batch in enumerate(batches)))


def _csv_bytes(job: tuple[pa.RecordBatch, bool]) -> bytes:
    batch, header = job
    sink = pa.BufferOutputStream()
    pacsv.write_csv(_csv_ready(batch), sink, pacsv.WriteOptions(include_header=header, eol="\r\n"))
    return sink.getvalue().to_pybytes()


def _in_order(work: Callable[[Any], bytes], jobs: Iterable[Any]) -> Iterator[bytes]:
    """`work` of each job, done in the shared formatting threads, yielded in the jobs' order."""
    pending: deque[Future[bytes]] = deque()
    for job in jobs:
        pending.append(_FORMATTERS.submit(work, job))
        if len(pending) > FORMAT_AHEAD:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


# ---------------------------------------------------------------- JSON


def _json_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    batch = _plain(batch, "T")
    arrays = [
        values.cast(pa.string()) if pa.types.is_date(values.type) else values for values in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def json_chunks(
    batches: Iterable[pa.RecordBatch], fields: list[dict[str, str]], citation: str, receipt: str = ""
) -> Iterator[bytes]:
    """One JSON object, streamed: `{"source": citation, "receipt": …, "fields": [...], "records": [...]}`.

    The records of a batch are written column by column with Arrow kernels (they read back as
    `json.dumps` of the rows would, several times faster than going row by row in Python).
    """
    head = f'"source":{_dump(citation)},' + (f'"receipt":{_dump(receipt)},' if receipt else "")
    yield f'{{{head}"fields":{_dump(fields)},"records":['.encode()
    filled = (batch for batch in batches if batch.num_rows)
    yield from _in_order(_json_records, ((batch, i > 0) for i, batch in enumerate(filled)))
    yield b"]}"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_records(job: tuple[pa.RecordBatch, bool]) -> bytes:
    """The batch's records, comma-separated (and after a comma when `follows`)."""
    batch, follows = job
    ready = _json_ready(batch)
    texts = [_json_values(values) for values in ready.columns]
    if any(text is None for text in texts):  # a type not covered below: row by row
        records = _dump(ready.to_pylist())[1:-1]
        return ("," + records if follows else records).encode()
    parts: list[Any] = []
    for i, (name, text) in enumerate(zip(ready.schema.names, texts, strict=True)):
        parts += [(",{" if i == 0 else ",") + _dump(name) + ":", text]
    rows = pc.binary_join_element_wise(*parts, "}", "")  # `,{…}`: each row after a comma
    # The rows lie back to back in the array's data buffer: that is the chunk (less the first
    # comma unless `follows`), with no join into yet another copy.
    _validity, offsets_buffer, data = rows.buffers()
    offsets = pa.Array.from_buffers(pa.int32(), len(rows) + 1, [None, offsets_buffer], offset=rows.offset)
    start, end = offsets[0].as_py() + (0 if follows else 1), offsets[-1].as_py()
    return data.slice(start, end - start).to_pybytes()


def _json_values(values: pa.Array) -> pa.Array | None:
    """Each value as JSON text (`null` for nulls), or None for a type this does not write."""
    kind = values.type
    if _is_text(kind):  # one batch of text is far below 2 GB: plain `string` for the kernels
        text = _json_strings(values if kind == pa.string() else values.cast(pa.string()))
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
        text = values.cast(pa.string())
    elif pa.types.is_floating(kind):  # finite here (`_plain`); 5.0 stays a float, as json.dumps writes it
        text = values.cast(pa.string())
        whole = pc.match_substring_regex(text, r"^-?\d+$")
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    else:
        return None
    return pc.fill_null(text, "null")


_JSON_CONTROL = [(chr(code), json.dumps(chr(code))[1:-1]) for code in range(32)]


def _json_strings(values: pa.Array) -> pa.Array:
    """Quoted and escaped exactly as json.dumps(ensure_ascii=False) does."""
    text = values
    if pc.any(pc.match_substring_regex(values, r'[\\"\x00-\x1f]')).as_py():  # rare: one pass to know
        for char, escaped in [("\\", "\\\\"), ('"', '\\"'), *_JSON_CONTROL]:  # backslashes first
            text = pc.replace_substring(text, char, escaped)
    return pc.binary_join_element_wise('"', text, '"', "")


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
    batches: Iterable[pa.RecordBatch],
    fields: list[dict[str, str]],
    citation: str,
    path: Path,
    receipt: str = "",
) -> None:
    """An XLSX workbook: sheet 数据 (bold header, the rows) and sheet 数据来源 (the citation, and the
    download receipt, which is also in the document properties).

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
        lines = citation.splitlines() or [""]
        if receipt:
            lines.append(f"下载回执：{receipt}")
            workbook.set_properties({"comments": f"下载回执 {receipt}", "keywords": receipt})
        for number, line in enumerate(lines):
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


def parquet_file(
    batches: Iterable[pa.RecordBatch],
    schema: list[Column],
    path: Path,
    metadata: dict[str, str] | None = None,
) -> None:
    """A Parquet file of the batches with the columns and types of `schema`, never `_row`;
    `metadata` goes into the file's key-value metadata (citation, download receipt)."""
    target = _arrow_schema(schema)
    if metadata:
        target = target.with_metadata({k.encode(): v.encode() for k, v in metadata.items()})
    with pq.ParquetWriter(str(path), target, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(_conform(batch, target))


# ---------------------------------------------------------------- whole-table files, kept

EXPORT_REVISION = 1  # in every kept file's key: raise it when the bytes of an export change


def export_key(resource_id: int, number: int, sha256: str, ext: str) -> str:
    """Where the whole-table `ext` file (csv, without BOM; parquet) of a published version is kept.

    A published version never changes (data, names, descriptions), so its whole-table file is
    built once and served as a file afterwards. The key names the version, the checksum of its
    data file and the export revision: a file that no longer matches is simply never asked for.
    """
    return f"exports/{resource_id}/{number}-{sha256[:16]}-r{EXPORT_REVISION}.{ext}"


def csv_with_bom(store: FileStore, key: str) -> Iterator[bytes]:
    """A kept CSV file with the BOM in front, read in large chunks."""
    yield BOM
    yield from store.open_chunks(key)


def parquet_into_store(
    batches: Iterable[pa.RecordBatch], schema: list[Column], store: FileStore, key: str
) -> None:
    """Write the Parquet file of the batches under `key`, atomically."""
    part = _part_beside(store, key)
    try:
        parquet_file(batches, schema, part)
        store.put_file(key, part)
    finally:
        part.unlink(missing_ok=True)


class CacheFill:
    """The bytes of a streamed download, copied into a file of the store on their way out.

    They go to a temporary file beside the key's place; `keep` (run once the response is sent)
    moves it under the key if every chunk went out. A download that stops half-way (the client
    hung up, an error) deletes its file. Concurrent first downloads each fill their own file and
    the last move wins — with the same bytes — so no reader ever sees a partial file. The copy
    is a convenience: if the disk refuses it, the download goes on without it.
    """

    def __init__(self, store: FileStore, key: str) -> None:
        self.store, self.key = store, key
        self.part: Path | None = None
        self.complete = False

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        out = self._open()
        try:
            for chunk in chunks:
                if out is not None:
                    out = self._write(out, chunk)
                yield chunk
            self.complete = out is not None
        finally:
            if out is not None:
                self.complete = self._closed(out) and self.complete
            if not self.complete and self.part is not None:
                self.part.unlink(missing_ok=True)

    def keep(self) -> None:
        if not self.complete or self.part is None:
            return
        try:
            self.store.put_file(self.key, self.part)
        except OSError:
            log.warning("could not keep %s", self.key, exc_info=True)
            self.part.unlink(missing_ok=True)

    def _open(self) -> BinaryIO | None:
        try:
            self.part = _part_beside(self.store, self.key)
            return self.part.open("wb")
        except OSError:
            log.warning("could not start keeping %s", self.key, exc_info=True)
            return None

    def _write(self, out: BinaryIO, chunk: bytes) -> BinaryIO | None:
        try:
            out.write(chunk)
            out.flush()  # chunks are megabytes: nothing is gained by holding them, errors show now
            return out
        except OSError:  # a full disk: stop copying, keep sending
            log.warning("could not keep %s", self.key, exc_info=True)
            self._closed(out)
            return None

    def _closed(self, out: BinaryIO) -> bool:
        try:
            out.close()
            return True
        except OSError:
            log.warning("could not keep %s", self.key, exc_info=True)
            return False


def _part_beside(store: FileStore, key: str) -> Path:
    """A temporary name in the key's directory: moving it into place is a rename on one disk."""
    target = store.path(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.filling")
