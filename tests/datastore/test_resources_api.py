"""Resources through the HTTP API: upload, background reading, review, publication, versions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from kaifang.datastore.models import ResourceVersion
from tests.conftest import Factory, pass_review

GBK_CSV = (
    "医院名称,区,床位数,邮编\n海河市第一人民医院,和平区,1200,300041\n海河市儿童医院,河西区,650,300074\n"
).encode("gbk")


@pytest.fixture
def setup(factory: Factory) -> dict[str, Any]:
    org = factory.org("wjw", "海河市卫生健康委员会")
    pub = factory.user("pub", org=org, roles=("publisher",))
    outsider = factory.user("citizen")
    entry_id = factory.entry(pub, org, title="医疗机构名录")
    return {
        "org": org,
        "pub": pub,
        "entry": entry_id,
        "pub_key": factory.api_key(pub),
        "citizen_key": factory.api_key(outsider),
    }


def rows(platform: Platform, statement: Any) -> list[Any]:
    """Read in a session that is closed at once: an open one would block the next test's TRUNCATE
    on PostgreSQL."""
    with platform.db.session() as db:
        return list(db.scalars(statement))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(client: TestClient, key: str, entry_id: int, content: bytes, filename: str, **data: str) -> Any:
    return client.post(
        f"/api/v1/datasets/{entry_id}/resources",
        headers=auth(key),
        files={"file": (filename, content, "text/csv")},
        data=data,
    )


def test_gbk_csv_is_read_reviewed_and_published(client: TestClient, platform: Platform, setup: dict) -> None:
    response = upload(client, setup["pub_key"], setup["entry"], GBK_CSV, "医疗机构.csv", name="医疗机构名录")
    assert response.status_code == 202, response.text
    rid = response.json()["id"]
    platform.jobs.drain()
    body = client.get(f"/api/v1/resources/{rid}", headers=auth(setup["pub_key"])).json()
    version = body["versions"][0]
    assert body["status"] == "ready" and version["status"] == "review"
    assert version["report"]["reading"]["encoding"] in ("gb18030", "gbk")
    assert [c["name"] for c in version["schema"]] == ["医院名称", "区", "床位数", "邮编"]
    types = {c["name"]: c["type"] for c in version["schema"]}
    assert types["床位数"] == "integer" and types["邮编"] == "text"
    assert version["row_count"] == 2 and len(version["sha256"]) == 64
    # Not visible to the public before publication.
    public = client.get(f"/api/v1/resources/{rid}").json()
    assert public["versions"] == [] and public["published_version"] is None
    pass_review(client, rid, 1, auth(setup["pub_key"]))
    published = client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(setup["pub_key"]))
    assert published.status_code == 200, published.text
    public = client.get(f"/api/v1/resources/{rid}").json()
    assert public["published_version"] == 1 and public["row_count"] == 2


def test_an_update_is_a_new_version_and_the_old_one_stays(
    client: TestClient, platform: Platform, setup: dict
) -> None:
    rid = upload(client, setup["pub_key"], setup["entry"], GBK_CSV, "a.csv").json()["id"]
    platform.jobs.drain()
    pass_review(client, rid, 1, auth(setup["pub_key"]))
    client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(setup["pub_key"]))
    more = GBK_CSV + "海河市口腔医院,南开区,200,300100\n".encode("gbk")
    response = client.post(
        f"/api/v1/resources/{rid}/versions",
        headers=auth(setup["pub_key"]),
        files={"file": ("b.csv", more, "text/csv")},
        data={"change_note": "新增一家医院"},
    )
    assert response.status_code == 202, response.text
    platform.jobs.drain()
    pass_review(client, rid, 2, auth(setup["pub_key"]))
    client.post(f"/api/v1/resources/{rid}/versions/2/publish", headers=auth(setup["pub_key"]))
    body = client.get(f"/api/v1/resources/{rid}").json()
    assert [(v["number"], v["row_count"]) for v in body["versions"]] == [(1, 2), (2, 3)]
    assert body["published_version"] == 2
    paths = set(rows(platform, select(ResourceVersion.data_key)))
    assert len(paths) == 2 and all(platform.store.exists(p) for p in paths)


def test_schema_correction_reads_again(client: TestClient, platform: Platform, setup: dict) -> None:
    rid = upload(client, setup["pub_key"], setup["entry"], GBK_CSV, "a.csv").json()["id"]
    platform.jobs.drain()
    columns = [
        {"name": "医院名称", "type": "text", "description": "医疗机构全称"},
        {"name": "所在区", "type": "text"},
        {"name": "床位数", "type": "integer", "unit": "张"},
        {"name": "邮政编码", "type": "text"},
    ]
    response = client.put(
        f"/api/v1/resources/{rid}/versions/1/schema",
        headers=auth(setup["pub_key"]),
        json={"columns": columns},
    )
    assert response.status_code == 200, response.text
    platform.jobs.drain()
    version = client.get(f"/api/v1/resources/{rid}", headers=auth(setup["pub_key"])).json()["versions"][0]
    assert version["status"] == "review"
    assert [c["name"] for c in version["schema"]] == ["医院名称", "所在区", "床位数", "邮政编码"]
    assert version["schema"][2]["unit"] == "张"


def test_a_file_that_cannot_be_read_fails_with_a_reason(
    client: TestClient, platform: Platform, setup: dict
) -> None:
    rid = upload(
        client, setup["pub_key"], setup["entry"], b"\xff\xfe\x00\xd8broken\x00\x00", "bad.xlsx"
    ).json()["id"]
    platform.jobs.drain()
    body = client.get(f"/api/v1/resources/{rid}", headers=auth(setup["pub_key"])).json()
    assert (
        body["status"] == "failed"
        and body["errors"]
        and any("\u4e00" <= ch <= "\u9fff" for ch in body["errors"][0])
    )
    refused = client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(setup["pub_key"]))
    assert refused.status_code == 409


def test_other_files_are_stored_as_they_are(client: TestClient, platform: Platform, setup: dict) -> None:
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    rid = upload(client, setup["pub_key"], setup["entry"], pdf, "说明.pdf").json()["id"]
    platform.jobs.drain()
    body = client.get(f"/api/v1/resources/{rid}", headers=auth(setup["pub_key"])).json()
    assert body["kind"] == "file" and body["versions"][0]["byte_size"] == len(pdf)


@pytest.mark.parametrize("who", ["anonymous", "citizen"])
def test_only_the_publisher_uploads(client: TestClient, platform: Platform, setup: dict, who: str) -> None:
    headers = {} if who == "anonymous" else auth(setup["citizen_key"])
    response = client.post(
        f"/api/v1/datasets/{setup['entry']}/resources",
        headers=headers,
        files={"file": ("a.csv", GBK_CSV, "text/csv")},
    )
    # Anonymous multipart posts carry no CSRF token either: refused before authentication.
    assert response.status_code == 403
    assert "error" in response.json()
    assert not list(platform.settings.files_dir.glob("staging/*"))  # refused before the body was kept
    assert rows(platform, select(ResourceVersion.id)) == []


def test_oversized_upload_is_refused_and_nothing_is_kept(
    client: TestClient, platform: Platform, setup: dict
) -> None:
    platform.settings.upload_max_mb = 1
    try:
        response = upload(client, setup["pub_key"], setup["entry"], b"a,b\n" + b"1,2\n" * 400_000, "big.csv")
    finally:
        platform.settings.upload_max_mb = 1024
    assert response.status_code in (413, 422)
    message = response.json()["error"]["message"]
    assert "上限" in message or "过大" in message
    assert not list(platform.settings.files_dir.glob("staging/*"))
    assert rows(platform, select(ResourceVersion.id)) == []


def test_every_step_is_audited(client: TestClient, platform: Platform, setup: dict) -> None:
    rid = upload(client, setup["pub_key"], setup["entry"], GBK_CSV, "a.csv").json()["id"]
    platform.jobs.drain()
    pass_review(client, rid, 1, auth(setup["pub_key"]))
    client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(setup["pub_key"]))
    actions = rows(
        platform,
        select(AuditRecord.action).where(AuditRecord.target_type == "resource").order_by(AuditRecord.id),
    )
    assert actions == [
        "data:resource:created",
        "data:version:uploaded",
        "data:version:processed",
        "desensitize:review:recorded",
        "data:version:published",
    ]
