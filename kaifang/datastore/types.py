"""Shapes shared by the data layer: a read table, its schema, and the validation report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


class ColumnType(enum.StrEnum):
    integer = "integer"  # 整数
    decimal = "decimal"  # 小数
    boolean = "boolean"  # 布尔
    date = "date"  # 日期
    datetime = "datetime"  # 日期时间
    text = "text"  # 文本


COLUMN_TYPE_LABELS = {
    ColumnType.integer: "整数",
    ColumnType.decimal: "小数",
    ColumnType.boolean: "是/否",
    ColumnType.date: "日期",
    ColumnType.datetime: "日期时间",
    ColumnType.text: "文本",
}

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.integer: pa.int64(),
    ColumnType.decimal: pa.float64(),
    ColumnType.boolean: pa.bool_(),
    ColumnType.date: pa.date32(),
    ColumnType.datetime: pa.timestamp("s"),
    ColumnType.text: pa.string(),
}


@dataclass
class Column:
    """One column of a tabular resource as the provider reviewed it (数据字典)."""

    name: str
    type: ColumnType = ColumnType.text
    description: str = ""
    unit: str = ""
    source_name: str = ""  # the header cell as it was in the file

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": str(self.type),
            "description": self.description,
            "unit": self.unit,
            "source_name": self.source_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Column:
        return cls(
            name=data["name"],
            type=ColumnType(data.get("type", "text")),
            description=data.get("description", ""),
            unit=data.get("unit", ""),
            source_name=data.get("source_name", ""),
        )


@dataclass
class RawTable:
    """A file read as text cells: every column a pyarrow string column (nulls for empty cells).

    Column names are the cleaned, unique header names; `source_headers` keeps the cells as they
    were. Row numbers in reports are numbers in the source file (1-based), so a provider can find
    them: data row i (0-based) is source row `first_data_row + i` for CSV-like files without
    embedded line breaks, and exactly that for spreadsheets.
    """

    table: pa.Table
    source_headers: list[str]
    header_row: int  # 1-based row of the header in the file (after any title rows)
    first_data_row: int  # 1-based row of the first data row
    encoding: str | None = None  # text files: utf-8, utf-8-sig, utf-16, gb18030 …
    delimiter: str | None = None  # CSV/TSV
    sheet: str | None = None  # spreadsheets: the sheet read
    sheets: list[str] = field(default_factory=list)  # spreadsheets: every sheet, for the provider to pick
    warnings: list[str] = field(default_factory=list)  # Chinese, for the provider (e.g. merged header cells)
    blank_rows: list[int] = field(default_factory=list)  # source row numbers of rows with no value, dropped
    ragged_rows: dict[int, int] = field(default_factory=dict)  # source row → number of cells, when ≠ header


@dataclass
class Problem:
    """One kind of problem in an upload, with where it occurs."""

    code: str  # blank_header, duplicate_header, blank_rows, missing_cells, extra_cells, type_error …
    message: str  # Chinese, says what to do
    fatal: bool
    count: int = 0
    rows: list[int] = field(default_factory=list)  # up to 20 source row numbers
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "fatal": self.fatal,
            "count": self.count,
            "rows": self.rows,
            "column": self.column,
        }


@dataclass
class ValidationReport:
    row_count: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        """Fatal problems block publication; warnings don't."""
        return any(p.fatal for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row_count": self.row_count,
            "fatal": self.fatal,
            "problems": [p.to_dict() for p in self.problems],
        }
