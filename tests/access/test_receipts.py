"""Download receipts: every download carries an id in its header and, where the format has room,
inside the file; the audit record keeps it with the downloader and the grant, and the inspector
finds the download by it."""

from __future__ import annotations

import io
import json
import zipfile

import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import select

from kaifang.app import Platform
from kaifang.audit.models import AuditRecord
from kaifang.audit.receipts import HEADER, is_receipt, new_receipt
from tests.access.conftest import Scene
from tests.conftest import login


def _download_records(platform: Platform) -> list[AuditRecord]:
    platform.audit.flush()  # downloads are journaled, written by the audit writer's next round
    with platform.db.session() as db:
        rows = list(
            db.scalars(
                select(AuditRecord)
                .where(AuditRecord.action == "data:access:download")
                .order_by(AuditRecord.id)
            )
        )
        db.expunge_all()
    return rows


def _download(client: TestClient, scene: Scene, who: str, fmt: str, **params: str) -> tuple[str, bytes]:
    url = f"/api/v1/resources/{scene.resource_id}/download"
    response = client.get(url, params={"format": fmt, **params}, headers=scene.headers(who))
    assert response.status_code == 200, response.text
    receipt = response.headers[HEADER]
    assert is_receipt(receipt)
    return receipt, response.content


def test_receipts_are_unique_and_well_formed() -> None:
    receipts = {new_receipt() for _ in range(1000)}
    assert len(receipts) == 1000 and all(is_receipt(r) for r in receipts)
    assert not is_receipt("KF20261127-%") and not is_receipt("")


def test_a_download_under_a_grant_carries_its_receipt_inside_the_file(
    client: TestClient, scene: Scene, platform: Platform
) -> None:
    scene.granted("applicant")
    receipt_parquet, body = _download(client, scene, "applicant", "parquet")
    metadata = pq.read_schema(io.BytesIO(body)).metadata
    assert metadata[b"kaifang.receipt"].decode() == receipt_parquet
    assert "空气质量监测明细" in metadata[b"kaifang.source"].decode()

    receipt_json, body = _download(client, scene, "applicant", "json")
    assert json.loads(body)["receipt"] == receipt_json

    receipt_xlsx, body = _download(client, scene, "applicant", "xlsx")
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        assert receipt_xlsx in book.read("docProps/core.xml").decode()
        assert any(receipt_xlsx in book.read(n).decode() for n in book.namelist() if n.endswith(".xml"))

    records = _download_records(platform)
    assert [r.summary["receipt"] for r in records] == [receipt_parquet, receipt_json, receipt_xlsx]
    grant_ids = {r.grant_id for r in records}
    assert len(grant_ids) == 1 and None not in grant_ids
    assert {r.actor_name for r in records} == {scene.users["applicant"].username}


def test_a_kept_whole_table_file_keeps_its_bytes_and_the_receipt_goes_in_the_header(
    client: TestClient, scene: Scene
) -> None:
    scene.granted("applicant")
    first, body_1 = _download(client, scene, "applicant", "csv")
    second, body_2 = _download(client, scene, "applicant", "csv")
    assert first != second and body_1 == body_2


def test_the_inspector_finds_a_download_by_its_receipt(
    client: TestClient, scene: Scene, platform: Platform
) -> None:
    scene.granted("applicant")
    receipt, _ = _download(client, scene, "applicant", "json")
    _download(client, scene, "applicant", "json")
    platform.audit.flush()  # the writer's next round (within a second)
    login(client, scene.users["regulator"].username)
    page = client.get("/admin/audit", params={"receipt": receipt.lower()})
    assert page.status_code == 200
    assert "共 1 条记录" in page.text and scene.users["applicant"].username in page.text
    export = client.get("/admin/audit/export.csv", params={"receipt": receipt})
    assert export.status_code == 200 and receipt in export.text
    assert export.text.count("data:access:download") == 1
    bad = client.get("/admin/audit", params={"receipt": "KF2026%"})
    assert bad.status_code == 422 and "下载回执编号格式不对" in bad.text
