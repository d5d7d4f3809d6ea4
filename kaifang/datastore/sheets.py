"""Reading workbooks (XLSX, XLSM, XLS) with calamine: the sheet, title rows, merged cells.

The first sheet with any filled cell is read unless the provider names one. Title rows above
the header are skipped, a header merged across two rows becomes one row of `上_下` names, and
a value merged down the body is filled into every row it covers. Cells become text the way
Excel shows them (3 not 3.0, dates without a midnight time).
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pyarrow as pa
from python_calamine import CalamineWorkbook

from kaifang.datastore.layout import Layout, empty_table, find_header, finish, number_text, title_warning
from kaifang.datastore.types import RawTable
from kaifang.errors import InvalidInput

SNIFF_ROWS = 200  # rows under the title area looked at to find the header

Span = tuple[int, int, int, int]  # first row, first column, last row, last column (0-based)


def read_workbook(path: Path, sheet: str | None, max_title_rows: int) -> RawTable:
    """The named sheet, or the first with data; InvalidInput for unknown sheets and unreadable files."""
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
    raw = _read_grid(grid, merges, max_title_rows) if grid else empty_table()
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
    top = [[_cell_text(v) for v in row] for row in grid[: max_title_rows + SNIFF_ROWS]]
    h = find_header(top, max_title_rows, _spanned_widths(top, spans))
    layout = _merged_layout(top, spans, h) or Layout(top[h], h + 1, h + 2)
    layout.warnings[:0] = title_warning(top[:h])
    filled = _fill_merged_data(grid, spans, layout.first_data_row - 1)
    if filled:
        layout.warnings.append(f"已把 {filled} 处合并单元格的值填入其覆盖的每一行")
    body = grid[layout.first_data_row - 1 :]
    columns = [_column_text([row[j] for row in body]) for j in range(len(layout.headers))]
    return finish(columns, layout)


def _spanned_widths(rows: list[list[str]], spans: list[Span]) -> list[int]:
    """Non-empty cells per row, a horizontally merged header cell counting for each column it
    covers — except a banner across (nearly) the whole row, which is a title."""
    widths = [sum(1 for c in row if c) for row in rows]
    full = max((len(row) for row in rows), default=0)
    for r1, c1, _r2, c2 in spans:
        if r1 < len(rows) and rows[r1][c1] and c2 > c1 and (c2 - c1 + 1) < 0.8 * full:
            widths[r1] += c2 - c1
    return widths


def _merged_layout(rows: list[list[str]], spans: list[Span], h: int) -> Layout | None:
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
    return Layout(headers, h + 1, h + 3, [warning])


def _fill_merged_data(grid: list[list[Any]], spans: list[Span], first: int) -> int:
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
        return number_text(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)
