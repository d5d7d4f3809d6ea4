"""Who reads 有条件开放 data: every data path × every position an actor can be in. Only the
provider's staff and the holder of a grant in force get data; every access under a grant names it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from python_calamine import CalamineWorkbook
from sqlalchemy import select, update

from kaifang.access import service as access
from kaifang.access import suspension
from kaifang.access.models import Application, Grant
from kaifang.audit.models import AuditRecord
from kaifang.db import utcnow
from tests.access.conftest import Scene
from tests.conftest import login

ROW = "和平站"  # a value of the table's first row
ALLOWED = {"grantee", "publisher", "reviewer"}
WHO = [
    "anonymous",
    "user",
    "pending",
    "unsigned",
    "grantee",
    "expired",
    "revoked",
    "suspended",
    "publisher",
    "other_reviewer",
]
PATHS = ["preview", "chart", "csv", "json", "xlsx", "parquet", "data", "sql"]


@pytest.fixture
def cast(scene: Scene, db) -> Scene:
    """One user in each position of the application path."""
    for name in ("pending", "unsigned", "grantee", "expired", "revoked", "suspended"):
        scene.users[name] = scene.factory.user(name)
    scene.apply("pending")
    unsigned = scene.approved("unsigned")
    scene.sign("unsigned", unsigned)  # the applicant signed, the provider not yet
    scene.granted("grantee")
    scene.granted("expired")
    scene.granted("revoked")
    scene.granted("suspended")
    suspend(scene, db, "suspended")
    grants = {g.user_id: g.id for g in db.scalars(select(Grant))}
    past = utcnow().date() - timedelta(days=40)
    db.execute(
        update(Grant)
        .where(Grant.id == grants[scene.users["expired"].id])
        .values(starts_on=past, ends_on=past + timedelta(days=30))
    )
    db.commit()
    scene.call("reviewer", access.revoke_grant, grants[scene.users["revoked"].id], "违反协议向第三方提供数据")
    return scene


def suspend(scene: Scene, db, who: str) -> None:
    """The provider proposes and an operator confirms suspending `who` (Art. 29)."""
    scene.users.setdefault("operator", scene.factory.user("ops", system_role="operator"))
    provider = db.scalar(select(Application.provider_id))
    proposal = scene.call(
        "reviewer", suspension.propose, provider, scene.users[who].id, "违反协议", "核查记录"
    )
    scene.call("operator", suspension.confirm, proposal.id)


def xlsx_rows(content: bytes) -> list[list[object]]:
    book = CalamineWorkbook.from_filelike(io.BytesIO(content))
    return book.get_sheet_by_index(0).to_python()


def fetch(client: TestClient, scene: Scene, who: str, path: str):
    rid, headers = scene.resource_id, scene.headers(who)
    if path == "preview":
        return client.get(f"/datasets/{scene.entry_id}", headers=headers)
    if path == "chart":
        return client.get(f"/datasets/{scene.entry_id}/resources/{rid}/chart.json", headers=headers)
    if path == "data":
        return client.get(f"/api/v1/resources/{rid}/data", headers=headers)
    if path == "sql":
        return client.get(
            f"/api/v1/resources/{rid}/sql", params={"sql": "SELECT * FROM data"}, headers=headers
        )
    return client.get(f"/api/v1/resources/{rid}/download", params={"format": path}, headers=headers)


def test_access_matrix(client: TestClient, cast: Scene) -> None:
    wrong = []
    for who in WHO:
        for path in PATHS:
            response = fetch(client, cast, who, path)
            allowed = who in ALLOWED
            if path == "preview" and who != "suspended":
                assert response.status_code == 200, (who, response.status_code)
                got = 'class="table data-preview"' in response.text
            elif path == "parquet":
                got = response.status_code == 200 and response.content.startswith(b"PAR1")
            elif path == "xlsx":
                got = response.status_code == 200 and ROW in str(xlsx_rows(response.content))
            else:
                got = response.status_code == 200 and (path == "chart" or ROW.encode() in response.content)
            if got != allowed:
                wrong.append((who, path, response.status_code))
            if not allowed and (path != "preview" or who == "suspended"):
                expected = 401 if who == "anonymous" and path in ("data", "sql") else 403
                if path == "preview":  # a suspended user's key is refused on every path, the page too
                    expected = 403
                if response.status_code != expected or ROW.encode() in response.content:
                    wrong.append((who, path, response.status_code, "refusal"))
    assert not wrong, wrong


def test_every_access_under_a_grant_names_it(client: TestClient, cast: Scene, db) -> None:
    cast.platform.audit.flush()
    grant_id = db.scalar(select(Grant.id).where(Grant.user_id == cast.users["grantee"].id))
    for path in PATHS:
        assert fetch(client, cast, "grantee", path).status_code == 200, path
        fetch(client, cast, "publisher", path)
    cast.platform.audit.flush()  # reads are journaled, written by the audit writer's next round
    db.expire_all()
    records = db.execute(
        select(AuditRecord.actor_name, AuditRecord.data_format, AuditRecord.grant_id).where(
            AuditRecord.kind == "access"
        )
    ).all()
    mine = {fmt: g for name, fmt, g in records if name == "grantee"}
    assert set(mine) == {"preview", "chart", "csv", "json", "xlsx", "parquet", "sql"}
    assert set(mine.values()) == {grant_id}
    assert all(g is None for name, _, g in records if name == "pub")


def test_the_grantee_reads_in_a_browser_session(client: TestClient, cast: Scene) -> None:
    login(client, "grantee")
    page = client.get(f"/datasets/{cast.entry_id}")
    assert 'class="table data-preview"' in page.text and ROW in page.text
    download = client.get(f"/api/v1/resources/{cast.resource_id}/download", params={"format": "csv"})
    assert download.status_code == 200 and ROW in download.text


def test_revoking_stops_an_api_key_at_once(client: TestClient, scene: Scene, db) -> None:
    scene.users["grantee"] = scene.factory.user("grantee")
    scene.granted("grantee")
    url = f"/api/v1/resources/{scene.resource_id}/data"
    assert client.get(url, headers=scene.headers("grantee")).status_code == 200
    scene.call("reviewer", access.revoke_grant, db.scalar(select(Grant.id)), "违反协议约定的用途")
    assert client.get(url, headers=scene.headers("grantee")).status_code == 403
