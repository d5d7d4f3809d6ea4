"""The column profile (字段概况) and the chart figures (图表) of the entry page: exact figures on a
small known table, the profile cache, who sees them, and the chart endpoint's answers and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform
from kaifang.datastore import chart, profile
from kaifang.datastore.models import ResourceVersion
from kaifang.datastore.types import ColumnType
from tests.conftest import CJK, Factory, assert_error, login, pass_review

CSV = (
    "站点名称,区,PM2.5,监测日期,达标,备注\n"
    "和平站,和平区,35,2026-11-01,是,\n"
    "河西站,河西区,58,2026-11-01,否,风大\n"
    "南开站,南开区,41,2026-11-02,是,正常\n"
    "滨海站,和平区,,2026-11-02,是,\n"
    "东丽站,和平区,20,2026-11-03,否,正常\n"
    "西青站,河西区,30,2026-11-03,是,正常\n"
)
# 25 categories c00…c24, category i holding the value i: more groups than a bar or pie shows.
MANY = "类别,值\n" + "".join(f"c{i:02d},{i}\n" for i in range(25))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def publish(
    client: TestClient, platform: Platform, key: str, entry_id: int, text: str, filename: str = "空气.csv"
) -> int:
    """Upload a file to the entry through the API, read it and publish version 1."""
    response = client.post(
        f"/api/v1/datasets/{entry_id}/resources",
        headers=auth(key),
        files={"file": (filename, text.encode(), "text/csv")},
    )
    assert response.status_code == 202, response.text
    rid = int(response.json()["id"])
    platform.jobs.drain()
    pass_review(client, rid, 1, auth(key))
    published = client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(key))
    assert published.status_code == 200, published.text
    return rid


@pytest.fixture
def world(client: TestClient, platform: Platform, factory: Factory) -> dict[str, Any]:
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    regulator = factory.user("reg", system_role="regulator")
    key = factory.api_key(pub)
    entries, rids = {}, {}
    for open_type in ("unconditional", "conditional", "closed"):
        entries[open_type] = factory.entry(
            pub, org, title=f"空气质量{open_type}", open_type=open_type, regulator=regulator
        )
        rids[open_type] = publish(client, platform, key, entries[open_type], CSV)
    rids["many"] = publish(client, platform, key, entries["unconditional"], MANY, "类别.csv")
    return {"entries": entries, "rids": rids, "key": key}


def version_of(platform: Platform, rid: int) -> ResourceVersion:
    with platform.db.session() as db:
        version = db.query(ResourceVersion).filter_by(resource_id=rid, number=1).one()
        db.expunge(version)
    return version


# --- the profile ---------------------------------------------------------------------------------------


def test_profile_figures_are_exact(platform: Platform, world: dict[str, Any]) -> None:
    result = profile.profile_of(platform.store, version_of(platform, world["rids"]["unconditional"]))
    assert result.rows == 6
    columns = {c.name: c for c in result.columns}
    assert list(columns) == ["站点名称", "区", "PM2.5", "监测日期", "达标", "备注"]  # never `_row`

    name = columns["站点名称"]
    assert (name.type, name.nulls, name.distinct, name.unique) == (ColumnType.text, 0, 6, True)
    assert (name.min_length, name.max_length, name.top) == (3, 3, [])  # all different: no top values

    district = columns["区"]
    assert (district.nulls, district.distinct, district.unique) == (0, 3, False)
    assert [(t.value, t.count) for t in district.top] == [("和平区", 3), ("河西区", 2), ("南开区", 1)]

    pm = columns["PM2.5"]
    assert (pm.type, pm.nulls, pm.distinct, pm.min, pm.max) == (ColumnType.integer, 1, 5, 20, 58)
    assert pm.mean == pytest.approx(36.8)

    day = columns["监测日期"]
    assert (day.type, day.min, day.max, day.distinct) == (ColumnType.date, "2026-11-01", "2026-11-03", 3)
    assert [(t.value, t.count) for t in day.top] == [("2026-11-01", 2), ("2026-11-02", 2), ("2026-11-03", 2)]

    passed = columns["达标"]
    assert passed.type == ColumnType.boolean and (passed.min, passed.max, passed.mean) == (None, None, None)
    assert [(t.value, t.count) for t in passed.top] == [(True, 4), (False, 2)]

    note = columns["备注"]
    assert (note.nulls, note.distinct, note.min_length, note.max_length) == (2, 2, 2, 2)
    assert [(t.value, t.count) for t in note.top] == [("正常", 3), ("风大", 1)]


def test_profile_is_computed_once_then_read_from_memory_or_sidecar(
    platform: Platform, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = profile.compute_profile

    def counted(*args: Any) -> profile.Profile:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(profile, "compute_profile", counted)
    monkeypatch.setattr(profile, "_profiles", type(profile._profiles)())  # start with an empty memory
    version = version_of(platform, world["rids"]["many"])
    first = profile.profile_of(platform.store, version)
    assert profile.profile_of(platform.store, version) is first and len(calls) == 1  # memory

    sidecar = platform.store.path(profile.sidecar_key(version))
    assert sidecar.name == "1.profile.json" and sidecar.parent == platform.store.path(version.data_key).parent
    stored = json.loads(sidecar.read_text(encoding="utf-8"))
    assert stored["sha256"] == version.sha256 and stored["rows"] == 25

    profile._profiles.clear()  # a restart, or another app process: the sidecar answers
    assert profile.profile_of(platform.store, version) == first and len(calls) == 1

    profile._profiles.clear()
    sidecar.write_text(json.dumps({**stored, "sha256": "0" * 64}), encoding="utf-8")  # another file's
    assert profile.profile_of(platform.store, version) == first and len(calls) == 2
    assert json.loads(sidecar.read_text(encoding="utf-8"))["sha256"] == version.sha256  # rewritten

    profile._profiles.clear()
    sidecar.write_text("{not json", encoding="utf-8")
    assert profile.profile_of(platform.store, version) == first and len(calls) == 3


# --- the entry page ------------------------------------------------------------------------------------


def test_anonymous_sees_profile_and_chart_on_unconditional_entries(
    client: TestClient, world: dict[str, Any]
) -> None:
    page = client.get(f"/datasets/{world['entries']['unconditional']}")
    assert page.status_code == 200
    html = page.text
    assert "字段概况" in html and "图表" in html
    assert "1（16.7%）" in html  # PM2.5: one null in six rows
    assert "36.8" in html  # its mean
    assert "各不相同" in html  # 站点名称: every value differs
    assert '和平区</span> <span class="muted">3（50.0%）' in html
    assert "/static/vendor/echarts.min.js" in html and "/static/js/chart.js" in html
    rid = world["rids"]["unconditional"]
    assert f'data-chart="/datasets/{world["entries"]["unconditional"]}/resources/{rid}/chart.json"' in html
    assert '<option value="区" selected>' in html  # the first column with few, repeated values
    assert '<option value="_row"' not in html
    assert "<script>" not in html.split("</head>")[1]  # no inline script in the body (CSP)


@pytest.mark.parametrize("who", ["anonymous", "citizen"])
def test_conditional_entries_show_the_dictionary_only(
    client: TestClient, factory: Factory, world: dict[str, Any], who: str
) -> None:
    if who == "citizen":
        factory.user("citizen")
        login(client, "citizen")
    html = client.get(f"/datasets/{world['entries']['conditional']}").text
    assert "数据字典" in html and "监测日期" in html
    assert "字段概况" not in html and "data-chart" not in html and "echarts" not in html
    assert "36.8" not in html


def test_provider_staff_see_the_profile_of_their_conditional_entry(
    client: TestClient, world: dict[str, Any]
) -> None:
    login(client, "pub")
    html = client.get(f"/datasets/{world['entries']['conditional']}").text
    assert "字段概况" in html and "data-chart" in html


# --- chart.json ----------------------------------------------------------------------------------------


def chart_url(world: dict[str, Any], key: str = "unconditional", entry: str | None = None) -> str:
    return f"/datasets/{world['entries'][entry or key]}/resources/{world['rids'][key]}/chart.json"


def test_chart_defaults_to_counting_the_first_category_column(client: TestClient, world: dict) -> None:
    response = client.get(chart_url(world))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["type"], body["x"], body["agg"], body["y"]) == ("bar", "区", "count", None)
    assert body["categories"] == ["和平区", "河西区", "南开区"] and body["values"] == [3, 2, 1]
    assert body["groups"] == 3 and body["other"] is None
    assert CJK.search(body["title"]) and body["series"] == "记录数"


@pytest.mark.parametrize(
    ("agg", "categories", "values"),
    [
        ("sum", ["河西区", "和平区", "南开区"], [88, 55, 41]),
        ("avg", ["河西区", "南开区", "和平区"], [44.0, 41.0, 27.5]),
        ("max", ["河西区", "南开区", "和平区"], [58, 41, 35]),
        ("min", ["南开区", "河西区", "和平区"], [41, 30, 20]),
    ],
)
def test_chart_aggregates_a_numeric_column_largest_first(
    client: TestClient, world: dict, agg: str, categories: list[str], values: list[float]
) -> None:
    body = client.get(chart_url(world), params={"x": "区", "agg": agg, "y": "PM2.5"}).json()
    assert body["categories"] == categories and body["values"] == values
    assert body["y"] == "PM2.5" and body["series"].startswith("PM2.5 ")


def test_line_chart_follows_the_dates(client: TestClient, world: dict) -> None:
    body = client.get(
        chart_url(world), params={"type": "line", "x": "监测日期", "agg": "sum", "y": "PM2.5"}
    ).json()
    assert body["categories"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert body["values"] == [93, 41, 50]


def test_booleans_and_missing_values_are_labelled(client: TestClient, world: dict) -> None:
    flags = client.get(chart_url(world), params={"x": "达标"}).json()
    assert flags["categories"] == ["是", "否"] and flags["values"] == [4, 2]
    notes = client.get(chart_url(world), params={"x": "备注", "type": "pie"}).json()
    assert notes["categories"] == ["正常", "（空值）", "风大"] and notes["values"] == [3, 2, 1]


def test_bar_and_pie_show_the_largest_groups_and_pie_adds_the_rest(client: TestClient, world: dict) -> None:
    url = chart_url(world, "many", entry="unconditional")
    bar = client.get(url, params={"x": "类别", "agg": "sum", "y": "值"}).json()
    assert len(bar["categories"]) == chart.TOP_GROUPS == 20 and bar["groups"] == 25
    assert bar["categories"][:2] == ["c24", "c23"] and bar["other"] is None
    pie = client.get(url, params={"x": "类别", "agg": "sum", "y": "值", "type": "pie"}).json()
    assert pie["other"] == sum(range(5))  # c00…c04 together
    counted = client.get(url, params={"x": "类别", "type": "pie"}).json()
    assert counted["other"] == 5 and counted["values"] == [1] * 20
    averaged = client.get(url, params={"x": "类别", "agg": "avg", "y": "值", "type": "pie"}).json()
    assert averaged["other"] is None  # averages do not add up to a whole


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"type": "radar"}, "type", "图表类型"),
        ({"x": "不存在"}, "x", "没有名为"),
        ({"x": "_row"}, "x", "没有名为"),
        ({"x": '区" FROM x; DROP TABLE entries; --'}, "x", "没有名为"),
        ({"x": "区" * 5000}, "x", "…"),
        ({"x": "区\x00"}, "x", "没有名为"),
        ({"agg": "median"}, "agg", "统计方式"),
        ({"agg": "sum"}, "y", "数值字段"),
        ({"agg": "avg", "y": "区"}, "y", "不是数值"),
        ({"agg": "max", "y": "监测日期"}, "y", "不是数值"),
        ({"agg": "sum", "y": "_row"}, "y", "没有名为"),
    ],
)
def test_bad_chart_parameters_are_named_in_chinese(
    client: TestClient, world: dict, params: dict[str, str], field: str, words: str
) -> None:
    error = assert_error(client.get(chart_url(world), params=params), 422, "invalid")
    assert words in error["message"] and field in error["fields"]
    assert len(error["message"]) < 200  # a hostile name is cut, not echoed whole


def test_chart_errors_are_json_even_for_a_browser(client: TestClient, world: dict) -> None:
    response = client.get(chart_url(world), params={"type": "radar"}, headers={"Accept": "text/html"})
    assert_error(response, 422)


@pytest.mark.parametrize(
    ("who", "key", "status"),
    [
        ("anonymous", "unconditional", 200),
        ("anonymous", "conditional", 403),
        ("citizen", "conditional", 403),
        ("pub", "conditional", 200),
        ("anonymous", "closed", 404),
        ("pub", "closed", 200),
    ],
)
def test_chart_follows_the_open_type(
    client: TestClient, factory: Factory, world: dict, who: str, key: str, status: int
) -> None:
    if who == "citizen":
        factory.user("citizen")
    if who != "anonymous":
        login(client, who)
    response = client.get(chart_url(world, key))
    if status == 200:
        assert response.status_code == 200 and response.json()["values"] == [3, 2, 1]
    else:
        assert_error(response, status)


def test_chart_of_a_resource_elsewhere_or_missing_is_not_found(
    client: TestClient, platform: Platform, world: dict
) -> None:
    entries, rids = world["entries"], world["rids"]
    assert_error(
        client.get(f"/datasets/{entries['closed']}/resources/{rids['unconditional']}/chart.json"), 404
    )
    assert_error(client.get(f"/datasets/{entries['unconditional']}/resources/999999/chart.json"), 404)
    assert_error(client.get(f"/datasets/{entries['unconditional']}/resources/1e3/chart.json"), 404)
    assert_error(client.get(f"/datasets/{entries['unconditional']}/resources/-1/chart.json"), 404)
    response = client.post(
        f"/api/v1/datasets/{entries['unconditional']}/resources",
        headers=auth(world["key"]),
        files={"file": ("说明.pdf", b"%PDF-1.4 test", "application/pdf")},
    )
    file_rid = response.json()["id"]
    platform.jobs.drain()
    pass_review(client, file_rid, 1, auth(world["key"]))
    client.post(f"/api/v1/resources/{file_rid}/versions/1/publish", headers=auth(world["key"]))
    assert_error(client.get(f"/datasets/{entries['unconditional']}/resources/{file_rid}/chart.json"), 404)
