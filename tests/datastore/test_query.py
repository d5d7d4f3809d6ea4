"""The data API's query engine on real Parquet files: parsing, every operator on every type,
sorting, keyset cursors, grouping, totals, and hostile input."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from starlette.datastructures import QueryParams

from kaifang.datastore.engines import build_copy
from kaifang.datastore.query import (
    ROW,
    DataQuery,
    Filter,
    QueryEngine,
    QueryResult,
    parse_query,
)
from kaifang.datastore.rowcopy import build_row_copy
from kaifang.datastore.types import ARROW_TYPES, Column
from kaifang.datastore.types import ColumnType as T
from kaifang.errors import InvalidInput

ODD = '备注"; DROP TABLE t; --'  # a column name that would break naive SQL
SCHEMA = [
    Column("编号", T.integer),
    Column("数量", T.integer),
    Column("区县", T.text),
    Column("金额", T.decimal),
    Column("开放", T.boolean),
    Column("日期", T.date),
    Column("时间", T.datetime),
    Column("名称", T.text),
    Column(ODD, T.text),
]
NAMES = ["=SUM(A1)", "+1", "-2", "@cmd", "\tTab", "a,b", 'q"uote', "多行\n文本", "100%", "a_b", "", "普通"]


@pytest.fixture(autouse=True)
def _empty_database() -> Iterator[None]:
    """These tests read Parquet files only: no platform database to empty."""
    yield


def make_rows(count: int = 23, seed: int = 7) -> list[dict[str, Any]]:
    """Rows with ties, nulls, negatives and spreadsheet-hostile text, in `_row` order."""
    rng = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    start = datetime(2024, 3, 1, 8, 30)
    return [
        {
            ROW: i,
            "编号": 1000 + i,
            "数量": maybe(rng.choice([-5, 0, 3, 3, 7, 12])),
            "区县": maybe(rng.choice(["东区", "西区", "南区", "北区"])),
            "金额": maybe(rng.choice([-3.0, 0.0, 12.5, 12.5, 99.99, 1e6])),
            "开放": maybe(rng.choice([True, False])),
            "日期": maybe(date(2024, 3, 1) + timedelta(days=rng.choice([-1, 0, 0, 30]))),
            "时间": maybe(start + timedelta(hours=rng.choice([0, 0, 5, -30]))),
            "名称": NAMES[i % len(NAMES)],
            ODD: maybe(rng.choice(["甲", "乙"])),
        }
        for i in range(count)
    ]


def write_parquet(path: Path, rows: list[dict[str, Any]], schema: list[Column] = SCHEMA) -> Path:
    """A version file as ingest writes it: `_row` first, small row groups to cross their borders."""
    arrow = pa.schema([pa.field(ROW, pa.int64())] + [pa.field(c.name, ARROW_TYPES[c.type]) for c in schema])
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow), path, row_group_size=4)
    return path


ROWS = make_rows()


@pytest.fixture(scope="module", params=["parquet", "copy", "rows"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> QueryEngine:
    """Every engine test runs three times: on the version's Parquet file, on its query copy, and
    with its row copy too (which answers the unsorted pages, DuckDB the rest)."""
    path = write_parquet(tmp_path_factory.mktemp("q") / "v1.parquet", ROWS)
    engine = QueryEngine(path, SCHEMA)
    if request.param in ("copy", "rows"):
        build_copy(path, path.with_suffix(".duckdb"))
        engine.use_copy(path.with_suffix(".duckdb"))
    if request.param == "rows":
        build_row_copy(path, path.with_suffix(".sqlite"))
        engine.use_row_copy(path.with_suffix(".sqlite"))
        assert engine.row_copy is not None
    return engine


def as_json(row: dict[str, Any], names: list[str] | None = None) -> dict[str, Any]:
    def value(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date | datetime) else v

    return {name: value(row[name]) for name in names or [c.name for c in SCHEMA]}


def ask(engine: QueryEngine, **params: Any) -> QueryResult:
    """Run the query the data API would run for these query parameters."""
    lists = {k: v if isinstance(v, list) else [str(v)] for k, v in params.items()}
    return engine.run(parse_query(lists, SCHEMA))


def ids(result: QueryResult) -> list[int]:
    return [r["编号"] for r in result.records]


def reference(pred: Callable[[dict[str, Any]], bool] | None = None, sort: tuple[str, ...] = ()) -> list[int]:
    """What the engine must answer, computed in Python: NULLs last either way, ties by `_row`."""
    rows = [r for r in ROWS if pred is None or pred(r)]
    for item in reversed(sort):
        name, desc = (item[1:], True) if item.startswith("-") else (item, False)
        if desc:
            rows.sort(
                key=lambda r: (r[name] is not None, r[name] if r[name] is not None else 0), reverse=True
            )
        else:
            rows.sort(key=lambda r: (r[name] is None, r[name] if r[name] is not None else 0))
    return [r["编号"] for r in rows]


# ---------------------------------------------------------------- plain reads


def test_all_rows_in_file_order_with_typed_json_values(engine: QueryEngine) -> None:
    result = ask(engine, limit=100)
    assert result.fields == [{"name": c.name, "type": str(c.type)} for c in SCHEMA]
    assert result.records == [as_json(r) for r in ROWS]
    assert result.total == len(ROWS) and result.next is None
    first = result.records[0]
    assert isinstance(first["编号"], int) and not isinstance(first["编号"], bool)
    assert all(isinstance(r["金额"], float | type(None)) for r in result.records)
    assert all(isinstance(r["开放"], bool | type(None)) for r in result.records)
    assert {type(r["日期"]) for r in result.records} <= {str, type(None)}
    assert json.loads(json.dumps(result.records)) == result.records


def test_hidden_row_column_is_never_returned_nor_addressable(engine: QueryEngine) -> None:
    assert all(ROW not in r for r in ask(engine).records)
    assert all(f["name"] != ROW for f in ask(engine).fields)
    for params in ({ROW: "1"}, {"sort": ROW}, {"fields": ROW}, {"group_by": ROW}, {"agg": f"max:{ROW}"}):
        with pytest.raises(InvalidInput, match="没有名为“_row”的列"):
            ask(engine, **params)


def test_fields_selection_keeps_the_requested_order(engine: QueryEngine) -> None:
    result = ask(engine, fields="名称, 编号", limit=2)
    assert [f["name"] for f in result.fields] == ["名称", "编号"]
    assert result.records == [as_json(r, ["名称", "编号"]) for r in ROWS[:2]]


def test_limit_offset_and_exact_total(engine: QueryEngine) -> None:
    result = ask(engine, limit=5, offset=3, 区县="东区")
    east = reference(lambda r: r["区县"] == "东区")
    assert ids(result) == east[3:8]
    assert result.total == len(east)
    counted = ask(engine, limit=0, 区县__isnull="false", 金额__gt="0")
    assert counted.records == [] and counted.next is None
    assert counted.total == len(reference(lambda r: r["区县"] is not None and (r["金额"] or 0) > 0))


def test_total_is_the_same_on_every_page(engine: QueryEngine) -> None:
    q = parse_query({"数量__gte": ["0"], "limit": ["2"]}, SCHEMA)
    first = engine.run(q)
    later = engine.run(parse_query({"数量__gte": ["0"], "limit": ["2"], "cursor": [first.next]}, SCHEMA))
    expected = len(reference(lambda r: r["数量"] is not None and r["数量"] >= 0))
    assert first.total == later.total == engine.count(q) == expected


def test_starlette_query_params_parse(engine: QueryEngine) -> None:
    qp = QueryParams("区县__in=东区,西区&sort=-金额&sort=编号&agg=&fields=编号&format=csv&bom=1")
    q = parse_query({k: qp.getlist(k) for k in qp}, SCHEMA)
    assert q.filters == [Filter("区县", "in", ("东区", "西区"))]
    assert q.sort == [("金额", True), ("编号", False)] and q.fields == ["编号"]
    expected = reference(lambda r: r["区县"] in ("东区", "西区"), ("-金额", "编号"))
    assert ids(engine.run(q)) == expected


# ---------------------------------------------------------------- every operator on every type

CASES: list[tuple[str, str, Callable[[dict[str, Any]], bool]]] = [
    ("数量", "3", lambda r: r["数量"] == 3),
    ("数量__eq", "+3", lambda r: r["数量"] == 3),
    ("数量__ne", "3", lambda r: r["数量"] != 3),
    ("数量__gt", "0", lambda r: r["数量"] is not None and r["数量"] > 0),
    ("数量__gte", "３", lambda r: r["数量"] is not None and r["数量"] >= 3),  # full-width digit
    ("数量__lt", "0", lambda r: r["数量"] is not None and r["数量"] < 0),
    ("数量__lte", "-5", lambda r: r["数量"] is not None and r["数量"] <= -5),
    ("数量__in", "3,-5", lambda r: r["数量"] in (3, -5)),
    ("数量__isnull", "true", lambda r: r["数量"] is None),
    ("金额", "12.5", lambda r: r["金额"] == 12.5),
    ("金额__ne", "12.5", lambda r: r["金额"] != 12.5),
    ("金额__gt", "1e3", lambda r: r["金额"] is not None and r["金额"] > 1000),
    ("金额__gte", "0", lambda r: r["金额"] is not None and r["金额"] >= 0),
    ("金额__lt", "-1.5", lambda r: r["金额"] is not None and r["金额"] < -1.5),
    ("金额__lte", "12", lambda r: r["金额"] is not None and r["金额"] <= 12),
    ("金额__in", "12.5,-3,7", lambda r: r["金额"] in (12.5, -3.0)),
    ("金额__isnull", "false", lambda r: r["金额"] is not None),
    ("开放", "是", lambda r: r["开放"] is True),
    ("开放__eq", "FALSE", lambda r: r["开放"] is False),
    ("开放__ne", "1", lambda r: r["开放"] is not True),
    ("开放__gt", "否", lambda r: r["开放"] is True),
    ("开放__gte", "0", lambda r: r["开放"] is not None),
    ("开放__lt", "true", lambda r: r["开放"] is False),
    ("开放__lte", "true", lambda r: r["开放"] is not None),
    ("开放__in", "是,否", lambda r: r["开放"] is not None),
    ("开放__isnull", "是", lambda r: r["开放"] is None),
    ("日期", "2024-03-01", lambda r: r["日期"] == date(2024, 3, 1)),
    ("日期__ne", "2024-03-01", lambda r: r["日期"] != date(2024, 3, 1)),
    ("日期__gt", "2024-03-01", lambda r: r["日期"] is not None and r["日期"] > date(2024, 3, 1)),
    ("日期__gte", "2024-03-01", lambda r: r["日期"] is not None and r["日期"] >= date(2024, 3, 1)),
    ("日期__lt", "2024-03-01", lambda r: r["日期"] is not None and r["日期"] < date(2024, 3, 1)),
    ("日期__lte", "2024-02-29", lambda r: r["日期"] is not None and r["日期"] <= date(2024, 2, 29)),
    ("日期__in", "2024-02-29,2024-03-31", lambda r: r["日期"] in (date(2024, 2, 29), date(2024, 3, 31))),
    ("日期__isnull", "true", lambda r: r["日期"] is None),
    ("时间", "2024-03-01T08:30:00", lambda r: r["时间"] == datetime(2024, 3, 1, 8, 30)),
    ("时间__eq", "2024-03-01T00:30:00Z", lambda r: r["时间"] == datetime(2024, 3, 1, 8, 30)),  # UTC → +8
    ("时间__ne", "2024-03-01 08:30", lambda r: r["时间"] != datetime(2024, 3, 1, 8, 30)),
    (
        "时间__gt",
        "2024-03-01T08:30",
        lambda r: r["时间"] is not None and r["时间"] > datetime(2024, 3, 1, 8, 30),
    ),
    ("时间__gte", "2024-03-01", lambda r: r["时间"] is not None and r["时间"] >= datetime(2024, 3, 1)),
    ("时间__lt", "2024-03-01", lambda r: r["时间"] is not None and r["时间"] < datetime(2024, 3, 1)),
    (
        "时间__lte",
        "2024-03-01T13:30:00+08:00",
        lambda r: r["时间"] is not None and r["时间"] <= datetime(2024, 3, 1, 13, 30),
    ),
    (
        "时间__in",
        "2024-03-01T13:30:00,2024-02-28T02:30:00",
        lambda r: r["时间"] in (datetime(2024, 3, 1, 13, 30), datetime(2024, 2, 28, 2, 30)),
    ),
    ("时间__isnull", "false", lambda r: r["时间"] is not None),
    ("区县", "东区", lambda r: r["区县"] == "东区"),
    ("区县__ne", "东区", lambda r: r["区县"] != "东区"),
    ("区县__gt", "东区", lambda r: r["区县"] is not None and r["区县"] > "东区"),
    ("区县__gte", "北区", lambda r: r["区县"] is not None and r["区县"] >= "北区"),
    ("区县__lt", "西区", lambda r: r["区县"] is not None and r["区县"] < "西区"),
    ("区县__lte", "南区", lambda r: r["区县"] is not None and r["区县"] <= "南区"),
    ("区县__in", "东区,南区", lambda r: r["区县"] in ("东区", "南区")),
    ("区县__contains", "东", lambda r: r["区县"] is not None and "东" in r["区县"]),
    ("区县__isnull", "true", lambda r: r["区县"] is None),
    ("名称__contains", "%", lambda r: "%" in r["名称"]),  # LIKE wildcards are plain characters
    ("名称__contains", "_", lambda r: "_" in r["名称"]),
    ("名称", "", lambda r: r["名称"] == ""),
    (ODD, "甲", lambda r: r[ODD] == "甲"),
]


@pytest.mark.parametrize(("param", "raw", "pred"), CASES, ids=[f"{p}={v}" for p, v, _ in CASES])
def test_operator(engine: QueryEngine, param: str, raw: str, pred: Callable[[dict[str, Any]], bool]) -> None:
    expected = reference(pred)
    assert expected, "each case must select something"
    result = ask(engine, **{param: raw, "limit": 100})
    assert ids(result) == expected
    assert result.total == len(expected)


def test_filters_combine_with_and(engine: QueryEngine) -> None:
    result = ask(engine, 区县__in="东区,西区", 数量__gte="0", 名称__contains="a")
    assert ids(result) == reference(
        lambda r: (
            r["区县"] in ("东区", "西区") and r["数量"] is not None and r["数量"] >= 0 and "a" in r["名称"]
        )
    )


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("param", "raw", "label"),
    [
        ("数量", "3.5", "整数"),
        ("数量__gt", "abc", "整数"),
        ("数量", "99999999999999999999", "整数"),
        ("金额", "1,5", "小数"),
        ("金额__lt", "nan", "小数"),
        ("金额", "inf", "小数"),
        ("开放", "也许", "是/否"),
        ("日期", "2024/03/01", "日期（YYYY-MM-DD"),
        ("日期__in", "2024-03-01,2024-02-30", "日期（YYYY-MM-DD"),
        ("时间__gte", "明天", "日期时间"),
    ],
)
def test_bad_value_names_the_column_and_the_type(
    engine: QueryEngine, param: str, raw: str, label: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        ask(engine, **{param: raw})
    column = param.split("__")[0]
    assert f"列“{column}”" in info.value.message and label in info.value.message
    assert param in info.value.fields


def test_unknown_column_lists_the_valid_ones(engine: QueryEngine) -> None:
    with pytest.raises(InvalidInput) as info:
        ask(engine, 人口="5")
    assert "没有名为“人口”的列" in info.value.message
    assert all(c.name in info.value.message for c in SCHEMA)
    with pytest.raises(InvalidInput, match="没有名为“人口”的列"):
        ask(engine, 人口__gt="5")


def test_unknown_operator_lists_the_operators(engine: QueryEngine) -> None:
    with pytest.raises(InvalidInput) as info:
        ask(engine, 数量__like="5")
    assert "未知的筛选运算符“like”" in info.value.message
    assert "eq、ne、gt、gte、lt、lte、in、contains、isnull" in info.value.message


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"数量__contains": "3"}, "contains 只能用于文本列"),
        ({"数量__isnull": "maybe"}, "true 或 false"),
        ({"limit": "10001"}, "limit 不能超过 10,000"),
        ({"limit": "-1"}, "limit 不能为负数"),
        ({"limit": "十"}, "limit 必须是整数"),
        ({"offset": "-3"}, "offset 不能为负数"),
        ({"offset": "1000001"}, "offset 不能超过"),
        ({"offset": "0", "cursor": "abc"}, "cursor 与 offset 不能同时使用"),
        ({"cursor": "not-a-cursor"}, "cursor 无效"),
        ({"cursor": "eyJzIjpbXSwiayI6W10sInIiOiJ4In0"}, "cursor 无效"),  # {"s":[],"k":[],"r":"x"}
        ({"sort": "数量,-数量"}, "sort 中有重复的列"),
        ({"sort": "-人口"}, "没有名为“人口”的列"),
        ({"group_by": "区县", "agg": "sum:区县"}, "聚合 sum 只能用于数值列"),
        ({"group_by": "区县", "agg": "avg:日期"}, "聚合 avg 只能用于数值列"),
        ({"group_by": "区县", "agg": "median:金额"}, "未知的聚合“median”"),
        ({"group_by": "区县", "agg": "sum"}, "需要指定列"),
        ({"group_by": "区县", "fields": "编号"}, "分组查询不能同时指定 fields"),
        ({"group_by": "区县", "sort": "金额"}, "没有名为“金额”的列"),
        ({"agg": "count,count"}, "重名"),
        ({"数量__in": ",".join(["1"] * 1001)}, "最多可列 1000 个值"),
    ],
)
def test_refusals_are_invalid_input_in_chinese(
    engine: QueryEngine, params: dict[str, str], needle: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        ask(engine, **params)
    assert needle in info.value.message


def test_max_limit_is_a_parameter() -> None:
    assert parse_query({"limit": ["50"]}, SCHEMA, max_limit=50).limit == 50
    assert parse_query({}, SCHEMA, default_limit=20).limit == 20
    with pytest.raises(InvalidInput, match="不能超过 50"):
        parse_query({"limit": ["51"]}, SCHEMA, max_limit=50)


def test_hand_built_queries_are_checked_too(engine: QueryEngine) -> None:
    for q in (
        DataQuery(filters=[Filter("人口", "eq", 1)]),
        DataQuery(filters=[Filter("数量", "regex", 1)]),
        DataQuery(fields=["编号; DROP"]),
        DataQuery(limit=-1),
    ):
        with pytest.raises(InvalidInput):
            engine.run(q)


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "value", ["东区' OR '1'='1", "'; DROP TABLE t; --", '") OR 1=1 --', "东区\x00", "%", "*"]
)
def test_injection_in_values_is_just_a_value(engine: QueryEngine, value: str) -> None:
    assert ask(engine, 区县=value).records == []
    assert ask(engine, 区县__in=f"{value},东区").total == len(reference(lambda r: r["区县"] == "东区"))
    assert ask(engine, limit=100).total == len(ROWS)  # the file and engine are unharmed


@pytest.mark.parametrize(
    "name", ['区县" OR 1=1 --', '区县") --', "区县; DROP TABLE t", "read_parquet('/etc/passwd')", "*"]
)
def test_injection_in_column_names_is_refused(engine: QueryEngine, name: str) -> None:
    for params in ({name: "1"}, {"sort": name}, {"fields": name}, {"group_by": name}, {"agg": f"max:{name}"}):
        with pytest.raises(InvalidInput, match="没有名为"):
            ask(engine, **params)


def test_a_column_name_with_quotes_and_sql_works_everywhere(engine: QueryEngine) -> None:
    assert ids(ask(engine, **{f"{ODD}__in": "甲,乙", "sort": f"-{ODD}"})) == reference(
        lambda r: r[ODD] in ("甲", "乙"), (f"-{ODD}",)
    )
    grouped = ask(engine, group_by=ODD, agg=f"count,max:{ODD}")
    assert [g[ODD] for g in grouped.records] == ["乙", "甲", None]
    assert [g[f"max_{ODD}"] for g in grouped.records] == ["乙", "甲", None]


def test_a_column_named_like_a_reserved_parameter(tmp_path: Path) -> None:
    schema = [Column("limit", T.integer), Column("sort", T.text)]
    rows = [{ROW: i, "limit": i, "sort": "甲乙"[i % 2]} for i in range(6)]
    engine = QueryEngine(write_parquet(tmp_path / "r.parquet", rows, schema), schema)
    q = parse_query({"limit__gte": ["3"], "sort__eq": ["甲"], "sort": ["-limit"], "limit": ["2"]}, schema)
    assert engine.run(q).records == [{"limit": 4, "sort": "甲"}]


# ---------------------------------------------------------------- sorting and cursors

SORTS = [
    ("数量",),
    ("-数量",),
    ("区县", "-金额"),
    ("-日期", "数量"),
    ("开放",),
    ("-时间",),
    ("-名称",),
    (f"-{ODD}", "金额"),
]


@pytest.mark.parametrize("sort", SORTS, ids=[",".join(s) for s in SORTS])
def test_sort_puts_nulls_last_and_breaks_ties_by_file_order(
    engine: QueryEngine, sort: tuple[str, ...]
) -> None:
    assert ids(ask(engine, sort=",".join(sort), limit=100)) == reference(sort=sort)


def walk(engine: QueryEngine, params: dict[str, Any], limit: int) -> list[int]:
    """Follow `next` from the first page to the last."""
    seen: list[int] = []
    page = ask(engine, **params, limit=limit)
    while True:
        assert len(page.records) <= limit
        seen += ids(page)
        if page.next is None:
            return seen
        assert len(page.records) == limit
        page = ask(engine, **params, limit=limit, cursor=page.next)


WALKS: list[tuple[dict[str, str], Callable[[dict[str, Any]], bool] | None, tuple[str, ...]]] = [
    ({}, None, ()),
    ({"sort": "-数量"}, None, ("-数量",)),
    ({"sort": "区县,-金额"}, None, ("区县", "-金额")),
    (
        {"sort": "-日期,-开放", "数量__gte": "0"},
        lambda r: r["数量"] is not None and r["数量"] >= 0,
        ("-日期", "-开放"),
    ),
    ({"区县__ne": "东区"}, lambda r: r["区县"] != "东区", ()),
    ({"sort": "-时间", "名称__contains": "a"}, lambda r: "a" in r["名称"], ("-时间",)),
    ({"sort": f"{ODD},名称"}, None, (ODD, "名称")),
]


@pytest.mark.parametrize(("params", "pred", "sort"), WALKS, ids=[str(w[0]) for w in WALKS])
@pytest.mark.parametrize("limit", [1, 3, 4])
def test_cursor_walk_returns_every_row_once_like_offset_pages(
    engine: QueryEngine,
    params: dict[str, str],
    pred: Callable[[dict[str, Any]], bool] | None,
    sort: tuple[str, ...],
    limit: int,
) -> None:
    expected = reference(pred, sort)
    by_cursor = walk(engine, params, limit)
    by_offset = [
        i
        for start in range(0, len(ROWS), limit)
        for i in ids(ask(engine, **params, limit=limit, offset=start))
    ]
    assert by_cursor == by_offset == expected


def test_offset_page_hands_over_to_cursor(engine: QueryEngine) -> None:
    page = ask(engine, sort="-金额", offset=5, limit=3)
    after = ask(engine, sort="-金额", cursor=page.next, limit=3)
    assert ids(page) + ids(after) == reference(sort=("-金额",))[5:11]


def test_cursor_from_another_sort_or_tampered_is_refused(engine: QueryEngine) -> None:
    token = ask(engine, sort="-数量", limit=2).next
    assert token
    with pytest.raises(InvalidInput, match="cursor 无效"):
        ask(engine, sort="数量", cursor=token)
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload["k"] = ["三"]  # a text value for an integer key
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput, match="cursor 无效"):
        ask(engine, sort="-数量", cursor=forged)
    with pytest.raises(InvalidInput, match="cursor 无效"):
        ask(engine, sort="-数量", cursor="x" * 40000)
    for params, forged_payload in [
        ({}, {"s": [], "k": [], "r": 2**70}),
        ({}, {"s": [], "k": [], "r": True}),
        ({"sort": "-数量"}, {"s": [["数量", True]], "k": [2**64], "r": 1}),
        ({"sort": "日期"}, {"s": [["日期", False]], "k": ["昨天"], "r": 1}),
        ({"group_by": "区县"}, {"s": ["groups", ["区县"], [], []], "o": -1}),
        ({"group_by": "区县"}, {"s": ["groups", ["区县"], [], []], "o": 2**64}),
        ({"group_by": "区县"}, {"s": [], "k": [], "r": 1}),
    ]:
        forged = base64.urlsafe_b64encode(json.dumps(forged_payload).encode()).decode()
        with pytest.raises(InvalidInput, match="cursor 无效"):
            ask(engine, **params, cursor=forged)


# ---------------------------------------------------------------- grouping


def groups_of(key: Callable[[dict[str, Any]], Any]) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in ROWS:
        out.setdefault(key(row), []).append(row)
    return out


def test_group_by_with_every_aggregate(engine: QueryEngine) -> None:
    result = ask(
        engine,
        group_by="区县",
        agg=["count", "sum:金额,avg:数量", "min:日期", "max:名称", "count:金额", "sum:数量"],
    )
    assert [f["name"] for f in result.fields] == [
        "区县",
        "count",
        "sum_金额",
        "avg_数量",
        "min_日期",
        "max_名称",
        "count_金额",
        "sum_数量",
    ]
    assert [f["type"] for f in result.fields] == [
        "text",
        "integer",
        "decimal",
        "decimal",
        "date",
        "text",
        "integer",
        "integer",
    ]
    groups = groups_of(lambda r: r["区县"])
    assert [g["区县"] for g in result.records] == sorted(groups, key=lambda k: (k is None, k or ""))
    assert result.total == len(groups)
    for record in result.records:
        rows = groups[record["区县"]]
        amounts = [r["金额"] for r in rows if r["金额"] is not None]
        counts = [r["数量"] for r in rows if r["数量"] is not None]
        dates = [r["日期"] for r in rows if r["日期"] is not None]
        assert record["count"] == len(rows)
        assert record["sum_金额"] == pytest.approx(sum(amounts)) if amounts else record["sum_金额"] is None
        assert record["avg_数量"] == pytest.approx(sum(counts) / len(counts))
        assert record["min_日期"] == min(dates).isoformat()
        assert record["max_名称"] == max(r["名称"] for r in rows)
        assert record["count_金额"] == len(amounts)
        assert record["sum_数量"] == sum(counts) and isinstance(record["sum_数量"], int)


def test_group_by_two_columns_defaults_to_count_and_filters_first(engine: QueryEngine) -> None:
    result = ask(engine, group_by="区县,开放", 数量__isnull="false", limit=100)
    expected = groups_of(lambda r: (r["区县"], r["开放"]) if r["数量"] is not None else "skip")
    expected.pop("skip", None)
    assert {(g["区县"], g["开放"]): g["count"] for g in result.records} == {
        k: len(v) for k, v in expected.items()
    }
    assert result.total == len(expected)


def test_aggregates_without_group_by_give_one_row(engine: QueryEngine) -> None:
    result = ask(engine, agg="count,max:金额,min:时间", 区县="东区")
    east = [r for r in ROWS if r["区县"] == "东区"]
    assert result.total == 1 and result.next is None
    assert result.records == [
        {
            "count": len(east),
            "max_金额": max(r["金额"] for r in east if r["金额"] is not None),
            "min_时间": min(r["时间"] for r in east if r["时间"] is not None).isoformat(),
        }
    ]


def test_groups_sort_by_aggregate_and_page_by_cursor(engine: QueryEngine) -> None:
    everything = ask(engine, group_by="日期", sort="-count", limit=100).records
    counts = [g["count"] for g in everything]
    assert counts == sorted(counts, reverse=True)
    pages, page = [], ask(engine, group_by="日期", sort="-count", limit=2)
    while True:
        assert page.total == len(everything)
        pages += page.records
        if page.next is None:
            break
        page = ask(engine, group_by="日期", sort="-count", limit=2, cursor=page.next)
    assert pages == everything
    assert ask(engine, group_by="日期", sort="-count", limit=2, offset=100).total == len(everything)


# ---------------------------------------------------------------- odd files


def test_non_finite_decimals_are_null_in_json(tmp_path: Path) -> None:
    schema = [Column("值", T.decimal)]
    rows = [{ROW: 0, "值": float("nan")}, {ROW: 1, "值": float("inf")}, {ROW: 2, "值": 1.5}]
    engine = QueryEngine(write_parquet(tmp_path / "n.parquet", rows, schema), schema)
    assert engine.run(DataQuery()).records == [{"值": None}, {"值": None}, {"值": 1.5}]


def test_empty_file_and_row_count_from_metadata(tmp_path: Path) -> None:
    engine = QueryEngine(write_parquet(tmp_path / "e.parquet", []), SCHEMA)
    assert engine.row_count == 0
    result = engine.run(DataQuery())
    assert (result.records, result.total, result.next) == ([], 0, None)
    assert engine.run(DataQuery(group_by=["区县"])).total == 0


def test_integer_sum_overflow_is_invalid_input(tmp_path: Path) -> None:
    schema = [Column("大数", T.integer)]
    rows = [{ROW: i, "大数": 2**62} for i in range(4)]
    engine = QueryEngine(write_parquet(tmp_path / "o.parquet", rows, schema), schema)
    with pytest.raises(InvalidInput, match="超出"):
        engine.run(DataQuery(aggs=[("sum", "大数")]))


def test_concurrent_queries_from_many_threads(engine: QueryEngine) -> None:
    """The API serves requests from a thread pool: each query gets its own DuckDB cursor."""
    asks = [
        {"sort": "-金额", "limit": 5},
        {"区县": "东区"},
        {"group_by": "开放"},
        {"数量__gt": "0", "limit": 0},
    ]
    expected = [ask(engine, **params).records for params in asks]
    copy = engine.copy
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda i: (i % 4, ask(engine, **asks[i % 4]).records), range(40)))
    assert all(records == expected[i] for i, records in answers)
    assert engine.copy == copy  # the copy served every thread (no fallback to the Parquet file)


def test_cursor_walk_when_row_numbers_have_gaps(tmp_path: Path) -> None:
    """Positional skipping is only a shortcut: a file whose `_row` has gaps still pages exactly."""
    rows = [{**row, ROW: row[ROW] * 10 + 5} for row in ROWS]
    engine = QueryEngine(write_parquet(tmp_path / "gaps.parquet", rows), SCHEMA)
    for limit in (1, 4, 7):
        assert walk(engine, {}, limit) == [r["编号"] for r in ROWS]
