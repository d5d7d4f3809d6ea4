"""Reading uploaded tables as text cells, the way government files really arrive.

CSV-like files: the encoding is detected (BOM, strict UTF-8, then GB18030), anything that is not
UTF-8 is transcoded in chunks to a temporary UTF-8 file, the delimiter and the header row are
sniffed from a sample, and the body is read by pyarrow's multithreaded CSV reader. Files whose
rows do not all have the header's width (or that contain empty lines) are re-read in batches
with the csv module, which pads, truncates and records them. Spreadsheets are read by calamine,
JSON by the json module. Every path ends in `_finish`: cells trimmed, empty cells null, blank
rows dropped and recorded, header names cleaned.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from python_calamine import CalamineWorkbook

from kaifang.datastore.types import RawTable
from kaifang.errors import InvalidInput

DELIMITED = {".csv", ".tsv", ".txt"}
SPREADSHEETS = {".xlsx", ".xlsm", ".xls"}
JSON_ARRAY = {".json"}
JSON_LINES = {".ndjson", ".jsonl"}
TABULAR = DELIMITED | SPREADSHEETS | JSON_ARRAY | JSON_LINES

SAMPLE_BYTES = 2 << 20  # enough for the header area, the delimiter and the encoding guess
CHUNK_BYTES = 8 << 20  # transcoding and verification stream in chunks of this size
SNIFF_RECORDS = 200
BATCH_ROWS = 65_536
DELIMITERS = (",", "\t", ";", "|")
NOTE_RE = re.compile(r"^(注|备注|说明|数据来源|资料来源|来源|制表|填报|审核|负责人|联系人|联系电话)")
NUMBERISH_RE = re.compile(r"^[+\-]?[\d.,:/%\-年月日时分秒 ]+$")
CJK = r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]"
LINEBREAK_RE = re.compile(rf"(?<={CJK})\s*[\r\n]+\s*(?={CJK})")

csv.field_size_limit(max(csv.field_size_limit(), 64 << 20))


class _NotUtf8(Exception):
    """The file looked like UTF-8 in its sample but is not, further on."""


class _Undecodable(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


@dataclass
class _Layout:
    """Where the header is and what surrounds it, before the body is read."""

    headers: list[str]
    header_row: int  # 1-based
    first_data_row: int  # 1-based
    warnings: list[str] = field(default_factory=list)


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
            return _read_workbook(Path(path), sheet, max_title_rows)
        return _read_text(Path(path), ext, max_title_rows)
    except (ValueError, IndexError, RecursionError, csv.Error, pa.ArrowException) as e:
        # A file malformed in a way not foreseen above still gets a 422, never a 500.
        raise InvalidInput(f"无法读取文件：{e}") from None


# --- encodings ------------------------------------------------------------------------------


def _read_text(path: Path, ext: str, max_title_rows: int) -> RawTable:
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES)
    encoding = _guess_encoding(head)
    cr_only = b"\r" in head and b"\n" not in head
    try:
        return _read_text_as(path, ext, encoding, cr_only, max_title_rows)
    except _NotUtf8:
        if encoding != "utf-8":
            raise InvalidInput(_undecodable_message(_first_bad_byte(path, "utf-8"))) from None
        return _read_text_as(path, ext, "gb18030", cr_only, max_title_rows)


def _guess_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise InvalidInput("这是 Excel 或压缩文件，不是文本表格。请以 .xlsx / .xls 扩展名上传")
    if b"\x00" in head:
        return _guess_utf16_without_bom(head)
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _guess_utf16_without_bom(head: bytes) -> str:
    # ASCII text in UTF-16 has a zero in every other byte; binary files have zeros anywhere.
    odd, even = head[1::2].count(0), head[0::2].count(0)
    if odd > 0.3 * len(head) / 2 and even < odd / 10:
        return "utf-16-le"
    if even > 0.3 * len(head) / 2 and odd < even / 10:
        return "utf-16-be"
    raise InvalidInput(f"文件含有二进制内容（第 {head.index(0)} 字节），不是文本表格")


def _read_text_as(path: Path, ext: str, encoding: str, cr_only: bool, max_title_rows: int) -> RawTable:
    if encoding in ("utf-8", "utf-8-sig") and not cr_only:
        raw = _read_utf8(path, ext, max_title_rows)
    else:
        with _scratch_dir(path) as tmp:
            utf8 = Path(tmp) / "utf8.txt"
            _transcode(path, encoding, utf8, cr_only)
            raw = _read_utf8(utf8, ext, max_title_rows)
    raw.encoding = encoding
    return raw


def _scratch_dir(path: Path) -> tempfile.TemporaryDirectory[str]:
    """Beside the upload (a disk sized for uploads), else the system's temporary directory."""
    try:
        return tempfile.TemporaryDirectory(dir=path.parent, prefix=".kaifang-read-")
    except OSError:
        return tempfile.TemporaryDirectory(prefix="kaifang-read-")


def _transcode(path: Path, encoding: str, target: Path, cr_only: bool) -> None:
    try:
        with target.open("wb") as out:
            for text in _decode_chunks(path, encoding):
                out.write((text.replace("\r", "\n") if cr_only else text).encode("utf-8"))
    except _Undecodable as e:
        if encoding == "utf-8":
            raise _NotUtf8 from None
        offset = max(e.offset, _first_bad_byte(path, "utf-8")) if encoding == "gb18030" else e.offset
        raise InvalidInput(_undecodable_message(offset)) from None


def _decode_chunks(path: Path, encoding: str) -> Iterator[str]:
    """Decode a file strictly in chunks; raise _Undecodable with the offset of the first bad byte."""
    if encoding.startswith("utf-16"):
        yield from _decode_incrementally(path, encoding)
        return
    base, pending = 0, b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            buf = pending + chunk
            # A newline byte is never inside a UTF-8 or GB18030 character, so cutting there is safe.
            cut = buf.rfind(b"\n") + 1 if len(chunk) == CHUNK_BYTES else len(buf)
            yield _decode_at(buf[:cut], encoding, base)
            base, pending = base + cut, buf[cut:]
        if pending:
            yield _decode_at(pending, encoding, base)


def _decode_at(data: bytes, encoding: str, base: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise _Undecodable(base + e.start) from None


def _decode_incrementally(path: Path, encoding: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    base = 0
    with path.open("rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            try:
                yield decoder.decode(chunk, not chunk)
            except UnicodeDecodeError as e:
                raise _Undecodable(base + e.start) from None
            if not chunk:
                return
            base += len(chunk)


def _first_bad_byte(path: Path, encoding: str) -> int:
    try:
        for _ in _decode_chunks(path, encoding):
            pass
    except _Undecodable as e:
        return e.offset
    return 0


def _undecodable_message(offset: int) -> str:
    return (
        f"无法识别文件编码：既不是 UTF-8，也不是 GBK/GB18030 或 UTF-16（第 {offset} 字节处无法解码）。"
        "请在 Excel 或 WPS 中另存为“CSV UTF-8”后重新上传"
    )


# --- delimited text (UTF-8 on disk) ---------------------------------------------------------


def _read_utf8(path: Path, ext: str, max_title_rows: int) -> RawTable:
    if ext in JSON_ARRAY | JSON_LINES:
        return _read_json(path, lines=ext in JSON_LINES)
    lines = _sample_lines(path)
    if not any(text.strip() for text, _ in lines):
        return _empty()
    delimiter = "\t" if ext == ".tsv" else _sniff_delimiter([text for text, _ in lines])
    records, ends = _parse_records(lines, delimiter)
    h = _find_header(records, max_title_rows)
    width = max(len(records[h]), _modal_width(records[h + 1 :]))
    layout = _Layout(_pad(records[h], width), h + 1, h + 2, _title_warning(records[:h]))
    table, ragged = _read_body(path, ends[h], delimiter, width, layout.first_data_row)
    raw = _finish(list(table.columns), layout, ragged)
    raw.delimiter = delimiter
    return raw


def _sample_lines(path: Path) -> list[tuple[str, int]]:
    """The first lines of a UTF-8 file as (text, byte length); a truncated last line is dropped."""
    with path.open("rb") as f:
        data = f.read(SAMPLE_BYTES)
        complete = not f.read(1)
    pieces = data.split(b"\n")
    tail = pieces.pop()  # after the last newline: the file's last line, or a truncated one
    lines = [piece + b"\n" for piece in pieces] + ([tail] if complete and tail else [])
    if not complete and not lines:
        raise InvalidInput(f"文件第一行超过 {SAMPLE_BYTES >> 20} MB，不像是表格")
    try:
        texts = [line.decode("utf-8") for line in lines]
    except UnicodeDecodeError:
        raise _NotUtf8 from None
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


def _read_body(
    path: Path, offset: int, delimiter: str, width: int, first_row: int
) -> tuple[pa.Table, dict[int, int]]:
    if offset >= path.stat().st_size:
        return pa.table({f"c{i}": pa.array([], pa.string()) for i in range(width)}), {}
    try:
        return _read_body_fast(path, offset, delimiter, width), {}
    except pa.ArrowInvalid as e:
        if "UTF8" in str(e) or "UTF-8" in str(e):
            raise _NotUtf8 from None
    # Rows of the wrong width or empty lines: pyarrow can only skip them, which loses row numbers.
    return _read_body_slow(path, offset, delimiter, width, first_row)


def _read_body_fast(path: Path, offset: int, delimiter: str, width: int) -> pa.Table:
    names = [f"c{i}" for i in range(width)]
    with pa.OSFile(str(path)) as f:
        f.seek(offset)
        return pacsv.read_csv(
            f,
            read_options=pacsv.ReadOptions(column_names=names, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )


def _read_body_slow(
    path: Path, offset: int, delimiter: str, width: int, first_row: int
) -> tuple[pa.Table, dict[int, int]]:
    ragged: dict[int, int] = {}
    batches, rows = [], []
    with path.open("rb") as binary:
        binary.seek(offset)
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        try:
            for number, record in enumerate(csv.reader(text, delimiter=delimiter), start=first_row):
                if len(record) != width:
                    record = _fit(record, width, number, ragged)
                rows.append(record)
                if len(rows) == BATCH_ROWS:
                    batches.append(_rows_to_table(rows, width))
                    rows = []
        except UnicodeDecodeError:
            raise _NotUtf8 from None
        except csv.Error as e:
            raise InvalidInput(f"CSV 格式错误：{e}") from None
    batches.append(_rows_to_table(rows, width))
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


# --- header detection -----------------------------------------------------------------------


def _find_header(rows: list[list[str]], max_title_rows: int, widths: list[int] | None = None) -> int:
    """The first row, within `max_title_rows` of the top, that is wide enough and reads as labels.

    `widths` overrides the count of non-empty cells per row (spreadsheets count merged spans).
    """
    counts = widths or [sum(1 for c in row if c.strip()) for row in rows]
    nonblank = sorted(c for c in counts if c)
    if not nonblank:
        return 0
    # A high percentile rather than the maximum, so one overlong data row cannot hide the header.
    widest = nonblank[-1] if len(nonblank) < 10 else nonblank[int(0.9 * (len(nonblank) - 1))]
    need = widest if widest <= 2 else math.ceil(0.6 * widest)
    candidates = [i for i in range(min(len(rows), max_title_rows + 1)) if counts[i] >= need]
    for i in candidates:
        if _looks_like_labels(rows[i]):
            return i
    if candidates:
        return candidates[0]
    return next(i for i, c in enumerate(counts) if c)


def _looks_like_labels(row: list[str]) -> bool:
    """Mostly words. (Repeated labels are allowed: validation reports them as duplicate headers.)"""
    cells = [c.strip() for c in row if c.strip()]
    return sum(1 for c in cells if NUMBERISH_RE.match(c)) <= 0.5 * len(cells)


def _title_warning(rows_above: list[list[str]]) -> list[str]:
    if any(c.strip() for row in rows_above for c in row):
        return [f"已跳过表头上方的 {len(rows_above)} 行标题"]
    return []


def clean_header(cell: str) -> str:
    """A header cell as a column name: NFKC (full-width → half-width), line breaks and runs of
    whitespace collapsed (removed between Chinese characters), trimmed."""
    text = LINEBREAK_RE.sub("", unicodedata.normalize("NFKC", cell or ""))
    return re.sub(r"\s+", " ", text).strip()


def clean_headers(cells: list[str]) -> list[str]:
    """Unique column names: blank → 列N (1-based position), repeats → 名称_2, 名称_3 …"""
    names: list[str] = []
    seen: set[str] = set()
    for position, cell in enumerate(cells, start=1):
        base = clean_header(cell) or f"列{position}"
        name, k = base, 1
        while name in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name)
        names.append(name)
    return names


# --- finishing (every format) ---------------------------------------------------------------


def _finish(
    columns: list[pa.ChunkedArray | pa.Array], layout: _Layout, ragged: dict[int, int] | None = None
) -> RawTable:
    """Trim cells, null empty ones, drop residue columns, blank rows and notes below the table."""
    columns = _parallel(_tidy_cells, columns)
    keep = [i for i, col in enumerate(columns) if layout.headers[i].strip() or col.null_count < len(col)]
    warnings = list(layout.warnings)
    if len(keep) < len(columns):
        warnings.append(f"已删除 {len(columns) - len(keep)} 个没有表头也没有数据的空列")
    headers = [layout.headers[i] for i in keep]
    table = pa.table([columns[i] for i in keep], names=clean_headers(headers)) if keep else pa.table({})
    table, notes = _drop_notes(table)
    table, blank_rows = _drop_blank_rows(table, layout.first_data_row)
    if notes:
        warnings.append(f"已跳过表格下方的 {notes} 行备注")
    return RawTable(
        table=table,
        source_headers=headers,
        header_row=layout.header_row,
        first_data_row=layout.first_data_row,
        warnings=warnings,
        blank_rows=blank_rows,
        ragged_rows=_ragged_in_kept_columns(ragged or {}, keep, len(columns)),
    )


def _ragged_in_kept_columns(ragged: dict[int, int], keep: list[int], width: int) -> dict[int, int]:
    """Cell counts measured against the columns kept, so they compare with the headers kept:
    a short row that only lacks dropped (empty) columns is whole."""
    counted = {}
    for row, cells in ragged.items():
        if cells > width:
            counted[row] = len(keep) + cells - width
        elif (present := sum(1 for i in keep if i < cells)) < len(keep):
            counted[row] = present
    return counted


def _tidy_cells(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    trimmed = pc.utf8_trim_whitespace(column)
    lengths = pc.binary_length(trimmed)
    if pc.sum(lengths).as_py() == pc.sum(pc.binary_length(column)).as_py():
        # Nothing was trimmed: keep the original buffers and let the copy's memory go at once.
        trimmed = column
    if pc.min(lengths).as_py() != 0:
        return trimmed
    return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), trimmed)


def _drop_blank_rows(table: pa.Table, first_row: int) -> tuple[pa.Table, list[int]]:
    if table.num_columns == 0 or table.num_rows == 0:
        return table, []
    blank = pc.is_null(table.column(0))
    for column in table.columns[1:]:
        blank = pc.and_(blank, pc.is_null(column))
    if not pc.any(blank).as_py():
        return table, []
    positions = pc.indices_nonzero(blank).to_pylist()
    filled = pc.indices_nonzero(pc.invert(blank))
    # Blank rows after the last filled one are the file's tail (trailing newlines, formatted
    # empty cells), not rows anyone left out: drop them without reporting.
    last = filled[-1].as_py() if len(filled) else -1
    return table.filter(pc.invert(blank)), [first_row + p for p in positions if p < last]


def _drop_notes(table: pa.Table) -> tuple[pa.Table, int]:
    """Notes under the table (注：…, 数据来源：…): one filled cell per row, at the very end."""
    if table.num_columns < 2 or table.num_rows == 0:
        return table, 0
    start = max(0, table.num_rows - 10)
    notes, cut = 0, table.num_rows
    for offset, row in reversed(list(enumerate(table.slice(start).to_pylist()))):
        filled = [v for v in row.values() if v is not None]
        if filled and (len(filled) != 1 or not NOTE_RE.match(filled[0])):
            break
        if filled:
            notes, cut = notes + 1, start + offset
    return table.slice(0, cut), notes


def _empty() -> RawTable:
    return RawTable(table=pa.table({}), source_headers=[], header_row=0, first_data_row=1)


def _parallel(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """pyarrow kernels release the GIL: columns are processed side by side."""
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), 4)) as pool:
        return list(pool.map(fn, items))


# --- JSON -----------------------------------------------------------------------------------


def _read_json(path: Path, *, lines: bool) -> RawTable:
    objects = _json_lines(path) if lines else _json_array(path)
    tables, keys = [], {}
    for batch in _batched(objects, BATCH_ROWS):
        for obj in batch:
            keys.update(dict.fromkeys(obj))
        names = list(keys)
        tables.append(
            pa.table({n: pa.array([_json_text(o.get(n)) for o in batch], pa.string()) for n in names})
        )
    if not keys:
        return _empty()
    table = pa.concat_tables(tables, promote_options="default").select(list(keys))
    return _finish(list(table.columns), _Layout(list(keys), 0, 1))


def _json_array(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise _NotUtf8 from None
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


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as f:
        try:
            for number, line in enumerate(f, start=1):
                yield _json_object(line, number)
        except UnicodeDecodeError:
            raise _NotUtf8 from None


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
        return _number_text(value)
    return json.dumps(value, ensure_ascii=False)


def _number_text(value: float) -> str:
    """Numbers as people write them: 3 not 3.0, 0.00001 not 1e-05."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


# --- spreadsheets ---------------------------------------------------------------------------


def _read_workbook(path: Path, sheet: str | None, max_title_rows: int) -> RawTable:
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        names = list(workbook.sheet_names)
        if sheet is not None and sheet not in names:
            raise InvalidInput(
                f"工作表“{sheet}”不存在。可选的工作表：{'、'.join(names)}", fields={"sheet": sheet}
            )
        chosen, grid, merges = _pick_sheet(workbook, [sheet] if sheet is not None else names)
    except InvalidInput:
        raise
    except Exception as e:  # calamine raises its own error types for corrupt, encrypted or odd files
        message = (
            "文件有密码保护，请去掉密码后再上传"
            if "password" in str(e).lower()
            else f"无法读取 Excel 文件：{e}"
        )
        raise InvalidInput(message) from None
    raw = _read_grid(grid, merges, max_title_rows) if grid else _empty()
    raw.sheet, raw.sheets = chosen, names
    return raw


def _pick_sheet(
    workbook: CalamineWorkbook, names: list[str]
) -> tuple[str | None, list[list[Any]], list[Any]]:
    """The first of `names` with any filled cell (all sheets empty: the first, with no rows)."""
    for name in names:
        try:
            ws = workbook.get_sheet_by_name(name)
            grid = ws.to_python(skip_empty_area=False)
        except Exception:  # a chart sheet or an odd one: the provider can still pick another
            if len(names) == 1:
                raise
            continue
        if any(v != "" and v is not None for row in grid for v in row):
            return name, grid, list(ws.merged_cell_ranges or [])
    return (names[0] if names else None), [], []


def _read_grid(grid: list[list[Any]], merges: list[Any], max_title_rows: int) -> RawTable:
    width = max(len(row) for row in grid)
    if any(len(row) != width for row in grid):
        grid = [row + [""] * (width - len(row)) for row in grid]
    spans = [(r1, c1, r2, min(c2, width - 1)) for (r1, c1), (r2, c2) in merges if c1 < width]
    top = [[_cell_text(v) for v in row] for row in grid[: max_title_rows + SNIFF_RECORDS]]
    h = _find_header(top, max_title_rows, _spanned_widths(top, spans))
    layout = _merged_layout(top, spans, h) or _Layout(top[h], h + 1, h + 2)
    layout.warnings[:0] = _title_warning(top[:h])
    filled = _fill_merged_data(grid, spans, layout.first_data_row - 1)
    if filled:
        layout.warnings.append(f"已把 {filled} 处合并单元格的值填入其覆盖的每一行")
    body = grid[layout.first_data_row - 1 :]
    columns = [_column_text([row[j] for row in body]) for j in range(len(layout.headers))]
    return _finish(columns, layout)


def _spanned_widths(rows: list[list[str]], spans: list[tuple[int, int, int, int]]) -> list[int]:
    """Non-empty cells per row, a horizontally merged header cell counting for each column it
    covers — except a banner across (nearly) the whole row, which is a title."""
    widths = [sum(1 for c in row if c) for row in rows]
    full = max((len(row) for row in rows), default=0)
    for r1, c1, _r2, c2 in spans:
        if r1 < len(rows) and rows[r1][c1] and c2 > c1 and (c2 - c1 + 1) < 0.8 * full:
            widths[r1] += c2 - c1
    return widths


def _merged_layout(rows: list[list[str]], spans: list[tuple[int, int, int, int]], h: int) -> _Layout | None:
    """A two-row header: merged cells across columns in row h, the labels under them in row h+1."""
    across = [s for s in spans if s[0] == h == s[2] and s[3] > s[1]]
    if not across or h + 1 >= len(rows):
        return None
    upper = list(rows[h])
    for _r1, c1, _r2, c2 in across:
        upper[c1 + 1 : c2 + 1] = [upper[c1]] * (c2 - c1)
    lower = rows[h + 1]
    headers = [f"{u}_{d}" if u and d and u != d else u or d for u, d in zip(upper, lower, strict=True)]
    example = next((x for x in headers if "_" in x), headers[0])
    warning = f"第 {h + 1}、{h + 2} 行是带合并单元格的两行表头，已合并为“{example}”这样的列名"
    return _Layout(headers, h + 1, h + 3, [warning])


def _fill_merged_data(grid: list[list[Any]], spans: list[tuple[int, int, int, int]], first: int) -> int:
    """Cells merged down in the body keep their value only top-left; every covered row means it."""
    filled = 0
    for r1, c1, r2, c2 in spans:
        # Only cells merged down several rows: a row merged across is a note or a heading.
        if r1 < first or r1 >= len(grid) or r2 == r1:
            continue
        value = grid[r1][c1]
        for r in range(r1, min(r2 + 1, len(grid))):
            grid[r][c1 : c2 + 1] = [value] * (c2 - c1 + 1)
        filled += 1
    return filled


def _column_text(values: list[Any]) -> pa.Array:
    if all(type(v) is str for v in values):
        return pa.array(values, pa.string())
    return pa.array([_cell_text(v) for v in values], pa.string())


def _cell_text(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)
