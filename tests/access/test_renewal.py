"""续期: the grantee asks to renew from the application page; a new application, pre-filled from the
granted one and editable, names the grant it renews and follows the normal path. Only the grantee,
only while the grant is in force or ended at most 30 days ago, never after a revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kaifang.access import service as access
from kaifang.access.grants import city_today
from kaifang.access.models import Application, ApplicationStatus, Grant
from kaifang.app import Platform
from kaifang.errors import Conflict, NotFound
from tests.access.conftest import Scene
from tests.access.test_pages import post
from tests.conftest import assert_error, login


def grant_of(platform: Platform, app_id: int) -> Grant:
    with platform.db.session() as db:
        grant = db.scalar(select(Grant).where(Grant.application_id == app_id))
        assert grant is not None
        return grant


def end_grant(platform: Platform, grant_id: int, days_ago: int) -> None:
    """Moves a grant's term so that its last day was `days_ago` days ago."""
    last = city_today() - timedelta(days=days_ago)
    with platform.db.session() as db:
        db.execute(
            update(Grant)
            .where(Grant.id == grant_id)
            .values(starts_on=last - timedelta(days=29), ends_on=last + timedelta(days=1))
        )


def test_renew_from_the_application_page(client: TestClient, scene: Scene, platform: Platform) -> None:
    app_id = scene.granted()
    grant = grant_of(platform, app_id)
    login(client, "applicant")
    page = client.get(f"/applications/{app_id}").text
    assert f'href="/grants/{grant.id}/renew"' in page and "申请续期" in page
    form = client.get(f"/grants/{grant.id}/renew")
    assert form.status_code == 200
    assert f'action="/grants/{grant.id}/renew"' in form.text and "续期申请" in form.text
    assert "研究城市空气质量与交通出行的关系，形成学术论文" in form.text  # pre-filled, editable
    data = {
        "purpose": "继续研究城市空气质量与交通出行的关系，补充冬季数据",
        "scenario": "高校科研",
        "period_days": "90",
        "security_measures": "数据存放于内网服务器，仅课题组三人可访问，期满删除",
        "contact": "王老师 13800138000",
        "resource_ids": str(scene.resource_id),
    }
    bad = post(client, f"/grants/{grant.id}/renew", {**data, "period_days": "999"})
    assert bad.status_code == 422 and "使用时限应为 1 至 365 天" in bad.text and "补充冬季数据" in bad.text
    done = post(client, f"/grants/{grant.id}/renew", data)
    assert done.status_code == 303, done.text[:300]
    with platform.db.session() as db:
        renewal = db.scalar(select(Application).where(Application.renews_grant_id == grant.id))
        assert renewal is not None
        assert renewal.status == ApplicationStatus.submitted and renewal.period_days == 90
        assert renewal.purpose.startswith("继续研究") and renewal.entry_id == scene.entry_id
    assert done.headers["location"] == f"/applications/{renewal.id}"
    assert f"授权 {grant.id} 的续期申请" in client.get(done.headers["location"]).text
    again = post(client, f"/grants/{grant.id}/renew", data)  # one open application per entry
    assert again.status_code == 303 and again.headers["location"] == f"/applications/{app_id}"
    # the normal path: acceptance, decision, a new agreement and a new grant
    scene.call("reviewer", access.accept, renewal.id)
    scene.call("reviewer", access.approve, renewal.id)
    scene.sign("applicant", renewal.id)
    scene.sign("reviewer", renewal.id)
    renewed = grant_of(platform, renewal.id)
    assert renewed.id != grant.id
    with pytest.raises(Conflict, match="该授权已续期"):  # the renewed grant is the one to renew next
        scene.call("applicant", access.renew, grant.id, scene.form())
    assert "申请续期" not in client.get(f"/applications/{app_id}").text
    assert f'href="/grants/{renewed.id}/renew"' in client.get(f"/applications/{renewal.id}").text


def test_only_the_grantee_renews(client: TestClient, scene: Scene, platform: Platform) -> None:
    grant = grant_of(platform, scene.granted())
    for who in ("user", "reviewer", "regulator"):
        with pytest.raises(NotFound):
            scene.call(who, access.renew, grant.id, scene.form())
    login(client, "citizen")
    assert client.get(f"/grants/{grant.id}/renew").status_code == 404
    assert post(client, f"/grants/{grant.id}/renew", {"purpose": "x"}).status_code == 404
    api = TestClient(client.app)  # an API client carries no session cookie
    refused = api.post(f"/api/v1/grants/{grant.id}/renewal", json={}, headers=scene.headers("other_reviewer"))
    assert_error(refused, 404)
    assert client.get("/grants/999999/renew").status_code == 404


@pytest.mark.parametrize(("days_ago", "allowed"), [(-10, True), (0, True), (30, True), (31, False)])
def test_the_renewal_window(scene: Scene, platform: Platform, days_ago: int, allowed: bool) -> None:
    """In force (last day in the future or today) or ended at most 30 days ago."""
    grant = grant_of(platform, scene.granted())
    end_grant(platform, grant.id, days_ago)
    if allowed:
        assert scene.call("applicant", access.renew, grant.id, scene.form()).renews_grant_id == grant.id
    else:
        with pytest.raises(Conflict, match="到期超过 30 天"):
            scene.call("applicant", access.renew, grant.id, scene.form())


def test_a_revoked_grant_is_not_renewed(client: TestClient, scene: Scene, platform: Platform) -> None:
    app_id = scene.granted()
    grant = grant_of(platform, app_id)
    scene.call("reviewer", access.revoke_grant, grant.id, "超出约定用途使用数据")
    with pytest.raises(Conflict, match="已被撤销"):
        scene.call("applicant", access.renew, grant.id, scene.form())
    login(client, "applicant")
    assert "申请续期" not in client.get(f"/applications/{app_id}").text
    form = client.get(f"/grants/{grant.id}/renew", follow_redirects=False)
    assert form.status_code == 303 and form.headers["location"] == f"/applications/{app_id}"
    api = client.get(f"/api/v1/grants/{grant.id}/renewal", headers=scene.headers("applicant"))
    assert_error(api, 409)


def test_renewal_through_the_api(client: TestClient, scene: Scene, platform: Platform) -> None:
    grant = grant_of(platform, scene.granted())
    headers = scene.headers("applicant")
    prefill = client.get(f"/api/v1/grants/{grant.id}/renewal", headers=headers)
    assert prefill.status_code == 200
    body = prefill.json()
    assert body["purpose"] == "研究城市空气质量与交通出行的关系，形成学术论文"
    assert body["resource_ids"] == [scene.resource_id] and body["period_days"] == 30
    created = client.post(
        f"/api/v1/grants/{grant.id}/renewal", json={**body, "period_days": 60}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["renews_grant_id"] == grant.id and created.json()["period_days"] == 60
    assert_error(client.post(f"/api/v1/grants/{grant.id}/renewal", json=body, headers=headers), 409)
    titles = [
        n["title"] for n in client.get("/api/v1/notifications", headers=scene.headers("reviewer")).json()
    ]
    assert titles[0] == "开放申请待受理：空气质量监测明细"
