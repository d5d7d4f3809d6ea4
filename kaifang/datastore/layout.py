"""Where the header is, and the cells under it: shared by every format the reader takes.

The header is the first row near the top that is wide enough and reads as labels (title rows
above it are skipped). Every format ends in `finish`: cells trimmed, empty cells null, residue
columns, blank rows and notes under the table dropped and recorded, header names cleaned.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kaifang.datastore.types import RawTable

NOTE_RE = re.compile(r"^(注|备注|说明|数据来源|资料来源|来源|制表|填报|审核|负责人|联系人|联系电话)")
NUMBERISH_RE = re.compile(r"^[+\-]?[\d.,:/%\-年月日时分秒 ]+$")
CJK = r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]"
LINEBREAK_RE = re.compile(rf"(?<={CJK})\s*[\r\n]+\s*(?={CJK})")


@dataclass
class Layout:
    """Where the header is and what surrounds it, before the body is read."""

    headers: list[str]
    header_row: int  # 1-based
    first_data_row: int  # 1-based
    warnings: list[str] = field(default_factory=list)


# --- header detection -----------------------------------------------------------------------


def find_header(rows: list[list[str]], max_title_rows: int, widths: list[int] | None = None) -> int:
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


def title_warning(rows_above: list[list[str]]) -> list[str]:
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


def number_text(value: float) -> str:
    """Numbers as people write them: 3 not 3.0, 0.00001 not 1e-05."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


# --- finishing (every format) ---------------------------------------------------------------


def finish(
    columns: list[pa.ChunkedArray | pa.Array], layout: Layout, ragged: dict[int, int] | None = None
) -> RawTable:
    """Trim cells, null empty ones, drop residue columns, blank rows and notes below the table."""
    columns = parallel(_tidy_cells, columns)
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


def empty_table() -> RawTable:
    return RawTable(table=pa.table({}), source_headers=[], header_row=0, first_data_row=1)


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
    if _needs_trim(column):
        column = pc.utf8_trim_whitespace(column)
    lengths = pc.binary_length(column)
    if pc.min(lengths).as_py() != 0:
        return column
    return pc.if_else(pc.equal(lengths, 0), pa.scalar(None, pa.string()), column)


def _needs_trim(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether any cell starts or ends with whitespace, without trimming (a copy of) every cell."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return any(_chunk_needs_trim(chunk) for chunk in chunks)


def _chunk_needs_trim(chunk: pa.Array) -> bool:
    # A screen on each cell's first and last byte, read in place from the array's buffers, then
    # the exact test on the cells it flags (in Chinese text up to a quarter of them: many
    # characters end in a byte that also ends a wide space).
    if not pa.types.is_string(chunk.type):
        return True
    _validity, offsets_buffer, data = chunk.buffers()
    if data is None or data.size == 0 or len(chunk) == 0:
        return False
    offsets = pa.Array.from_buffers(pa.int32(), len(chunk) + 1, [None, offsets_buffer], offset=chunk.offset)
    data_bytes = pa.Array.from_buffers(pa.uint8(), data.size, [None, data])
    starts, ends = offsets[:-1], offsets[1:]
    filled = pc.greater(ends, starts)
    first = pc.take(data_bytes, pc.filter(starts, filled))
    last = pc.take(data_bytes, pc.subtract(pc.filter(ends, filled), 1))
    leading, trailing = _whitespace_edges()
    flagged = pc.or_(pc.take(leading, first), pc.take(trailing, last))
    if not pc.any(flagged).as_py():
        return False
    cells = chunk.filter(filled).filter(flagged)
    trimmed = pc.utf8_trim_whitespace(cells)
    return bool(pc.sum(pc.binary_length(trimmed)).as_py() != pc.sum(pc.binary_length(cells)).as_py())


@functools.cache
def _whitespace_edges() -> tuple[pa.Array, pa.Array]:
    """For each byte value, whether a whitespace character (as `utf8_trim_whitespace` sees it)
    can start, and end, with it in UTF-8 — asked of the kernel itself over the Basic Multilingual
    Plane (no whitespace lies beyond it), so the screen can never disagree with the trim."""
    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000]
    lengths = pc.binary_length(pc.utf8_trim_whitespace(pa.array(chars))).to_pylist()
    spaces = [c.encode() for c, n in zip(chars, lengths, strict=True) if n == 0]
    starts, ends = {s[0] for s in spaces}, {s[-1] for s in spaces}
    return pa.array([b in starts for b in range(256)]), pa.array([b in ends for b in range(256)])


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


def parallel(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """pyarrow kernels release the GIL: columns are processed side by side."""
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), 4)) as pool:
        return list(pool.map(fn, items))
