"""Reading uploaded tables as text cells, the way government files really arrive.

CSV-like files: the encoding is detected (`encoding`), the delimiter and the header row are
sniffed from a sample, and the body is read by pyarrow's multithreaded CSV reader straight from
the upload — GB18030 is transcoded by pyarrow as it reads, so the file is read once; only UTF-16
and old-Mac line ends go through a temporary UTF-8 copy. Files whose rows do not all have the
header's width (or that contain empty lines) are re-read in batches with the csv module, which
pads, truncates and records them. Spreadsheets are read by `sheets`, JSON by the json module.
Every path ends in `layout.finish`: cells trimmed, empty cells null, blank rows dropped and
recorded, header names cleaned.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from kaifang.datastore.encoding import (
    SAMPLE_BYTES,
    NotUtf8,
    decoding_failed,
    first_bad_byte,
    guess_encoding,
    is_utf8,
    scratch_dir,
    transcode,
    undecodable_message,
)
from kaifang.datastore.layout import (
    Layout,
    clean_header,
    clean_headers,
    empty_table,
    find_header,
    finish,
    number_text,
    title_warning,
)
from kaifang.datastore.sheets import read_workbook
from kaifang.datastore.types import RawTable
from kaifang.errors import InvalidInput

__all__ = ["TABULAR", "clean_header", "clean_headers", "is_tabular", "read_table"]

DELIMITED = {".csv", ".tsv", ".txt"}
SPREADSHEETS = {".xlsx", ".xlsm", ".xls"}
JSON_ARRAY = {".json"}
JSON_LINES = {".ndjson", ".jsonl"}
TABULAR = DELIMITED | SPREADSHEETS | JSON_ARRAY | JSON_LINES

SNIFF_RECORDS = 200
BATCH_ROWS = 65_536
BLOCK_BYTES = 16 << 20  # per block of pyarrow's CSV reader: few blocks, each worth a thread
SCAN_BYTES = 8 << 20
DELIMITERS = (",", "\t", ";", "|")

csv.field_size_limit(max(csv.field_size_limit(), 64 << 20))


@dataclass
class _Body:
    """The data rows of a delimited file: where they start and how to split them."""

    path: Path
    encoding: str  # utf-8, utf-8-sig or gb18030: encodings whose newline bytes always end a line
    offset: int  # the byte after the header row
    delimiter: str
    width: int


def is_tabular(filename: str) -> bool:
    """True when `read_table` can read a file of this name (by extension, case-insensitive)."""
    return Path(filename).suffix.lower() in TABULAR


def read_table(path: Path, *, filename: str, sheet: str | None = None, max_title_rows: int = 20) -> RawTable:
    """Read a tabular upload as text cells; the format follows the extension of `filename`.

    Raises InvalidInput for unsupported types, undecodable text, malformed JSON, unreadable
    workbooks and unknown sheets. An empty file gives a RawTable with no columns (validation
    reports it).
    """
    ext = Path(filename).suffix.lower()
    if ext not in TABULAR:
        raise InvalidInput(
            f"不支持的表格文件类型：{ext or '无扩展名'}。"
            "请上传 CSV、TSV、TXT、XLSX、XLSM、XLS、JSON 或 NDJSON 文件",
            fields={"file": filename},
        )
    try:
        if ext in SPREADSHEETS:
            return read_workbook(Path(path), sheet, max_title_rows)
        return _read_text(Path(path), ext, max_title_rows)
    except (ValueError, IndexError, RecursionError, csv.Error, pa.ArrowException) as e:
        # A file malformed in a way not foreseen above still gets a 422, never a 500.
        raise InvalidInput(f"无法读取文件：{e}") from None


# --- text files -----------------------------------------------------------------------------


def _read_text(path: Path, ext: str, max_title_rows: int) -> RawTable:
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES)
    encoding = guess_encoding(head)
    cr_only = b"\r" in head and b"\n" not in head
    try:
        return _read_text_as(path, ext, encoding, cr_only, max_title_rows)
    except NotUtf8:
        if encoding != "utf-8":
            raise InvalidInput(undecodable_message(first_bad_byte(path, "utf-8"))) from None
        return _read_text_as(path, ext, "gb18030", cr_only, max_title_rows)


def _read_text_as(path: Path, ext: str, encoding: str, cr_only: bool, max_title_rows: int) -> RawTable:
    if cr_only or encoding.startswith("utf-16"):
        # The sample is cut into lines at newline bytes: UTF-16 has such bytes inside characters,
        # and a file of lone CRs has none. Both are rare: they are read from a UTF-8 copy.
        with scratch_dir(path) as tmp:
            utf8 = Path(tmp) / "utf8.txt"
            transcode(path, encoding, utf8, cr_only)
            raw = _read_decodable(utf8, ext, "utf-8", max_title_rows)
    else:
        raw = _read_decodable(path, ext, encoding, max_title_rows)
    raw.encoding = encoding
    return raw


def _read_decodable(path: Path, ext: str, encoding: str, max_title_rows: int) -> RawTable:
    """A text file in UTF-8 or GB18030, read in place."""
    if ext in JSON_ARRAY | JSON_LINES:
        return _read_json(path, encoding, lines=ext in JSON_LINES)
    lines = _sample_lines(path, encoding)
    if not any(text.strip() for text, _ in lines):
        return empty_table()
    delimiter = "\t" if ext == ".tsv" else _sniff_delimiter([text for text, _ in lines])
    records, ends = _parse_records(lines, delimiter)
    h = find_header(records, max_title_rows)
    width = max(len(records[h]), _modal_width(records[h + 1 :]))
    layout = Layout(_pad(records[h], width), h + 1, h + 2, title_warning(records[:h]))
    table, ragged = _read_body(_Body(path, encoding, ends[h], delimiter, width), layout.first_data_row)
    raw = finish(list(table.columns), layout, ragged)
    raw.delimiter = delimiter
    return raw


def _text_codec(encoding: str) -> str:
    """The codec for text that starts after the BOM (which only the first line carries)."""
    return "utf-8" if is_utf8(encoding) else encoding


def _sample_lines(path: Path, encoding: str) -> list[tuple[str, int]]:
    """The first lines of the file as (text, byte length); a truncated last line is dropped."""
    with path.open("rb") as f:
        data = f.read(SAMPLE_BYTES)
        complete = not f.read(1)
    pieces = data.split(b"\n")
    tail = pieces.pop()  # after the last newline: the file's last line, or a truncated one
    lines = [piece + b"\n" for piece in pieces] + ([tail] if complete and tail else [])
    if not complete and not lines:
        raise InvalidInput(f"文件第一行超过 {SAMPLE_BYTES >> 20} MB，不像是表格")
    try:
        texts = [line.decode(_text_codec(encoding)) for line in lines]
    except UnicodeDecodeError:
        raise decoding_failed(path, encoding) from None
    if texts:
        texts[0] = texts[0].removeprefix("\ufeff")
    return list(zip(texts, map(len, lines), strict=True))


def _sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits the sample into the most rows of one consistent width."""
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = Counter(len(r) for r in csv.reader(lines[:SNIFF_RECORDS], delimiter=delimiter) if r)
        if not widths:
            continue
        width, count = widths.most_common(1)[0]
        if width > 1 and (count, width) > best_score:
            best, best_score = delimiter, (count, width)
    return best


def _parse_records(lines: list[tuple[str, int]], delimiter: str) -> tuple[list[list[str]], list[int]]:
    """Parse the sample into records, with the byte offset where each record ends."""
    consumed = [0, 0]  # lines handed to the csv reader, bytes in them

    def feed() -> Iterator[str]:
        for text, size in lines:
            consumed[0] += 1
            consumed[1] += size
            yield text

    records, ends = [], []
    try:
        for record in csv.reader(feed(), delimiter=delimiter):
            records.append(record)
            ends.append(consumed[1])
            if len(records) >= SNIFF_RECORDS:
                break
    except csv.Error as e:
        raise InvalidInput(f"CSV 格式错误：{e}") from None
    return records, ends


def _modal_width(records: list[list[str]]) -> int:
    widths = Counter(len(r) for r in records if any(c.strip() for c in r))
    return widths.most_common(1)[0][0] if widths else 0


def _pad(cells: list[str], width: int) -> list[str]:
    return (cells + [""] * width)[:width]


# --- the body of a delimited file -----------------------------------------------------------


def _read_body(body: _Body, first_row: int) -> tuple[pa.Table, dict[int, int]]:
    if body.offset >= body.path.stat().st_size:
        return pa.table({f"c{i}": pa.array([], pa.string()) for i in range(body.width)}), {}
    try:
        return _read_body_fast(body), {}
    except UnicodeDecodeError:  # raised through pyarrow by its GB18030 transcoder
        raise decoding_failed(body.path, body.encoding) from None
    except pa.ArrowInvalid as e:
        if "UTF8" in str(e) or "UTF-8" in str(e):
            raise decoding_failed(body.path, body.encoding) from None
    # Rows of the wrong width or empty lines: pyarrow can only skip them, which loses row numbers.
    return _read_body_slow(body, first_row)


def _read_body_fast(body: _Body) -> pa.Table:
    names = [f"c{i}" for i in range(body.width)]
    encoding = "utf8" if is_utf8(body.encoding) else body.encoding
    with pa.OSFile(str(body.path)) as f:
        f.seek(body.offset)
        return pacsv.read_csv(
            f,
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES, encoding=encoding),
            parse_options=pacsv.ParseOptions(
                delimiter=body.delimiter,
                newlines_in_values=_has_quotes(body),
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )


def _has_quotes(body: _Body) -> bool:
    """Whether a cell could hold a line break. Without a quote character every line break ends a
    row, and pyarrow can cut the file into blocks at any newline for its threads instead of
    following the quotes from the start (about 2.5× faster). The quote byte never occurs inside
    a multi-byte UTF-8 or GB18030 character, so the raw bytes answer for both (at some GB/s)."""
    buffer = bytearray(SCAN_BYTES)
    with body.path.open("rb", buffering=0) as f:
        f.seek(body.offset)
        while size := f.readinto(buffer):
            if buffer.find(b'"', 0, size) != -1:
                return True
    return False


def _read_body_slow(body: _Body, first_row: int) -> tuple[pa.Table, dict[int, int]]:
    ragged: dict[int, int] = {}
    batches, rows = [], []
    with body.path.open("rb") as binary:
        binary.seek(body.offset)
        text = io.TextIOWrapper(binary, encoding=_text_codec(body.encoding), newline="")
        try:
            records = csv.reader(text, delimiter=body.delimiter)
            for number, record in enumerate(records, start=first_row):
                if len(record) != body.width:
                    record = _fit(record, body.width, number, ragged)
                rows.append(record)
                if len(rows) == BATCH_ROWS:
                    batches.append(_rows_to_table(rows, body.width))
                    rows = []
        except UnicodeDecodeError:
            raise decoding_failed(body.path, body.encoding) from None
        except csv.Error as e:
            raise InvalidInput(f"CSV 格式错误：{e}") from None
    batches.append(_rows_to_table(rows, body.width))
    return pa.concat_tables(batches), ragged


def _fit(record: list[str], width: int, number: int, ragged: dict[int, int]) -> list[str]:
    """Pad or cut a record to the header's width, noting it unless the difference is empty."""
    extra = record[width:]
    if any(c.strip() for c in extra) or (len(record) < width and any(c.strip() for c in record)):
        ragged[number] = len(record)
    return _pad(record, width)


def _rows_to_table(rows: list[list[str]], width: int) -> pa.Table:
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * width
    return pa.table({f"c{i}": pa.array(col, pa.string()) for i, col in enumerate(columns)})


# --- JSON -----------------------------------------------------------------------------------


def _read_json(path: Path, encoding: str, *, lines: bool) -> RawTable:
    objects = _json_lines(path, encoding) if lines else _json_array(path, encoding)
    tables, keys = [], {}
    for batch in _batched(objects, BATCH_ROWS):
        for obj in batch:
            keys.update(dict.fromkeys(obj))
        names = list(keys)
        tables.append(
            pa.table({n: pa.array([_json_text(o.get(n)) for o in batch], pa.string()) for n in names})
        )
    if not keys:
        return empty_table()
    table = pa.concat_tables(tables, promote_options="default").select(list(keys))
    return finish(list(table.columns), Layout(list(keys), 0, 1))


def _json_codec(encoding: str) -> str:
    return "utf-8-sig" if is_utf8(encoding) else encoding


def _json_array(path: Path, encoding: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding=_json_codec(encoding)).removeprefix("\ufeff"))
    except UnicodeDecodeError:
        raise decoding_failed(path, encoding) from None
    except json.JSONDecodeError as e:
        raise InvalidInput(f"JSON 格式错误：第 {e.lineno} 行第 {e.colno} 列，{e.msg}") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list) and all(isinstance(o, dict) for o in v)]
        if len(lists) > 1:
            lists = [v for v in lists if v]
        if len(lists) != 1:
            raise InvalidInput('JSON 文件应是对象数组，或只含一个对象数组的对象（如 {"data": [...]}）')
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(o, dict) for o in data):
        raise InvalidInput('JSON 文件应是对象数组：[{"列名": 值, …}, …]')
    return data


def _json_lines(path: Path, encoding: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding=_json_codec(encoding)) as f:
        try:
            for number, line in enumerate(f, start=1):
                yield _json_object(line.removeprefix("\ufeff") if number == 1 else line, number)
        except UnicodeDecodeError:
            raise decoding_failed(path, encoding) from None


def _json_object(line: str, number: int) -> dict[str, Any]:
    if not line.strip():
        return {}  # an empty line is a blank row, so later line numbers stay right
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"第 {number} 行不是有效的 JSON：{e.msg}") from None
    if not isinstance(obj, dict):
        raise InvalidInput(f'第 {number} 行不是 JSON 对象（应为 {{"列名": 值, …}}）')
    return obj


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    return json.dumps(value, ensure_ascii=False)
