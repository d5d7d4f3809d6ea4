"""The data API's query language: parameters in, a checked and typed `DataQuery` out.

`parse_query` turns the query parameters of `GET …/data` (and of downloads) into a `DataQuery`,
checking every column, operator and value against the resource's schema, so that a bad request
is refused with a Chinese message naming the parameter before any SQL exists; `check_query`
checks a `DataQuery` built in code (charts, the SQL console) the same way. A `cursor` is a
parameter too: the opaque token of the next page, which the engine encodes and which is decoded
and checked here. Executing a query is `query.py`'s business.
"""

from __future__ import annotations

import base64
import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from kaifang.datastore.types import COLUMN_TYPE_LABELS, Column, ColumnType
from kaifang.errors import InvalidInput

ROW = "_row"
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "isnull")
AGGREGATES = ("count", "sum", "avg", "min", "max")
RESERVED = frozenset({"fields", "sort", "limit", "offset", "cursor", "group_by", "agg", "format", "bom"})
MAX_IN_VALUES = 1000
NUMERIC = frozenset({ColumnType.integer, ColumnType.decimal})
CHINA = timezone(timedelta(hours=8))  # stored datetimes are naive local (Beijing) time

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
_MAX_CURSOR = 32768  # a cursor carries the last sort key values, long text included
_BOOLEANS = {"是": True, "否": False, "true": True, "false": False, "1": True, "0": False}


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


def quote(name: str) -> str:
    """A SQL identifier for any column name (Chinese, spaces, quotes): double quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- parsing query parameters


def invalid_param(message: str, param: str) -> InvalidInput:
    """A 422 whose `fields` names the offending parameter, so clients can point at it."""
    return InvalidInput(message, fields={param: message})


def _clip(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[:size] + "…"


def int64(value: Any) -> int:
    """`value` if it is an int DuckDB's BIGINT can hold (a bool is not); ValueError otherwise."""
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise ValueError(value)
    return value


def _to_int(text: str) -> int:
    if not _INT_RE.fullmatch(text):
        raise ValueError(text)
    return int64(int(text))


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
        raise invalid_param(message, param or column.name) from exc


def _unknown_column(name: str, columns: Sequence[str], param: str) -> InvalidInput:
    valid = "、".join(columns) or "（无）"
    return invalid_param(f"没有名为“{_clip(name)}”的列。可用的列：{valid}", param)


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
        raise invalid_param(f"{name} 必须是整数，收到“{_clip(raw)}”", name) from None
    if value < 0:
        raise invalid_param(f"{name} 不能为负数", name)
    if value > maximum:
        raise invalid_param(f"{name} 不能超过 {maximum:,}", name)
    return value


def _target(param: str, columns: dict[str, Column]) -> tuple[Column, str]:
    """The column and operator a filter parameter names (`col`, or `col__op`)."""
    if param in columns:
        return columns[param], "eq"
    base, sep, op = param.rpartition("__")
    if sep and base in columns:
        if op not in OPERATORS:
            message = f"未知的筛选运算符“{_clip(op)}”。可用的运算符：{'、'.join(OPERATORS)}"
            raise invalid_param(message, param)
        return columns[base], op
    raise _unknown_column(base if sep and op in OPERATORS else param, list(columns), param)


def _filter(column: Column, op: str, raw: str, param: str) -> Filter:
    if op == "isnull":
        flag = raw.strip().lower()
        if flag not in _BOOLEANS:
            raise invalid_param(f"{param} 的值必须是 true 或 false，收到“{_clip(raw)}”", param)
        return Filter(column.name, op, _BOOLEANS[flag])
    if op == "in":
        items = raw.split(",")
        if len(items) > MAX_IN_VALUES:
            raise invalid_param(f"{param} 最多可列 {MAX_IN_VALUES} 个值", param)
        return Filter(column.name, op, tuple(parse_value(item, column, param) for item in items))
    if op == "contains" and column.type is not ColumnType.text:
        label = COLUMN_TYPE_LABELS[column.type]
        raise invalid_param(f"contains 只能用于文本列，列“{column.name}”是{label}", param)
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
        raise invalid_param("cursor 与 offset 不能同时使用", "cursor")
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


def agg_name(func: str, column: str | None) -> str:
    """The output column of an aggregate: `count`, or `sum_金额`."""
    return func if column is None else f"{func}_{column}"


def _check_names(names: list[str], valid: Sequence[str], param: str) -> None:
    for name in names:
        if name not in valid:
            raise _unknown_column(name, valid, param)
    if len(set(names)) != len(names):
        raise invalid_param(f"{param} 中有重复的列", param)


def _check_agg(func: str, name: str | None, columns: dict[str, Column]) -> None:
    if func not in AGGREGATES:
        raise invalid_param(f"未知的聚合“{_clip(func)}”。可用的聚合：{'、'.join(AGGREGATES)}", "agg")
    if name is None:
        if func != "count":
            raise invalid_param(f"聚合 {func} 需要指定列，如 {func}:列名", "agg")
        return
    if name not in columns:
        raise _unknown_column(name, list(columns), "agg")
    if func in ("sum", "avg") and columns[name].type not in NUMERIC:
        label = COLUMN_TYPE_LABELS[columns[name].type]
        raise invalid_param(f"聚合 {func} 只能用于数值列，列“{name}”是{label}", "agg")


def _check_grouped(q: DataQuery, columns: dict[str, Column]) -> list[str]:
    """Checks group_by and aggs; the names of the grouped output columns."""
    if q.fields:
        raise invalid_param("分组查询不能同时指定 fields，请用 group_by 和 agg 选择输出列", "fields")
    _check_names(q.group_by, list(columns), "group_by")
    for func, name in q.aggs:
        _check_agg(func, name, columns)
    names = q.group_by + [agg_name(func, name) for func, name in aggs_of(q)]
    if len(set(names)) != len(names):
        raise invalid_param("分组列与聚合结果列重名，或聚合重复", "agg")
    return names


def _check_filter(f: Filter, columns: dict[str, Column]) -> None:
    if f.column not in columns:
        raise _unknown_column(f.column, list(columns), f.column)
    if f.op not in OPERATORS:
        raise invalid_param(
            f"未知的筛选运算符“{_clip(f.op)}”。可用的运算符：{'、'.join(OPERATORS)}", f.column
        )
    if f.op == "contains" and columns[f.column].type is not ColumnType.text:
        raise invalid_param(f"contains 只能用于文本列，列“{f.column}”不是文本", f.column)


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
        raise invalid_param("limit 和 offset 不能为负数", "limit" if q.limit < 0 else "offset")
    if q.cursor and q.offset:
        raise invalid_param("cursor 与 offset 不能同时使用", "cursor")


def aggs_of(q: DataQuery) -> list[tuple[str, str | None]]:
    """A group_by without aggregates counts the rows of each group."""
    return q.aggs or [("count", None)]


# ---------------------------------------------------------------- cursors


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def encode_cursor(payload: dict[str, Any]) -> str:
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
        raise invalid_param("cursor 无效：请使用上一页返回的 next，且不要改变 sort 或分组", "cursor") from exc
    return payload


def _key_from_json(value: Any, column: Column) -> Any:
    """A sort key value back from a cursor, checked against the column's type."""
    kind = column.type
    if value is None:
        return None
    if kind is ColumnType.integer and type(value) is int:
        return int64(value)
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


def row_position(cursor: str, keys: list[tuple[Column, bool]]) -> tuple[list[Any], int]:
    """The sort key values and `_row` of the last row a cursor points after."""
    payload = _decode_cursor(cursor, [[c.name, desc] for c, desc in keys])
    try:
        values, row = payload["k"], int64(payload["r"])
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError(cursor)
        return [_key_from_json(v, c) for v, (c, _) in zip(values, keys, strict=True)], row
    except (KeyError, ValueError) as exc:
        raise invalid_param("cursor 无效：请使用上一页返回的 next", "cursor") from exc


def group_offset(cursor: str, signature: list[Any]) -> int:
    """Groups are few and computed whole, so their cursor is simply the next offset."""
    try:
        offset = int64(_decode_cursor(cursor, signature).get("o"))
    except ValueError as exc:
        raise invalid_param("cursor 无效：请使用上一页返回的 next", "cursor") from exc
    if offset < 0:
        raise invalid_param("cursor 无效：请使用上一页返回的 next", "cursor")
    return offset
