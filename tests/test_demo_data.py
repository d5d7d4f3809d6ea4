"""The demo city's data resources: generated, uploaded through the real pipeline, published and
queryable — a GBK CSV, an XLSX with a title row, a GeoJSON file, one 有条件开放 entry. Seeded once
with `kaifang demo --no-serve --small` into a fresh SQLite home; the million-row air quality file
is checked here by its generator on two days of data (the full run is timed by hand, see the note).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang import cli
from kaifang.access import reports
from kaifang.access import service as access
from kaifang.access.grants import active_grant_ids, active_suspension, city_today
from kaifang.access.models import Application, ApplicationStatus, ComplianceCheck, Grant
from kaifang.accounts.models import User
from kaifang.accounts.permissions import Actor
from kaifang.accounts.service import issue_api_key, valid_credit_code
from kaifang.app import create_app
from kaifang.datastore.infer import infer_schema
from kaifang.datastore.models import Resource, ResourceVersion, VersionStatus
from kaifang.datastore.reader import read_table
from kaifang.demo import datasets
from kaifang.settings import load_settings
from tests.conftest import csrf_token, login


@pytest.fixture(scope="module")
def seeding(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo home and what `kaifang demo` printed."""
    home = tmp_path_factory.mktemp("demo-home")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("KAIFANG_HOME", str(home))
        mp.setenv("KAIFANG_DATABASE_URL", "")
        mp.delenv("KAIFANG_MODE", raising=False)
        assert cli.main(["demo", "--no-serve", "--small"]) == 0
    return home, out.getvalue()


@pytest.fixture(scope="module")
def demo(seeding: tuple[Path, str]) -> Iterator[tuple[TestClient, Any]]:
    settings = load_settings(mode="test", home=seeding[0], database_url="", base_url="http://testserver")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app.state.kf
    app.state.kf.db.dispose()


@pytest.fixture(scope="module")
def keys(demo: tuple[TestClient, Any]) -> dict[str, str]:
    """API keys of the citizen and of the transport department's publisher."""
    _client, platform = demo
    with platform.db.session() as db:
        users = {u.username: u for u in db.scalars(select(User))}
        return {
            name: issue_api_key(db, Actor(username="test"), users[name].id, "测试")[1]
            for name in ("demo-user", "demo-provider")
        }


def versions(platform: Any) -> dict[str, tuple[Resource, ResourceVersion]]:
    with platform.db.session() as db:
        rows = db.execute(
            select(Resource, ResourceVersion).join(
                ResourceVersion, ResourceVersion.id == Resource.published_version_id
            )
        ).all()
        return {r.name: (r, v) for r, v in rows}


def rid(platform: Any, name: str) -> int:
    return versions(platform)[name][0].id


def get_data(client: TestClient, key: str, resource_id: int, **params: Any) -> Any:
    return client.get(
        f"/api/v1/resources/{resource_id}/data",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
    )


# --- seeded through the pipeline ---------------------------------------------------------------


def test_every_small_resource_is_published_with_rows(
    demo: tuple[TestClient, Any], seeding: tuple[Path, str]
) -> None:
    _client, platform = demo
    published = versions(platform)
    expected = {spec.name for spec in datasets.RESOURCES if not spec.large}
    assert set(published) == expected
    with platform.db.session() as db:
        assert (
            db.scalar(select(ResourceVersion).where(ResourceVersion.status != VersionStatus.published))
            is None
        )
    for name, (resource, version) in published.items():
        assert version.byte_size > 0 and version.sha256, name
        if resource.kind == "table":
            assert version.row_count > 0, name
            assert not version.report["fatal"], (name, version.report)
            assert f"{resource.name}：{version.row_count:,} 行" in seeding[1]  # a line per resource


def test_gbk_export_is_read_as_gb18030_with_valid_credit_codes(
    demo: tuple[TestClient, Any], keys: dict[str, str]
) -> None:
    client, platform = demo
    _resource, version = versions(platform)["企业登记信息"]
    assert version.report["reading"]["encoding"] == "gb18030"
    types = {c["name"]: c["type"] for c in version.schema}
    assert types["统一社会信用代码"] == "text"
    assert types["成立日期"] == "date"
    assert types["注册资本(万元)"] == "decimal"
    body = get_data(client, keys["demo-user"], rid(platform, "企业登记信息"), limit=500).json()
    codes = [r["统一社会信用代码"] for r in body["records"]]
    assert len(codes) == 500 and all(valid_credit_code(c) for c in codes)
    assert all("海河" in r["企业名称"] for r in body["records"])  # decoded, not mojibake


def test_xlsx_title_row_is_skipped(demo: tuple[TestClient, Any]) -> None:
    _client, platform = demo
    _resource, version = versions(platform)["2025年床位及人员统计"]
    reading = version.report["reading"]
    assert reading["header_row"] == 2
    assert reading["sheet"] == "统计表"
    assert [c["name"] for c in version.schema][:4] == ["区", "机构类别", "机构数(个)", "床位数(张)"]
    assert version.row_count == len(datasets.health_statistics()[1])  # the source note is not a row


def test_data_api_filters_hospitals_by_district(demo: tuple[TestClient, Any], keys: dict[str, str]) -> None:
    client, platform = demo
    header, rows = datasets.medical_institutions()
    in_centre = [r for r in rows if r[header.index("区")] == "中河区"]
    response = get_data(client, keys["demo-user"], rid(platform, "医疗机构名录"), 区="中河区", limit=1000)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(in_centre) > 0
    assert {r["区"] for r in body["records"]} == {"中河区"}
    assert {r["机构名称"] for r in body["records"]} == {r[0] for r in in_centre}
    grouped = get_data(client, keys["demo-user"], rid(platform, "医疗机构名录"), group_by="区", agg="count")
    assert grouped.status_code == 200, grouped.text
    assert grouped.json()["total"] == len(datasets.districts())


def test_conditional_entry_data_is_for_its_provider_only(
    demo: tuple[TestClient, Any], keys: dict[str, str]
) -> None:
    client, platform = demo
    rail = rid(platform, "车站日客流")
    assert get_data(client, keys["demo-user"], rail).status_code == 403
    response = get_data(client, keys["demo-provider"], rail, 线路="1号线", limit=5)
    assert response.status_code == 200, response.text
    assert response.json()["total"] > 0


def test_applications_in_every_state(demo: tuple[TestClient, Any], seeding: tuple[Path, str]) -> None:
    """有条件开放: every application state, one decision overdue and one due soon, grants active,
    expired and revoked, a report due and one 逾期未报, and a suspended user whose grant is frozen."""
    _client, platform = demo
    today = city_today()
    with platform.db.session() as db:
        applications = list(db.scalars(select(Application)))
        assert {a.status for a in applications} == set(ApplicationStatus)
        accepted = [a for a in applications if a.status == ApplicationStatus.accepted]
        assert any(access.due_state(a, today) == "overdue" for a in accepted)
        assert any(a.due_on is not None and a.due_on >= today for a in accepted)
        refused = next(a for a in applications if a.status == ApplicationStatus.refused)
        assert refused.refusal_reason and refused.refusal_basis
        grants = list(db.scalars(select(Grant)))
        assert any(g.revoked_at is not None for g in grants)
        assert any(g.revoked_at is None and g.ends_on <= today for g in grants)  # expired
        users = {u.username: u for u in db.scalars(select(User))}
        states = {p.state for p in reports.points_for(db, grants, today)}
        assert {"due", "overdue"} <= states
        (held,) = [g for g in grants if g.user_id == users["demo-company"].id]
        assert held.active_on(today) and active_grant_ids(db, held.user_id) == {held.entry_id: held.id}
        zhao = users["citizen-zhao"].id
        assert active_suspension(db, zhao) is not None and active_grant_ids(db, zhao) == {}
        assert db.scalar(select(ComplianceCheck.conclusion)) == "non_compliant"
    assert "份有条件开放申请" in seeding[1]


def test_the_suspended_demo_user_is_told_why(demo: tuple[TestClient, Any]) -> None:
    client, _platform = demo
    client.cookies.clear()
    client.get("/login")
    page = client.post(
        "/login",
        data={"login": "citizen-zhao", "password": "kaifang-demo", "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert page.status_code == 403 and "该账号已被暂停使用" in page.text and "禁止再转让" in page.text


def test_the_demo_application_pages_render(demo: tuple[TestClient, Any]) -> None:
    client, _platform = demo
    pages = {
        "demo-company": ("/account/applications", "待提交"),
        "demo-user": ("/account/applications", "逾期未报"),
        "demo-provider": ("/workspace/applications", "已逾期"),
        "demo-regulator": ("/admin/access/stats", "海河市交通运输委员会"),
        "demo-operator": ("/suspensions", "赵先生"),
    }
    for username, (url, text) in pages.items():
        client.cookies.clear()
        login(client, username, "kaifang-demo")
        page = client.get(url)
        assert page.status_code == 200 and text in page.text, (username, url)
    client.cookies.clear()


def test_district_boundaries_are_a_geojson_file(demo: tuple[TestClient, Any]) -> None:
    client, platform = demo
    resource, version = versions(platform)["区级行政区划边界"]
    assert resource.kind == "file" and version.media_type == "application/geo+json"
    response = client.get(f"/api/v1/resources/{resource.id}/download")
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert {f["properties"]["name"] for f in features} == {d.name for d in datasets.districts()}
    for feature in features:
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == 9


# --- generators ----------------------------------------------------------------------------------


def test_every_point_lies_in_its_district() -> None:
    _header, stops = datasets.bus_network()[1]
    for stop in stops[:500]:
        lon, lat, district = stop[5], stop[6], stop[7]
        assert 116.85 <= lon <= 117.55 and 38.85 <= lat <= 39.35
        assert datasets.district_at(lon, lat).name == district
    header, rows = datasets.medical_institutions()
    for row in rows:
        assert datasets.district_at(row[-2], row[-1]).name == row[header.index("区")], row


def test_generators_are_deterministic() -> None:
    assert datasets.enterprises(50) == datasets.enterprises(50)
    assert datasets.parking_lots(30) == datasets.parking_lots(30)


def test_air_quality_is_hourly_with_a_consistent_aqi(tmp_path: Path) -> None:
    path = tmp_path / "空气质量.csv"
    assert datasets.write_air_quality(path, days=2) == 60 * 48
    raw = read_table(path, filename=path.name)
    types = {c.name: c.type for c in infer_schema(raw.table, raw.source_headers)}
    assert types == {
        "站点名称": "text",
        "区": "text",
        "监测时间": "datetime",
        "AQI": "integer",
        "PM2.5": "integer",
        "PM10": "integer",
        "SO2": "integer",
        "NO2": "integer",
        "CO": "decimal",
        "O3": "integer",
        "首要污染物": "text",
    }
    with duckdb.connect() as con:
        con.execute("CREATE TABLE aq AS SELECT * FROM read_csv(?, header = true)", [str(path)])
        stations, hours = con.execute(
            'SELECT count(DISTINCT "站点名称"), count(DISTINCT "监测时间") FROM aq'
        ).fetchone()
        assert (stations, hours) == (60, 48)
        # The primary pollutant is named exactly when the AQI passes 50 (HJ 633-2012).
        wrong = con.execute(
            'SELECT count(*) FROM aq WHERE AQI IS NOT NULL AND ((AQI > 50) != ("首要污染物" IS NOT NULL))'
        ).fetchone()[0]
        assert wrong == 0
        # The AQI is at least the PM2.5 sub-index at its first breakpoints.
        low = con.execute(
            'SELECT count(*) FROM aq WHERE "PM2.5" <= 35 AND AQI < ceil("PM2.5" * 50 / 35)'
        ).fetchone()
        assert low[0] == 0
