"""Whole-table downloads of a published version are built once and then sent as a kept file."""

from __future__ import annotations

import csv
import io
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform
from kaifang.datastore.export import export_key
from tests.conftest import Factory, pass_review

HEADER = "站点名称,区,PM2.5,监测时间,备注\n"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def table_csv() -> bytes:
    """Rows unique to the test (a token in every row), so no other test's kept file can match.
    The token is letters: a token of digits made "站123-36960238" look like text holding a mobile
    number, the 脱敏 scan proposed a rule for the column, and the review refused to pass."""
    token = "".join(chr(ord("a") + int(c, 16)) for c in secrets.token_hex(4))
    rows = [
        f"站{i}-{token},{'和平区' if i % 2 else '河西区'},{i},2026-11-01 0{i % 10}:00:00,=A{i}\n"
        for i in range(300)
    ]
    return (HEADER + "".join(rows)).encode()


@pytest.fixture
def setup(client: TestClient, platform: Platform, factory: Factory) -> dict[str, Any]:
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    key = factory.api_key(pub)
    entry_id = factory.entry(pub, org, title="空气质量小时数据", open_type="unconditional")
    response = client.post(
        f"/api/v1/datasets/{entry_id}/resources",
        headers=auth(key),
        files={"file": ("空气质量.csv", table_csv(), "text/csv")},
    )
    assert response.status_code == 202, response.text
    rid = response.json()["id"]
    platform.jobs.drain()
    return {"rid": rid, "key": key, "url": f"/api/v1/resources/{rid}/download"}


def publish(client: TestClient, setup: dict[str, Any]) -> dict[str, Any]:
    pass_review(client, setup["rid"], 1, auth(setup["key"]))
    response = client.post(f"/api/v1/resources/{setup['rid']}/versions/1/publish", headers=auth(setup["key"]))
    assert response.status_code == 200, response.text
    version = response.json()["versions"][0]
    return version


def kept(platform: Platform, setup: dict[str, Any], version: dict[str, Any], ext: str) -> Path:
    return platform.store.path(export_key(setup["rid"], version["number"], version["sha256"], ext))


def test_whole_csv_is_streamed_once_then_sent_from_the_kept_file(
    client: TestClient, platform: Platform, setup: dict[str, Any]
) -> None:
    version = publish(client, setup)
    path = kept(platform, setup, version, "csv")
    assert not path.exists()
    first = client.get(setup["url"])
    assert first.status_code == 200 and "content-length" not in first.headers  # streamed
    assert path.read_bytes() == first.content  # kept once the response was sent
    assert not list(path.parent.glob(".*.filling"))
    second = client.get(setup["url"])
    assert second.content == first.content
    assert second.headers["content-length"] == str(len(first.content))
    assert second.headers["content-type"] == "text/csv; charset=utf-8"
    for response in (first, second):
        assert "filename*=UTF-8''" in response.headers["content-disposition"]
        source = urllib.parse.unquote(response.headers["x-data-source"])
        assert "海河市生态环境局" in source and "第1版" in source
    rows = list(csv.reader(io.StringIO(second.content.decode())))
    assert rows[0] == ["站点名称", "区", "PM2.5", "监测时间", "备注"] and len(rows) == 301
    assert rows[1][3] == "2026-11-01 00:00:00" and rows[1][4] == "'=A0"  # formulas stay neutralised


def test_kept_csv_with_bom_and_ranges(client: TestClient, platform: Platform, setup: dict[str, Any]) -> None:
    publish(client, setup)
    streamed_bom = client.get(setup["url"], params={"bom": "true"})  # the first download: streamed
    plain = client.get(setup["url"]).content  # from the kept file
    kept_bom = client.get(setup["url"], params={"bom": "true"})
    assert streamed_bom.content == kept_bom.content == "\ufeff".encode() + plain
    assert kept_bom.headers["content-length"] == str(len(plain) + 3)
    part = client.get(setup["url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == plain[:100]


def test_whole_parquet_is_written_once(client: TestClient, platform: Platform, setup: dict[str, Any]) -> None:
    version = publish(client, setup)
    first = client.get(setup["url"], params={"format": "parquet"})
    path = kept(platform, setup, version, "parquet")
    assert path.read_bytes() == first.content
    modified = path.stat().st_mtime_ns
    second = client.get(setup["url"], params={"format": "parquet"})
    assert second.content == first.content and path.stat().st_mtime_ns == modified
    table = pq.read_table(io.BytesIO(second.content))
    assert table.num_rows == 300 and "_row" not in table.column_names


def test_selections_and_unpublished_versions_are_never_kept(
    client: TestClient, platform: Platform, setup: dict[str, Any]
) -> None:
    exports = platform.store.path("exports") / str(setup["rid"])
    review = client.get(setup["url"], params={"version": 1}, headers=auth(setup["key"]))
    assert review.status_code == 200 and len(review.content.splitlines()) == 301
    assert not exports.exists()  # a version in review can still change (its data dictionary)
    publish(client, setup)
    for params in (
        {"区": "和平区"},
        {"fields": "区"},
        {"sort": "-PM2.5"},
        {"group_by": "区", "agg": "count"},
    ):
        assert client.get(setup["url"], params=params).status_code == 200
    assert client.get(setup["url"], params={"format": "json"}).status_code == 200  # dated citation inside
    assert not exports.exists()
    filtered = list(csv.reader(io.StringIO(client.get(setup["url"], params={"区": "和平区"}).text)))
    assert len(filtered) == 151 and {r[1] for r in filtered[1:]} == {"和平区"}


def test_a_file_still_being_filled_is_never_sent(
    client: TestClient, platform: Platform, setup: dict[str, Any]
) -> None:
    version = publish(client, setup)
    path = kept(platform, setup, version, "csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Another download is half-way through building the file: only its temporary part exists.
    half = path.with_name(f".{path.name}.0123456789ab.filling")
    half.write_bytes(b"\xe7\xab\x99\xe7\x82\xb9")
    response = client.get(setup["url"])
    assert len(response.content.splitlines()) == 301
    assert path.read_bytes() == response.content
    assert half.read_bytes() == b"\xe7\xab\x99\xe7\x82\xb9"  # the other download's part is its own
