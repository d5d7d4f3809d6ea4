"""The read side of a resource version: typed queries over its immutable Parquet file.

`parse_query` turns the data API's query parameters into a `DataQuery`, checking every column,
operator and value against the resource's schema; `QueryEngine` answers it with DuckDB in process.
Values are always bound as parameters and identifiers always quoted, so neither a value nor a
(Chinese) column name can change the SQL.

Every Parquet file carries a hidden `_row` column (0..n-1 in file order). It breaks ties in every
sort and anchors keyset cursors, so page 40,000 costs no more than page 1: the next page is
`WHERE (sort keys, _row) > (last row's)`, and row-group statistics on `_row` skip the rest.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from kaifang.datastore.types import COLUMN_TYPE_LABELS, Column, ColumnType
from kaifang.errors import InvalidInput

ROW = "_row"
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "isnull")
AGGREGATES = ("count", "sum", "avg", "min", "max")
RESERVED = frozenset({"fields", "sort", "limit", "offset", "cursor", "group_by", "agg", "format", "bom"})
MAX_IN_VALUES = 1000
NUMERIC = frozenset({ColumnType.integer, ColumnType.decimal})
CHINA = timezone(timedelta(hours=8))  # stored datetimes are naive local (Beijing) time

_COMPARISONS = {"eq": "=", "ne": "IS DISTINCT FROM", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_HINTS = {
    ColumnType.integer: "整数（如 42）",
    ColumnType.decimal: "小数（如 3.14）",
    ColumnType.boolean: "是/否（是、否、true、false、1、0）",
    ColumnType.date: "日期（YYYY-MM-DD，如 2024-01-31）",
    ColumnType.datetime: "日期时间（ISO 8601，如 2024-01-31T08:30:00）",
    ColumnType.text: "文本",
}
_INT_RE = re.compile(r"[+-]?[0-9]+")
_DECIMAL_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOOLEANS = {"是": True, "否": False, "true": True, "false": False, "1": True, "0": False}
_MAX_CURSOR = 32768  # a cursor carries the last sort key values, long text included
_TOTALS_CACHED = 256


@dataclass(frozen=True)
class Filter:
    """One condition: `value` is typed for the column; a tuple for `in`, a bool for `isnull`."""

    column: str
    op: str
    value: Any


@dataclass
class DataQuery:
    """What a caller asks of one resource version (see DESIGN.md, `GET …/data`)."""

    fields: list[str] | None = None
    filters: list[Filter] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    limit: int = 100
    offset: int = 0
    cursor: str | None = None
    group_by: list[str] = field(default_factory=list)
    aggs: list[tuple[str, str | None]] = field(default_factory=list)  # (func, column or None)

    @property
    def grouped(self) -> bool:
        return bool(self.group_by or self.aggs)


@dataclass
class QueryResult:
    """One page: typed JSON-ready records, the exact number of matches and the next page's cursor."""

    fields: list[dict[str, str]]
    records: list[dict[str, Any]]
    total: int
    next: str | None


def quote(name: str) -> str:
    """A SQL identifier for any column name (Chinese, spaces, quotes): double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- parsing query parameters


def _invalid(message: str, param: str) -> InvalidInput:
    return InvalidInput(message, fields={param: message})


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _to_int(text: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    return _int64(int(text))


def _to_float(text: str) -> float:
    value = float(text) if _DECIMAL_RE.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _to_bool(text: str) -> bool:
    return _BOOLEANS[text.lower()]


def _to_date(text: str) -> date:
    if not _DATE_RE.fullmatch(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def _to_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(CHINA).replace(tzinfo=None)
    return value


_PARSERS: dict[ColumnType, Callable[[str], Any]] = {
    ColumnType.integer: _to_int,
    ColumnType.decimal: _to_float,
    ColumnType.boolean: _to_bool,
    ColumnType.date: _to_date,
    ColumnType.datetime: _to_datetime,
}


def parse_value(raw: str, column: Column, param: str | None = None) -> Any:
    """One query-string value as the column's type; full-width digits and letters are accepted."""
    if column.type is ColumnType.text:
        return raw
    try:
        return _PARSERS[column.type](unicodedata.normalize("NFKC", raw).strip())
    except (ValueError, KeyError) as exc:
        message = f"列“{column.name}”的值“{_clip(raw)}”不是有效的{_HINTS[column.type]}"
        raise _invalid(message, param or column.name) from exc


def _unknown_column(name: str, columns: Sequence[str], param: str) -> InvalidInput:
    valid = "、".join(columns) or "（无）"
    return _invalid(f"没有名为“{_clip(name)}”的列。可用的列：{valid}", param)


def _split(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _single(params: Mapping[str, list[str]], name: str) -> str | None:
    values = params.get(name) or []
    return values[-1] if values else None


def _whole(params: Mapping[str, list[str]], name: str, default: int, maximum: int) -> int:
    raw = _single(params, name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = _to_int(raw.strip())
    except ValueError:
        raise _invalid(f"{name} 必须是整数，收到“{_clip(raw)}”", name) from None
    if value < 0:
        raise _invalid(f"{name} 不能为负数", name)
    if value > maximum:
        raise _invalid(f"{name} 不能超过 {maximum:,}", name)
    return value


def _target(param: str, columns: dict[str, Column]) -> tuple[Column, str]:
    """The column and operator a filter parameter names (`col`, or `col__op`)."""
    if param in columns:
        return columns[param], "eq"
    base, sep, op = param.rpartition("__")
    if sep and base in columns:
        if op not in OPERATORS:
            message = f"未知的筛选运算符“{_clip(op)}”。可用的运算符：{'、'.join(OPERATORS)}"
            raise _invalid(message, param)
        return columns[base], op
    raise _unknown_column(base if sep and op in OPERATORS else param, list(columns), param)


def _filter(column: Column, op: str, raw: str, param: str) -> Filter:
    if op == "isnull":
        flag = raw.strip().lower()
        if flag not in _BOOLEANS:
            raise _invalid(f"{param} 的值必须是 true 或 false，收到“{_clip(raw)}”", param)
        return Filter(column.name, op, _BOOLEANS[flag])
    if op == "in":
        items = raw.split(",")
        if len(items) > MAX_IN_VALUES:
            raise _invalid(f"{param} 最多可列 {MAX_IN_VALUES} 个值", param)
        return Filter(column.name, op, tuple(parse_value(item, column, param) for item in items))
    if op == "contains" and column.type is not ColumnType.text:
        label = COLUMN_TYPE_LABELS[column.type]
        raise _invalid(f"contains 只能用于文本列，列“{column.name}”是{label}", param)
    return Filter(column.name, op, parse_value(raw, column, param))


def _sort(values: list[str]) -> list[tuple[str, bool]]:
    return [(item[1:].strip(), True) if item.startswith("-") else (item, False) for item in _split(values)]


def _aggs(values: list[str]) -> list[tuple[str, str | None]]:
    aggs: list[tuple[str, str | None]] = []
    for item in _split(values):
        func, sep, column = item.partition(":")
        aggs.append((func.strip().lower(), column.strip() if sep else None))
    return aggs


def parse_query(
    params: Mapping[str, list[str]],
    schema: list[Column],
    *,
    max_limit: int = 10_000,
    default_limit: int = 100,
    max_offset: int = 1_000_000,
) -> DataQuery:
    """The data API's query parameters (name → every value given) as a checked, typed `DataQuery`.

    Reserved: `fields`, `sort` (`col`/`-col`), `limit`, `offset`, `cursor`, `group_by`, `agg`
    (`count`, `sum:col`, `avg:col`, `min:col`, `max:col`); `format` and `bom` are ignored here.
    Any other parameter is a filter `col=v` or `col__op=v`; a column named like a reserved word is
    filtered with `col__eq=v`. Problems raise `InvalidInput` naming the parameter.
    """
    params = {name: [values] if isinstance(values, str) else list(values) for name, values in params.items()}
    columns = {c.name: c for c in schema if c.name != ROW}
    filters = [
        _filter(*_target(name, columns), raw, name)
        for name, values in params.items()
        if name not in RESERVED
        for raw in values
    ]
    cursor = _single(params, "cursor") or None
    if cursor is not None and (_single(params, "offset") or "").strip():
        raise _invalid("cursor 与 offset 不能同时使用", "cursor")
    fields = _split(params.get("fields", []))
    query = DataQuery(
        fields=fields or None,
        filters=filters,
        sort=_sort(params.get("sort", [])),
        limit=_whole(params, "limit", default_limit, max_limit),
        offset=_whole(params, "offset", 0, max_offset),
        cursor=cursor,
        group_by=_split(params.get("group_by", [])),
        aggs=_aggs(params.get("agg", [])),
    )
    check_query(query, schema)
    return query


# ---------------------------------------------------------------- checking a query


def _agg_name(func: str, column: str | None) -> str:
    return func if column is None else f"{func}_{column}"


def _check_names(names: list[str], valid: Sequence[str], param: str) -> None:
    for name in names:
        if name not in valid:
            raise _unknown_column(name, valid, param)
    if len(set(names)) != len(names):
        raise _invalid(f"{param} 中有重复的列", param)


def _check_agg(func: str, name: str | None, columns: dict[str, Column]) -> None:
    if func not in AGGREGATES:
        raise _invalid(f"未知的聚合“{_clip(func)}”。可用的聚合：{'、'.join(AGGREGATES)}", "agg")
    if name is None:
        if func != "count":
            raise _invalid(f"聚合 {func} 需要指定列，如 {func}:列名", "agg")
        return
    if name not in columns:
        raise _unknown_column(name, list(columns), "agg")
    if func in ("sum", "avg") and columns[name].type not in NUMERIC:
        label = COLUMN_TYPE_LABELS[columns[name].type]
        raise _invalid(f"聚合 {func} 只能用于数值列，列“{name}”是{label}", "agg")


def _check_grouped(q: DataQuery, columns: dict[str, Column]) -> list[str]:
    """Checks group_by and aggs; the names of the grouped output columns."""
    if q.fields:
        raise _invalid("分组查询不能同时指定 fields，请用 group_by 和 agg 选择输出列", "fields")
    _check_names(q.group_by, list(columns), "group_by")
    for func, name in q.aggs:
        _check_agg(func, name, columns)
    names = q.group_by + [_agg_name(func, name) for func, name in _aggs_of(q)]
    if len(set(names)) != len(names):
        raise _invalid("分组列与聚合结果列重名，或聚合重复", "agg")
    return names


def _check_filter(f: Filter, columns: dict[str, Column]) -> None:
    if f.column not in columns:
        raise _unknown_column(f.column, list(columns), f.column)
    if f.op not in OPERATORS:
        raise _invalid(f"未知的筛选运算符“{_clip(f.op)}”。可用的运算符：{'、'.join(OPERATORS)}", f.column)
    if f.op == "contains" and columns[f.column].type is not ColumnType.text:
        raise _invalid(f"contains 只能用于文本列，列“{f.column}”不是文本", f.column)


def check_query(q: DataQuery, schema: list[Column]) -> None:
    """Every name and operator in `q` exists for this schema; InvalidInput otherwise."""
    columns = {c.name: c for c in schema if c.name != ROW}
    for f in q.filters:
        _check_filter(f, columns)
    if q.grouped:
        outputs = _check_grouped(q, columns)
    else:
        _check_names(q.fields or [], list(columns), "fields")
        outputs = list(columns)
    sort = [name for name, _ in q.sort]
    _check_names(sort, outputs, "sort")
    if q.limit < 0 or q.offset < 0:
        raise _invalid("limit 和 offset 不能为负数", "limit" if q.limit < 0 else "offset")
    if q.cursor and q.offset:
        raise _invalid("cursor 与 offset 不能同时使用", "cursor")


def _aggs_of(q: DataQuery) -> list[tuple[str, str | None]]:
    """A group_by without aggregates counts the rows of each group."""
    return q.aggs or [("count", None)]


# ---------------------------------------------------------------- cursors


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_jsonable)
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str, signature: list[Any]) -> dict[str, Any]:
    try:
        if len(cursor) > _MAX_CURSOR:
            raise ValueError(cursor)
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(payload, dict) or payload.get("s") != signature:
            raise ValueError(cursor)
    except ValueError as exc:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _invalid("cursor 无效：请使用上一页返回的 next，且不要改变 sort 或分组", "cursor") from exc
    return payload


def _int64(value: Any) -> int:
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise ValueError(value)
    return value


def _key_from_json(value: Any, column: Column) -> Any:
    """A sort key value back from a cursor, checked against the column's type."""
    kind = column.type
    if value is None:
        return None
    if kind is ColumnType.integer and type(value) is int:
        return _int64(value)
    if kind is ColumnType.decimal and type(value) in (int, float):
        return float(value)
    if kind is ColumnType.boolean and type(value) is bool:
        return value
    if isinstance(value, str):
        if kind is ColumnType.text:
            return value
        if kind is ColumnType.date:
            return date.fromisoformat(value)
        if kind is ColumnType.datetime:
            return datetime.fromisoformat(value)
    raise ValueError(value)


def _row_position(cursor: str, keys: list[tuple[Column, bool]]) -> tuple[list[Any], int]:
    """The sort key values and `_row` of the last row a cursor points after."""
    payload = _decode_cursor(cursor, [[c.name, desc] for c, desc in keys])
    try:
        values, row = payload["k"], _int64(payload["r"])
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError(cursor)
        return [_key_from_json(v, c) for v, (c, _) in zip(values, keys, strict=True)], row
    except (KeyError, ValueError) as exc:
        raise _invalid("cursor 无效：请使用上一页返回的 next", "cursor") from exc


def _group_offset(cursor: str, signature: list[Any]) -> int:
    """Groups are few and computed whole, so their cursor is simply the next offset."""
    try:
        offset = _int64(_decode_cursor(cursor, signature).get("o"))
    except ValueError as exc:
        raise _invalid("cursor 无效：请使用上一页返回的 next", "cursor") from exc
    if offset < 0:
        raise _invalid("cursor 无效：请使用上一页返回的 next", "cursor")
    return offset


# ---------------------------------------------------------------- SQL


def _condition(f: Filter) -> tuple[str, list[Any]]:
    ident = quote(f.column)
    if f.op == "isnull":
        return f"{ident} IS {'' if f.value else 'NOT '}NULL", []
    if f.op == "in":
        values = list(f.value)
        return (f"{ident} IN ({', '.join('?' * len(values))})" if values else "FALSE"), values
    if f.op == "contains":
        return f"contains({ident}, ?)", [f.value]
    if f.value is None and f.op in ("eq", "ne"):
        return f"{ident} IS {'' if f.op == 'eq' else 'NOT '}NULL", []
    return f"{ident} {_COMPARISONS[f.op]} ?", [f.value]


def _where(conditions: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    if not conditions:
        return "", []
    return " WHERE " + " AND ".join(sql for sql, _ in conditions), [p for _, ps in conditions for p in ps]


def _after(keys: list[tuple[Column, bool]], values: list[Any], row: int) -> tuple[str, list[Any]]:
    """Rows strictly after the cursor in `ORDER BY keys… NULLS LAST, _row` (keyset pagination)."""
    sql, params = f"{quote(ROW)} > ?", [row]
    for (column, desc), value in reversed(list(zip(keys, values, strict=True))):
        ident = quote(column.name)
        if value is None:  # NULLs sort last and tie with each other: only NULL rows can follow
            sql = f"({ident} IS NULL AND {sql})"
        else:
            sql = f"({ident} {'<' if desc else '>'} ? OR {ident} IS NULL OR ({ident} = ? AND {sql}))"
            params = [value, value, *params]
    return sql, params


def _order(keys: list[tuple[str, bool]]) -> str:
    if not keys:
        return ""
    return " ORDER BY " + ", ".join(f"{quote(n)} {'DESC' if d else 'ASC'} NULLS LAST" for n, d in keys)


def _select(columns: str, source: str, rest: str = "") -> str:
    """The one place SQL text is assembled: from quoted identifiers and `?` placeholders only."""
    return f"SELECT {columns} FROM {source}{rest}"  # noqa: S608


_PARQUET = "read_parquet(?)"


def _agg_sql(func: str, column: Column | None) -> str:
    if column is None:
        return "count(*)"
    if func == "sum" and column.type is ColumnType.integer:
        return f"CAST(sum({quote(column.name)}) AS BIGINT)"  # DuckDB sums BIGINT as HUGEINT
    return f"{func}({quote(column.name)})"


def _agg_type(func: str, column: Column | None) -> ColumnType:
    if func == "count" or column is None:
        return ColumnType.integer
    return ColumnType.decimal if func == "avg" else column.type


# ---------------------------------------------------------------- DuckDB


class _Database:
    """One in-process DuckDB for the process; each query gets its own cursor (thread-safe)."""

    CONFIG: ClassVar[dict[str, Any]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "preserve_insertion_order": True,  # unsorted pages come in file (= `_row`) order
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._con: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None or self._pid != os.getpid():  # a forked worker needs its own
                self._con = duckdb.connect(":memory:", config=self.CONFIG)
                self._con.execute("SET parquet_metadata_cache = true")  # files never change
                self._pid = os.getpid()
            return self._con.cursor()


_database = _Database()


def _out_of_range() -> InvalidInput:
    return InvalidInput("查询结果超出可表示的范围，请缩小筛选条件或改用其他聚合")


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    cur = _database.cursor()
    try:
        return cur.execute(sql, params).fetchall()
    except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
        raise _out_of_range() from exc
    finally:
        cur.close()


def _json_converter(kind: ColumnType) -> Callable[[Any], Any] | None:
    if kind in (ColumnType.date, ColumnType.datetime):
        return lambda v: None if v is None else v.isoformat()
    if kind is ColumnType.decimal:
        return lambda v: v if v is None or math.isfinite(v) else None
    return None


def _records(columns: list[Column], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = [c.name for c in columns]
    converters = [_json_converter(c.type) for c in columns]
    if not any(converters):
        return [dict(zip(names, row, strict=False)) for row in rows]
    return [
        {n: (cv(v) if cv else v) for n, cv, v in zip(names, converters, row, strict=False)} for row in rows
    ]


# ---------------------------------------------------------------- the engine


class QueryEngine:
    """Answers `DataQuery`s over one resource version's Parquet file (hidden `_row` first)."""

    def __init__(self, parquet_path: Path, schema: list[Column]) -> None:
        self.path = str(parquet_path)
        self.schema = [c for c in schema if c.name != ROW]
        self._columns = {c.name: c for c in self.schema}
        self._row_count: int | None = None
        self._totals: OrderedDict[Any, int] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def row_count(self) -> int:
        """Rows in the file, from the Parquet footer (no scan)."""
        if self._row_count is None:
            self._row_count = pq.ParquetFile(self.path).metadata.num_rows
        return self._row_count

    def columns(self, q: DataQuery) -> list[Column]:
        """The typed output columns of `q`: chosen fields, or group columns then aggregates."""
        if not q.grouped:
            return [self._columns[n] for n in q.fields] if q.fields else list(self.schema)
        groups = [self._columns[n] for n in q.group_by]
        return groups + [
            Column(name=_agg_name(f, n), type=_agg_type(f, self._columns.get(n or "")))
            for f, n in _aggs_of(q)
        ]

    def fields(self, q: DataQuery) -> list[dict[str, str]]:
        """The `fields` of a response: name and type of each output column."""
        return [{"name": c.name, "type": str(c.type)} for c in self.columns(q)]

    def run(self, q: DataQuery) -> QueryResult:
        """One page of `q`, its exact total (limit ignored) and the cursor of the next page."""
        check_query(q, self.schema)
        return self._run_groups(q) if q.grouped else self._run_rows(q)

    def count(self, q: DataQuery) -> int:
        """Exact number of rows (or groups) matching `q`'s filters, cached per filter set."""
        check_query(q, self.schema)
        if not q.filters and not q.grouped:
            return self.row_count
        key: Any = (tuple(q.group_by) if q.grouped else None, tuple(q.filters))
        try:
            with self._lock:
                return self._totals[key]
        except KeyError:
            pass
        except TypeError:  # a hand-built filter with an unhashable value: count, don't cache
            return self._count(q)
        total = self._count(q)
        self._remember(key, total)
        return total

    def batches(self, q: DataQuery, batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
        """Every row (or group) of `q` as Arrow batches, without `_row`; limit and paging ignored.

        The query runs before this returns, so a bad query raises here and not mid-download;
        iterate to the end (or close the iterator) to release the DuckDB cursor.
        """
        check_query(q, self.schema)
        sql, params = self._export_sql(q)
        cur = _database.cursor()
        try:
            reader = cur.sql(sql, params=params).to_arrow_reader(batch_size)
        except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
            cur.close()
            raise _out_of_range() from exc
        return _stream(reader, cur)

    # -- rows

    def _sort_keys(self, q: DataQuery) -> list[tuple[Column, bool]]:
        return [(self._columns[name], desc) for name, desc in q.sort]

    def _run_rows(self, q: DataQuery) -> QueryResult:
        out = self.columns(q)
        keys = self._sort_keys(q)
        rows = self._page_rows(q, out, keys) if q.limit else []
        page = rows[: q.limit]
        cursor = None
        if len(rows) > q.limit:
            last = page[-1]
            values = [last[len(out) + i] for i in range(len(keys))]
            signature = [[c.name, d] for c, d in keys]
            cursor = _encode_cursor({"s": signature, "k": values, "r": last[-1]})
        complete = bool(q.limit) and not q.offset and not q.cursor and len(rows) <= q.limit
        total = len(rows) if complete else self.count(q)
        return QueryResult(self.fields(q), _records(out, page), total, cursor)

    def _page_rows(
        self, q: DataQuery, out: list[Column], keys: list[tuple[Column, bool]]
    ) -> list[tuple[Any, ...]]:
        """limit+1 rows: the output columns, then the sort keys, then `_row` (for the cursor)."""
        conditions = [_condition(f) for f in q.filters]
        if not q.cursor:
            return self._rows(out, keys, conditions, q.limit + 1, q.offset)
        values, row = _row_position(q.cursor, keys)
        if not keys and not conditions:
            # `_row` is the row's position, so OFFSET skips whole row groups without decoding
            # `_row` up to the cursor; the first row proves it, else the keyset query decides.
            rows = self._rows(out, keys, conditions, q.limit + 1, row + 1)
            if rows and rows[0][-1] == row + 1:
                return rows
        return self._rows(out, keys, [*conditions, _after(keys, values, row)], q.limit + 1, 0)

    def _rows(
        self,
        out: list[Column],
        keys: list[tuple[Column, bool]],
        conditions: list[Any],
        limit: int,
        offset: int,
    ) -> list[tuple[Any, ...]]:
        where, params = _where(conditions)
        select = ", ".join(quote(n) for n in [c.name for c in out] + [c.name for c, _ in keys] + [ROW])
        # Without an explicit sort the file order is `_row` order (insertion order is preserved),
        # so no ORDER BY is needed and DuckDB stops reading after the page.
        order = _order([(c.name, d) for c, d in keys] + [(ROW, False)]) if keys else ""
        sql = _select(select, _PARQUET, f"{where}{order} LIMIT ? OFFSET ?")
        return _fetch(sql, [self.path, *params, limit, offset])

    # -- groups

    def _group_sql(self, q: DataQuery) -> tuple[str, list[Any]]:
        where, params = _where([_condition(f) for f in q.filters])
        aggs = [
            f"{_agg_sql(func, self._columns.get(name or ''))} AS {quote(_agg_name(func, name))}"
            for func, name in _aggs_of(q)
        ]
        select = ", ".join([quote(n) for n in q.group_by] + aggs)
        group = f" GROUP BY {', '.join(quote(n) for n in q.group_by)}" if q.group_by else ""
        return _select(select, _PARQUET, where + group), [self.path, *params]

    def _group_order(self, q: DataQuery) -> str:
        named = {name for name, _ in q.sort}
        return _order(q.sort + [(n, False) for n in q.group_by if n not in named])

    def _run_groups(self, q: DataQuery) -> QueryResult:
        signature = ["groups", q.group_by, [list(a) for a in q.aggs], [list(s) for s in q.sort]]
        offset = _group_offset(q.cursor, signature) if q.cursor else q.offset
        rows: list[tuple[Any, ...]] = []
        if q.limit:
            inner, params = self._group_sql(q)
            # The window counts the groups in the same pass as the aggregation.
            sql = _select("*, count(*) OVER ()", f"({inner})", f"{self._group_order(q)} LIMIT ? OFFSET ?")
            rows = _fetch(sql, [*params, q.limit + 1, offset])
        total = rows[0][-1] if rows else (0 if q.limit and not offset else self.count(q))
        page = [row[:-1] for row in rows[: q.limit]]
        cursor = None
        if len(rows) > q.limit:
            cursor = _encode_cursor({"s": signature, "o": offset + q.limit})
        return QueryResult(self.fields(q), _records(self.columns(q), page), total, cursor)

    # -- counting and exports

    def _count(self, q: DataQuery) -> int:
        if q.grouped:
            inner, params = self._group_sql(q)
            return int(_fetch(_select("count(*)", f"({inner})"), params)[0][0])
        where, params = _where([_condition(f) for f in q.filters])
        return int(_fetch(_select("count(*)", _PARQUET, where), [self.path, *params])[0][0])

    def _remember(self, key: Any, total: int) -> None:
        with self._lock:
            self._totals[key] = total
            while len(self._totals) > _TOTALS_CACHED:
                self._totals.popitem(last=False)

    def _export_sql(self, q: DataQuery) -> tuple[str, list[Any]]:
        if q.grouped:
            inner, params = self._group_sql(q)
            return _select("*", f"({inner})", self._group_order(q)), params
        where, params = _where([_condition(f) for f in q.filters])
        select = ", ".join(quote(c.name) for c in self.columns(q))
        order = _order([*q.sort, (ROW, False)]) if q.sort else ""
        return _select(select, _PARQUET, where + order), [self.path, *params]


def _stream(reader: pa.RecordBatchReader, cur: duckdb.DuckDBPyConnection) -> Iterator[pa.RecordBatch]:
    """The reader's batches, at least one (empty if nothing matched) so writers see the columns."""
    empty = True
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
                raise _out_of_range() from exc
            empty = False
            yield batch
        if empty:
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)
    finally:
        cur.close()
