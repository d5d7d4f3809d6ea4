"""The validation report a provider sees after an upload: what is wrong, where, and what to do.

Row numbers are the rows of the source file (1-based, as Excel shows them), at most
`MAX_ROWS` per problem, with the full count beside them.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from kaifang.datastore.layout import clean_header
from kaifang.datastore.types import (
    COLUMN_TYPE_LABELS,
    Column,
    ColumnType,
    Problem,
    RawTable,
    ValidationReport,
)

MAX_ROWS = 20
MAX_NAME_LENGTH = 64


def validate(raw: RawTable, schema: list[Column], cast_failures: dict[str, list[int]]) -> ValidationReport:
    """Check a read table against its schema and the cast's failures.

    Fatal: an empty file, no data rows, blank or duplicate headers, rows with more cells than
    the header, cells that do not fit their column's type. Warnings: rows with missing cells,
    blank rows (dropped), very long column names. (The reader's own notes — title rows
    skipped, merged header cells combined — stay in `raw.warnings`.)
    """
    problems = _shape_problems(raw)
    if raw.table.num_columns:
        problems += _header_problems(raw, schema)
        problems += _row_problems(raw)
        problems += _type_problems(raw, schema, cast_failures)
    return ValidationReport(row_count=raw.table.num_rows, problems=problems)


def source_rows(raw: RawTable, indices: list[int]) -> list[int]:
    """Source row numbers (1-based) of data rows given by 0-based index in `raw.table`.

    Blank rows were dropped from the table, so each index is shifted past the blank rows
    above it.
    """
    blanks = sorted(raw.blank_rows)
    rows = []
    for index in indices:
        row = raw.first_data_row + index
        skipped = 0
        while (now := bisect.bisect_right(blanks, row)) != skipped:
            row += now - skipped
            skipped = now
        rows.append(row)
    return rows


def _shape_problems(raw: RawTable) -> list[Problem]:
    if raw.table.num_columns == 0:
        message = "文件是空的：没有表头，也没有数据。请确认上传的是正确的文件或工作表"
        return [Problem(code="empty_file", message=message, fatal=True)]
    if raw.table.num_rows == 0:
        message = f"第 {raw.header_row} 行是表头，但下面没有数据行。请补充数据后重新上传"
        return [Problem(code="no_data", message=message, fatal=True)]
    return []


def _header_problems(raw: RawTable, schema: list[Column]) -> list[Problem]:
    problems = []
    positions: dict[str, list[int]] = defaultdict(list)
    for position, (cell, name) in enumerate(zip(raw.source_headers, raw.table.column_names, strict=True), 1):
        if clean_header(cell):
            positions[clean_header(cell)].append(position)
        else:
            message = f"第 {position} 列表头为空，请填写列名"
            problems.append(Problem(code="blank_header", message=message, fatal=True, count=1, column=name))
    for header, where in positions.items():
        if len(where) > 1:
            columns = "、".join(map(str, where))
            message = f"表头“{header}”重复出现在第 {columns} 列，请改成不同的列名"
            problems.append(
                Problem(code="duplicate_header", message=message, fatal=True, count=len(where), column=header)
            )
    names = [c.name for c in schema] or raw.table.column_names
    for position, name in enumerate(names, 1):
        if len(name) > MAX_NAME_LENGTH:
            message = (
                f"第 {position} 列的列名“{name[:20]}…”有 {len(name)} 个字符，超过 {MAX_NAME_LENGTH} 个，"
                "建议改短，方便在接口和下载文件中使用"
            )
            problems.append(Problem(code="long_header", message=message, fatal=False, count=1, column=name))
    return problems


def _row_problems(raw: RawTable) -> list[Problem]:
    width = len(raw.source_headers)
    missing = sorted(row for row, cells in raw.ragged_rows.items() if cells < width)
    extra = sorted(row for row, cells in raw.ragged_rows.items() if cells > width)
    problems = []
    if missing:
        message = (
            f"有 {len(missing)} 行的单元格比表头少（表头 {width} 列；如第 {_rows_text(missing)} 行），"
            "缺少的单元格按空值保存。请检查这些行是否错位"
        )
        problems.append(_rows_problem("missing_cells", message, False, missing))
    if extra:
        message = (
            f"有 {len(extra)} 行的单元格比表头多（表头 {width} 列；如第 {_rows_text(extra)} 行），"
            "多出的内容没有列名，无法保存。请删除多余的单元格，或为它们补上表头"
        )
        problems.append(_rows_problem("extra_cells", message, True, extra))
    if raw.blank_rows:
        blanks = sorted(raw.blank_rows)
        message = f"有 {len(blanks)} 个空行（如第 {_rows_text(blanks)} 行），已跳过"
        problems.append(_rows_problem("blank_rows", message, False, blanks))
    return problems


def _type_problems(raw: RawTable, schema: list[Column], failures: dict[str, list[int]]) -> list[Problem]:
    problems = []
    for position, column in enumerate(schema):
        indices = sorted(failures.get(column.name, []))
        if not indices or column.type is ColumnType.text:
            continue
        rows = source_rows(raw, indices[:MAX_ROWS])
        example = raw.table.column(position)[indices[0]].as_py()
        label = COLUMN_TYPE_LABELS[column.type]
        message = (
            f"“{column.name}”列有 {len(indices)} 个单元格不是{label}"
            f"（如第 {rows[0]} 行的“{example}”；行号：{_rows_text(rows)}）。"
            f"请修正这些单元格，或把该列的类型改为“{COLUMN_TYPE_LABELS[ColumnType.text]}”"
        )
        problems.append(
            Problem(
                code="type_error",
                message=message,
                fatal=True,
                count=len(indices),
                rows=rows,
                column=column.name,
            )
        )
    return problems


def _rows_problem(code: str, message: str, fatal: bool, rows: list[int]) -> Problem:
    return Problem(code=code, message=message, fatal=fatal, count=len(rows), rows=rows[:MAX_ROWS])


def _rows_text(rows: list[int]) -> str:
    shown = "、".join(map(str, rows[:5]))
    return f"{shown} 等" if len(rows) > 5 else shown
