"""The entry page's chart (图表): one column's groups with an aggregate, for a bar, line or pie chart.

The figures come from the same `DataQuery` group-by as the data API, so a chart never shows
something the API would answer differently; page visitors need no API key, and the open type
decides who may see it exactly as it decides who may preview the data. Bar and pie charts show
the largest groups (a pie adds the rest as 其他), line charts follow the x column's order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor
from kaifang.audit.service import DataAccess, record_access
from kaifang.audit.tags import Tag
from kaifang.datastore import service
from kaifang.datastore.engines import engine_for
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion
from kaifang.datastore.profile import LOW_CARDINALITY, Profile, profile_of
from kaifang.datastore.query import NUMERIC, ROW, DataQuery, Filter, QueryEngine
from kaifang.datastore.storage import FileStore
from kaifang.datastore.types import Column, ColumnType
from kaifang.errors import InvalidInput, NotFound

CHART_TYPES = {"bar": "柱状图", "line": "折线图", "pie": "饼图"}
AGGREGATES = {"count": "计数", "sum": "求和", "avg": "平均", "max": "最大", "min": "最小"}
SERIES_NAMES = {"count": "记录数", "sum": "合计", "avg": "平均值", "max": "最大值", "min": "最小值"}
TOP_GROUPS = 20  # bar and pie: more slices or bars than this cannot be read
LINE_POINTS = 1000
NULL_LABEL = "（空值）"
OTHER_LABEL = "其他"
MAX_NAMED = 20  # an error lists at most this many of a wide table's columns
_TEMPORAL = (ColumnType.date, ColumnType.datetime)
_CACHED = 256


@dataclass(frozen=True)
class ChartSpec:
    """What to draw: chart type, the category (x) column, the aggregate and its numeric column."""

    type: str
    x: str
    agg: str = "count"
    y: str | None = None


@dataclass
class ChartForm:
    """The chart panel of one resource on the entry page: its choices and what is drawn first."""

    url: str
    x_columns: list[Column]
    y_columns: list[Column]  # numeric: the columns 求和/平均/最大/最小 apply to
    default: ChartSpec
    chart_types: dict[str, str]
    aggregates: dict[str, str]


@dataclass
class ChartData:
    """The JSON the page's script draws: parallel `categories` and `values`, largest or ordered."""

    type: str
    x: str
    agg: str
    y: str | None
    title: str
    series: str
    categories: list[str]
    values: list[int | float | None]
    groups: int  # every group there is; more than shown when cut to the largest
    other: int | float | None = None  # pie: the groups not shown, together


def chart_url(entry_id: int, resource_id: int) -> str:
    return f"/datasets/{entry_id}/resources/{resource_id}/chart.json"


def default_spec(columns: list[Column], profile: Profile) -> ChartSpec:
    """The first category-like column (text or yes/no, few values) counted in a bar chart;
    failing that the first date column over time in a line chart, else the first column."""
    figures = {c.name: c for c in profile.columns}
    for column in columns:
        figure = figures.get(column.name)
        # repeated values: a column of names that all differ would draw bars all of height 1
        few = figure is not None and 0 < figure.distinct <= LOW_CARDINALITY and not figure.unique
        if column.type in (ColumnType.text, ColumnType.boolean) and few:
            return ChartSpec("bar", column.name)
    temporal = next((c for c in columns if c.type in _TEMPORAL), None)
    if temporal is not None:
        return ChartSpec("line", temporal.name)
    return ChartSpec("bar", columns[0].name)


def chart_form(
    entry_id: int, resource: Resource, columns: list[Column], profile: Profile
) -> ChartForm | None:
    """The panel for a table with rows; None when there is nothing to draw."""
    columns = [c for c in columns if c.name != ROW]
    if not columns or profile.rows == 0:
        return None
    return ChartForm(
        url=chart_url(entry_id, resource.id),
        x_columns=columns,
        y_columns=[c for c in columns if c.type in NUMERIC],
        default=default_spec(columns, profile),
        chart_types=CHART_TYPES,
        aggregates=AGGREGATES,
    )


# --- parameters ------------------------------------------------------------------------------------


def _clip(text: str, size: int = 40) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= size else text[:size] + "…"


def _invalid(message: str, param: str) -> InvalidInput:
    return InvalidInput(message, fields={param: message})


def _column(name: str, columns: dict[str, Column], param: str) -> Column:
    if name not in columns:
        names = list(columns)
        valid = "、".join(names[:MAX_NAMED]) + ("等" if len(names) > MAX_NAMED else "")
        raise _invalid(f"没有名为“{_clip(name)}”的字段。可选的字段：{valid}", param)
    return columns[name]


def parse_spec(params: Mapping[str, str], schema: list[Column], default: ChartSpec) -> ChartSpec:
    """`type`, `x`, `agg` and `y` from the query string, checked against the schema; a missing
    parameter takes the default. Problems raise InvalidInput naming the parameter, in Chinese."""
    columns = {c.name: c for c in schema if c.name != ROW}
    kind = params.get("type") or default.type
    if kind not in CHART_TYPES:
        choices = "、".join(f"{k}（{v}）" for k, v in CHART_TYPES.items())
        raise _invalid(f"图表类型“{_clip(kind)}”无效，可选：{choices}", "type")
    x = _column(params.get("x") or default.x, columns, "x").name
    agg = params.get("agg") or "count"
    if agg not in AGGREGATES:
        choices = "、".join(f"{k}（{v}）" for k, v in AGGREGATES.items())
        raise _invalid(f"统计方式“{_clip(agg)}”无效，可选：{choices}", "agg")
    if agg == "count":
        return ChartSpec(kind, x, agg)
    y = params.get("y")
    if not y:
        raise _invalid(f"统计方式“{AGGREGATES[agg]}”需要选择一个数值字段（参数 y）", "y")
    column = _column(y, columns, "y")
    if column.type not in NUMERIC:
        raise _invalid(f"字段“{column.name}”不是数值，不能{AGGREGATES[agg]}；请选择整数或小数字段", "y")
    return ChartSpec(kind, x, agg, column.name)


# --- figures -------------------------------------------------------------------------------------------


def _label(value: Any, column: Column) -> str:
    if value is None:
        return NULL_LABEL
    if column.type is ColumnType.boolean:
        return "是" if value else "否"
    if column.type is ColumnType.datetime:
        return str(value).replace("T", " ")
    return str(value)


def _query(spec: ChartSpec, output: str) -> DataQuery:
    aggs: list[tuple[str, str | None]] = [(spec.agg, spec.y)]
    if spec.type == "line":  # a line follows x; a missing x has no place on it
        return DataQuery(
            filters=[Filter(spec.x, "isnull", False)],
            group_by=[spec.x],
            aggs=aggs,
            sort=[(spec.x, False)],
            limit=LINE_POINTS,
        )
    return DataQuery(group_by=[spec.x], aggs=aggs, sort=[(output, True)], limit=TOP_GROUPS)


def _rest(engine: QueryEngine, spec: ChartSpec, shown: list[Any]) -> int | float | None:
    """A pie's 其他 slice: the whole minus the groups shown (counts and sums only add up)."""
    if spec.agg == "count":
        whole: Any = engine.row_count
    elif spec.agg == "sum":
        whole = engine.run(DataQuery(aggs=[("sum", spec.y)], limit=1)).records[0][f"sum_{spec.y}"]
    else:
        return None
    if whole is None:
        return None
    rest = whole - sum(v for v in shown if v is not None)
    return round(rest, 6) if isinstance(rest, float) else rest


def _figures(engine: QueryEngine, spec: ChartSpec) -> ChartData:
    output = spec.agg if spec.y is None else f"{spec.agg}_{spec.y}"
    result = engine.run(_query(spec, output))
    x_column = next(c for c in engine.schema if c.name == spec.x)
    values = [r[output] for r in result.records]
    series = SERIES_NAMES[spec.agg] if spec.y is None else f"{spec.y} {SERIES_NAMES[spec.agg]}"
    other = None
    if spec.type == "pie" and result.total > len(values):
        other = _rest(engine, spec, values)
    return ChartData(
        type=spec.type,
        x=spec.x,
        agg=spec.agg,
        y=spec.y,
        title=f"按“{spec.x}”统计的{series}",
        series=series,
        categories=[_label(r[spec.x], x_column) for r in result.records],
        values=values,
        groups=result.total,
        other=other,
    )


_charts: OrderedDict[tuple[int, str, ChartSpec], ChartData] = OrderedDict()
_charts_lock = threading.Lock()


def _remembered(engine: QueryEngine, version: ResourceVersion, spec: ChartSpec) -> ChartData:
    """Published data never changes: a chart once drawn is kept, so a busy page costs no scans."""
    key = (version.id, version.sha256, spec)
    with _charts_lock:
        if key in _charts:
            _charts.move_to_end(key)
            return _charts[key]
    data = _figures(engine, spec)
    with _charts_lock:
        _charts[key] = data
        while len(_charts) > _CACHED:
            _charts.popitem(last=False)
    return data


def chart_data(
    db: Session, actor: Actor, store: FileStore, entry_id: int, resource_id: int, params: Mapping[str, str]
) -> ChartData:
    """The figures for one chart of a table resource of the entry, for visitors who may read its
    data (the same rule as the preview and downloads: `service.readable_version`)."""
    resource, entry = service.get_resource(db, actor, resource_id)
    if entry.id != entry_id or resource.kind != ResourceKind.table:
        raise NotFound("该数据目录下没有这项表格数据")
    _resource, version, _entry = service.readable_version(db, actor, resource_id)
    schema = [c for c in service.schema_of(version) if c.name != ROW]
    if not schema:
        raise NotFound("该数据资源没有可绘图的字段")
    # The default chart needs the profile (which columns have few values); a chosen x does not.
    default = ChartSpec("bar", "") if params.get("x") else default_spec(schema, profile_of(store, version))
    spec = parse_spec(params, schema, default)
    chart = _remembered(engine_for(store, version), version, spec)
    access = DataAccess(
        entry.id, resource.id, version.id, "chart", len(chart.categories), grant_id=actor.grants.get(entry.id)
    )
    record_access(
        db, actor, Tag.data_access_query, access, summary={"x": spec.x, "agg": spec.agg, "y": spec.y}
    )
    return chart
