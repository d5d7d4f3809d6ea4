"""Suspension (Art. 29) end to end: the provider proposes, the operator confirms; sessions end, API
keys answer 403 with the reason, grants freeze, login is refused with why and whom to contact;
reinstatement goes the same way and restores what has not ended."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kaifang.access import suspension
from kaifang.access.grants import active_grant_ids
from kaifang.access.models import Application, Grant
from kaifang.accounts.models import AuthSession
from kaifang.audit.models import AuditRecord
from kaifang.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from kaifang.notify.models import Notification
from tests.access.conftest import Scene
from tests.conftest import PASSWORD, assert_error, csrf_token, login

REASON = "违反使用协议第六条，将数据提供给第三方公司"
EVIDENCE = "2026-11-20 履约核查：第三方网站公开了协议数据的副本"


@pytest.fixture
def suspended_scene(scene: Scene, db) -> Scene:
    """The applicant holds a grant; an operator exists."""
    scene.users["operator"] = scene.factory.user("ops", system_role="operator")
    scene.granted()
    return scene


def provider_of(db, scene: Scene) -> int:
    return int(db.scalar(select(Application.provider_id)))


def sessions_of(db, user_id: int) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)))


def test_suspension_and_reinstatement_end_to_end(client: TestClient, suspended_scene: Scene, db) -> None:
    scene = suspended_scene
    provider, user_id = provider_of(db, scene), scene.users["applicant"].id
    data_url = f"/api/v1/resources/{scene.resource_id}/data"
    key = scene.headers("applicant")
    assert client.get(data_url, headers=key).status_code == 200
    login(client, "applicant")
    assert client.get("/account/applications").status_code == 200
    assert sessions_of(db, user_id) == 1

    proposal = scene.call("reviewer", suspension.propose, provider, user_id, REASON, EVIDENCE)
    assert client.get(data_url, headers=key).status_code == 200  # nothing happens before confirmation
    scene.call("operator", suspension.confirm, proposal.id, "已核实")

    assert sessions_of(db, user_id) == 0
    page = client.get("/account/applications", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")  # the session is gone
    error = assert_error(client.get(data_url, headers=key), 403, "account_suspended")
    assert REASON in error["message"] and "市大数据管理中心" in error["message"]
    for path in ("download?format=csv", "sql?sql=SELECT%20*%20FROM%20data"):
        assert client.get(f"/api/v1/resources/{scene.resource_id}/{path}", headers=key).status_code == 403
    assert active_grant_ids(db, user_id) == {}  # frozen even for a caller that built the actor itself

    client.cookies.clear()
    client.get("/login")
    refused = client.post(
        "/login",
        data={
            "login": "applicant",
            "password": PASSWORD,
            "csrf_token": csrf_token(client),
        },
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "该账号已被暂停使用" in refused.text and REASON in refused.text
    assert "海河市生态环境局" in refused.text and "市大数据管理中心" in refused.text

    scene.call("reviewer", suspension.propose_reinstatement, proposal.id, "已删除第三方副本并提交整改报告")
    assert client.get(data_url, headers=key).status_code == 403  # still suspended until confirmed
    scene.call("operator", suspension.confirm_reinstatement, proposal.id)
    assert client.get(data_url, headers=key).status_code == 200
    grant_id = db.scalar(select(Grant.id).where(Grant.user_id == user_id))
    assert active_grant_ids(db, user_id) == {scene.entry_id: grant_id}
    login(client, "applicant")
    assert client.get("/account/applications").status_code == 200

    actions = list(
        db.scalars(
            select(AuditRecord.action).where(AuditRecord.target_type == "suspension").order_by(AuditRecord.id)
        )
    )
    assert actions == [
        "access:suspension:proposed",
        "access:suspension:confirmed",
        "access:suspension:reinstatement_proposed",
        "access:suspension:reinstated",
    ]
    told = {(n.user_id, n.title) for n in db.scalars(select(Notification))}
    assert (scene.users["operator"].id, "暂停服务申请待核实确认") in told
    assert (user_id, "您的账号已被暂停使用") in told
    assert (scene.users["reviewer"].id, "暂停服务已确认") in told
    assert (user_id, "您的账号已恢复服务") in told


def test_who_may_propose_and_confirm(suspended_scene: Scene, db) -> None:
    scene = suspended_scene
    provider, user_id = provider_of(db, scene), scene.users["applicant"].id
    with pytest.raises(PermissionDenied):
        scene.call("user", suspension.propose, provider, user_id, REASON, EVIDENCE)
    with pytest.raises(PermissionDenied):
        scene.call("operator", suspension.propose, provider, user_id, REASON, EVIDENCE)
    with pytest.raises(NotFound):  # no grant from this provider
        scene.call("reviewer", suspension.propose, provider, scene.users["user"].id, REASON, EVIDENCE)
    with pytest.raises(InvalidInput) as bad:
        scene.call("reviewer", suspension.propose, provider, user_id, "", "")
    assert set(bad.value.fields) == {"reason", "evidence"}
    proposal = scene.call("reviewer", suspension.propose, provider, user_id, REASON, EVIDENCE)
    with pytest.raises(Conflict):
        scene.call("reviewer", suspension.propose, provider, user_id, REASON, EVIDENCE)
    with pytest.raises(PermissionDenied):
        scene.call("reviewer", suspension.confirm, proposal.id)
    with pytest.raises(PermissionDenied):
        scene.call("regulator", suspension.confirm, proposal.id)
    with pytest.raises(NotFound):
        scene.call("other_reviewer", suspension.propose_reinstatement, proposal.id, "整改完成情况说明")
    with pytest.raises(InvalidInput):
        scene.call("operator", suspension.reject, proposal.id, "")
    scene.call("operator", suspension.reject, proposal.id, "证据不足，请补充核查记录")
    assert active_grant_ids(db, user_id) != {}
    assert [s.status for s in scene.call("regulator", suspension.list_suspensions)] == ["rejected"]
    with pytest.raises(PermissionDenied):
        scene.call("user", suspension.list_suspensions)


def test_suspensions_through_the_pages_and_api(client: TestClient, suspended_scene: Scene, db) -> None:
    scene = suspended_scene
    provider, user_id = provider_of(db, scene), scene.users["applicant"].id
    login(client, "rev")
    page = client.get("/suspensions")
    assert page.status_code == 200 and f'value="{provider}:{user_id}"' in page.text
    proposed = client.post(
        "/suspensions",
        data={
            "target": f"{provider}:{user_id}",
            "reason": REASON,
            "evidence": EVIDENCE,
            "csrf_token": csrf_token(client),
        },
        follow_redirects=False,
    )
    assert proposed.status_code == 303
    suspension_id = scene.call("regulator", suspension.list_suspensions)[0].id
    client.cookies.clear()
    operator_page = login(client, "ops").get("/suspensions")
    assert operator_page.status_code == 200 and "核实确认，暂停服务" in operator_page.text
    assert f'action="/suspensions/{suspension_id}/confirm"' in operator_page.text
    assert login(client, "ops").get("/admin/access/stats").status_code == 200
    client.cookies.clear()  # API calls with a key, no session cookie
    body = {"note": "已核实"}
    assert_error(
        client.post(
            f"/api/v1/suspensions/{suspension_id}/confirm", json=body, headers=scene.headers("reviewer")
        ),
        403,
    )
    confirmed = client.post(
        f"/api/v1/suspensions/{suspension_id}/confirm", json=body, headers=scene.headers("operator")
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
    queue = login(client, "rev").get("/workspace/applications").text
    assert "已冻结（用户暂停服务）" in queue
