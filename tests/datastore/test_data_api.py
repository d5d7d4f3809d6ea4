"""The data API and downloads over HTTP, with the open-type rules of Art. 7 and 10."""

from __future__ import annotations

import csv
import io
import json
import urllib.parse
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from python_calamine import CalamineWorkbook

from kaifang.app import Platform
from tests.conftest import Factory, pass_review

CSV = (
    "站点名称,区,PM2.5,监测日期,备注\n"
    "和平站,和平区,35,2026-11-01,\n"
    "河西站,河西区,58,2026-11-01,=SUM(A1)\n"
    "南开站,南开区,41,2026-11-02,正常\n"
).encode()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def published_resource(client: TestClient, platform: Platform, key: str, entry_id: int) -> int:
    response = client.post(
        f"/api/v1/datasets/{entry_id}/resources",
        headers=auth(key),
        files={"file": ("空气质量.csv", CSV, "text/csv")},
        data={"name": "空气质量日报"},
    )
    assert response.status_code == 202, response.text
    rid = response.json()["id"]
    platform.jobs.drain()
    pass_review(client, rid, 1, auth(key))
    published = client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(key))
    assert published.status_code == 200, published.text
    return int(rid)


@pytest.fixture
def world(client: TestClient, platform: Platform, factory: Factory) -> dict[str, Any]:
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    citizen = factory.user("citizen")
    regulator = factory.user("reg", system_role="regulator")
    keys = {
        "pub": factory.api_key(pub),
        "citizen": factory.api_key(citizen),
        "reg": factory.api_key(regulator),
    }
    rids = {}
    for open_type in ("unconditional", "conditional", "closed"):
        entry_id = factory.entry(
            pub, org, title=f"空气质量{open_type}", open_type=open_type, regulator=regulator
        )
        rids[open_type] = published_resource(client, platform, keys["pub"], entry_id)
    return {"keys": keys, "rids": rids}


def test_data_api_filters_sorts_and_types(client: TestClient, world: dict) -> None:
    rid, key = world["rids"]["unconditional"], world["keys"]["citizen"]
    body = client.get(
        f"/api/v1/resources/{rid}/data", headers=auth(key), params={"PM2.5__gte": "40", "sort": "-PM2.5"}
    ).json()
    assert body["total"] == 2 and body["next"] is None
    assert [r["站点名称"] for r in body["records"]] == ["河西站", "南开站"]
    assert body["records"][0]["PM2.5"] == 58 and body["records"][0]["监测日期"] == "2026-11-01"
    assert [c["name"] for c in body["schema"]] == ["站点名称", "区", "PM2.5", "监测日期", "备注"]
    grouped = client.get(
        f"/api/v1/resources/{rid}/data",
        headers=auth(key),
        params={"group_by": "监测日期", "agg": "avg:PM2.5", "sort": "监测日期"},
    ).json()
    assert grouped["total"] == 2 and grouped["records"][0]["监测日期"] == "2026-11-01"


def test_data_api_needs_a_key(client: TestClient, world: dict) -> None:
    response = client.get(f"/api/v1/resources/{world['rids']['unconditional']}/data")
    assert response.status_code == 401 and "API 密钥" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("param", "value"),
    [("不存在的列", "1"), ("PM2.5__gt", "abc"), ("区__like", "和平"), ("limit", "100000000")],
)
def test_bad_queries_are_named(client: TestClient, world: dict, param: str, value: str) -> None:
    response = client.get(
        f"/api/v1/resources/{world['rids']['unconditional']}/data",
        headers=auth(world["keys"]["citizen"]),
        params={param: value},
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("open_type", "who", "status"),
    [
        ("unconditional", "anonymous", 200),
        ("unconditional", "citizen", 200),
        ("conditional", "anonymous", 403),
        ("conditional", "citizen", 403),
        ("conditional", "pub", 200),
        ("closed", "anonymous", 404),
        ("closed", "citizen", 404),
        ("closed", "reg", 403),
        ("closed", "pub", 200),
    ],
)
def test_downloads_follow_the_open_type(
    client: TestClient, world: dict, open_type: str, who: str, status: int
) -> None:
    headers = {} if who == "anonymous" else auth(world["keys"][who])
    response = client.get(f"/api/v1/resources/{world['rids'][open_type]}/download", headers=headers)
    assert response.status_code == status, response.text[:300]


def test_csv_download_cites_the_source_and_neutralises_formulas(client: TestClient, world: dict) -> None:
    response = client.get(
        f"/api/v1/resources/{world['rids']['unconditional']}/download",
        params={"format": "csv", "bom": "true", "区": "河西区"},
    )
    assert response.status_code == 200
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][0] == "站点名称" and len(rows) == 2
    assert rows[1][4] == "'=SUM(A1)"
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    assert "空气质量日报" in urllib.parse.unquote(response.headers["content-disposition"])
    source = urllib.parse.unquote(response.headers["x-data-source"])
    assert "海河市生态环境局" in source and "第1版" in source


def test_json_xlsx_and_parquet_downloads(client: TestClient, world: dict, tmp_path: Any) -> None:
    url = f"/api/v1/resources/{world['rids']['unconditional']}/download"
    body = json.loads(client.get(url, params={"format": "json"}).content)
    assert len(body["records"]) == 3 and "数据来源" in body["source"]
    xlsx = tmp_path / "a.xlsx"
    xlsx.write_bytes(client.get(url, params={"format": "xlsx"}).content)
    book = CalamineWorkbook.from_path(str(xlsx))
    assert book.sheet_names == ["数据", "数据来源"]
    assert book.get_sheet_by_name("数据").to_python()[0][0] == "站点名称"
    parquet = tmp_path / "a.parquet"
    parquet.write_bytes(client.get(url, params={"format": "parquet"}).content)
    table = pq.read_table(parquet)
    assert table.num_rows == 3 and "_row" not in table.column_names


def test_file_resources_download_as_uploaded(
    client: TestClient, platform: Platform, world: dict, factory: Factory
) -> None:
    key = world["keys"]["pub"]
    entry_id = client.get("/api/v1/datasets", params={"q": "空气质量unconditional"}).json()["results"][0][
        "id"
    ]
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    rid = client.post(
        f"/api/v1/datasets/{entry_id}/resources",
        headers=auth(key),
        files={"file": ("监测方法说明.pdf", pdf, "application/pdf")},
    ).json()["id"]
    platform.jobs.drain()
    pass_review(client, rid, 1, auth(key))
    client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(key))
    response = client.get(f"/api/v1/resources/{rid}/download")
    assert response.status_code == 200 and response.content == pdf
    assert response.headers["content-type"] == "application/pdf"


def test_entry_page_shows_preview_dictionary_and_downloads(client: TestClient, world: dict) -> None:
    entry_id = client.get("/api/v1/datasets", params={"q": "空气质量unconditional"}).json()["results"][0][
        "id"
    ]
    html = client.get(f"/datasets/{entry_id}").text
    assert "数据预览" in html and "河西站" in html and "数据字典" in html
    assert f"/api/v1/resources/{world['rids']['unconditional']}/download?format=xlsx" in html


def test_conditional_entry_page_shows_no_data(client: TestClient, world: dict) -> None:
    entry_id = client.get("/api/v1/datasets", params={"q": "空气质量conditional"}).json()["results"][0]["id"]
    html = client.get(f"/datasets/{entry_id}").text
    assert "数据字典" in html and "河西站" not in html and "download?format" not in html


@pytest.mark.parametrize(
    "value",
    [
        {"records": [{"名称": "海淀区", "金额": 12.5, "日期": "2024-03-01", "空": None, "是": True}]},
        {"total": 2**63 + 5, "records": []},  # past 64 bits: the standard library's encoder
        {"records": [{"x": -0.0, "y": 1e16, "z": 123456789012345678}]},
    ],
    ids=["chinese", "huge-int", "numbers"],
)
def test_answers_are_the_json_the_standard_encoder_writes(value: dict[str, Any]) -> None:
    from fastapi.responses import JSONResponse

    from kaifang.datastore.api import json_bytes

    body = json_bytes(value)
    assert json.loads(body) == json.loads(JSONResponse(value).body) == value
    assert "海淀区".encode() in body or "海淀区" not in json.dumps(value, ensure_ascii=False)
