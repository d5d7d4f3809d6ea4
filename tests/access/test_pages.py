"""The 有条件开放 pages through the real forms: apply, the reviewer's queue and decisions, the
agreement and its signing, 我的申请, and revocation."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kaifang.access import service as access
from kaifang.access.models import Application, Grant
from tests.access.conftest import Scene
from tests.conftest import csrf_token, login

FORM = {
    "purpose": "研究城市空气质量与交通出行的关系",
    "scenario": "高校科研",
    "period_days": "60",
    "security_measures": "内网服务器存放，仅课题组可访问，期满删除",
    "contact": "wang@example.edu.cn",
}


def post(client: TestClient, url: str, data: dict | None = None):
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)}, follow_redirects=False)


def test_entry_page_offers_the_application(client: TestClient, scene: Scene) -> None:
    anonymous = client.get(f"/datasets/{scene.entry_id}").text
    assert f"/login?next=/datasets/{scene.entry_id}/apply" in anonymous
    login(client, "applicant")
    page = client.get(f"/datasets/{scene.entry_id}").text
    assert f'href="/datasets/{scene.entry_id}/apply"' in page and "申请使用" in page
    assert 'class="table data-preview"' not in page


def test_apply_through_the_form(client: TestClient, scene: Scene, db) -> None:
    login(client, "applicant")
    form = client.get(f"/datasets/{scene.entry_id}/apply")
    assert form.status_code == 200 and "安全保障措施" in form.text and "空气质量日报" in form.text
    bad = post(client, f"/datasets/{scene.entry_id}/apply", {**FORM, "contact": "王老师"})
    assert bad.status_code == 422 and "请填写联系电话或电子邮箱" in bad.text
    assert "研究城市空气质量与交通出行的关系" in bad.text  # what was typed is kept
    done = post(client, f"/datasets/{scene.entry_id}/apply", {**FORM, "resource_ids": str(scene.resource_id)})
    assert done.status_code == 303, done.text[:300]
    application = db.scalar(select(Application))
    assert done.headers["location"] == f"/applications/{application.id}"
    assert application.period_days == 60 and application.resource_ids == [scene.resource_id]
    again = post(
        client, f"/datasets/{scene.entry_id}/apply", {**FORM, "resource_ids": str(scene.resource_id)}
    )
    assert again.status_code == 303 and again.headers["location"] == f"/datasets/{scene.entry_id}"
    mine = client.get("/account/applications").text
    assert "空气质量监测明细" in mine and "待受理" in mine and "受理后计算" in mine


def test_review_in_the_workspace_shows_due_dates_and_overdue(client: TestClient, scene: Scene, db) -> None:
    app_id = scene.apply()
    login(client, "rev")
    assert post(client, f"/applications/{app_id}/accept").status_code == 303
    due = db.scalar(select(Application.due_on))
    queue = client.get("/workspace/applications").text
    assert f'href="/applications/{app_id}"' in queue and due.isoformat() in queue and "已逾期" not in queue
    db.execute(update(Application).values(due_on=due - timedelta(days=10)))
    db.commit()
    assert "已逾期" in client.get("/workspace/applications").text
    assert "已逾期" in client.get(f"/applications/{app_id}").text


def test_refusal_form_needs_reason_and_basis(client: TestClient, scene: Scene, db) -> None:
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    login(client, "rev")
    bad = post(client, f"/applications/{app_id}/refuse", {"reason": "用途超出开放条件", "basis": ""})
    assert bad.status_code == 422 and "不予批准须同时说明理由和依据" in bad.text
    ok = post(
        client, f"/applications/{app_id}/refuse", {"reason": "用途超出开放条件", "basis": "《办法》第十条"}
    )
    assert ok.status_code == 303
    client.cookies.clear()
    login(client, "applicant")
    page = client.get(f"/applications/{app_id}").text
    assert "用途超出开放条件" in page and "《办法》第十条" in page


def test_return_and_complete_through_the_pages(client: TestClient, scene: Scene, db) -> None:
    app_id = scene.apply()
    login(client, "rev")
    assert (
        post(client, f"/applications/{app_id}/return", {"comment": "请补充数据销毁方式"}).status_code == 303
    )
    client.cookies.clear()
    login(client, "applicant")
    page = client.get(f"/applications/{app_id}").text
    assert "请补充数据销毁方式" in page and f"/applications/{app_id}/resubmit" in page
    done = post(
        client,
        f"/applications/{app_id}/resubmit",
        {
            **FORM,
            "security_measures": "加密存储，期满三日内销毁并出具说明",
            "resource_ids": str(scene.resource_id),
        },
    )
    assert done.status_code == 303
    db.expire_all()
    assert db.get(Application, app_id).status == "submitted"


def test_approve_sign_both_sides_and_revoke(client: TestClient, scene: Scene, db) -> None:
    app_id = scene.apply()
    login(client, "rev")
    assert post(client, f"/applications/{app_id}/accept").status_code == 303
    assert post(client, f"/applications/{app_id}/approve").status_code == 303
    page = client.get(f"/applications/{app_id}/agreement").text
    assert "海河市公共数据有条件开放使用协议" in page and "确认签订" in page
    digest = re.search(r'name="sha256" value="([0-9a-f]{64})"', page).group(1)
    assert post(client, f"/applications/{app_id}/agreement/sign", {"sha256": digest}).status_code == 303
    assert "确认签订" not in client.get(f"/applications/{app_id}/agreement").text
    client.cookies.clear()
    login(client, "applicant")
    assert "待我签订" in client.get("/account/applications").text
    stale = post(client, f"/applications/{app_id}/agreement/sign", {"sha256": "0" * 64})
    assert stale.status_code == 303 and db.scalar(select(Grant)) is None
    assert post(client, f"/applications/{app_id}/agreement/sign", {"sha256": digest}).status_code == 303
    grant = db.scalar(select(Grant))
    assert grant is not None
    mine = client.get("/account/applications").text
    assert "已签订" in mine and grant.last_day.isoformat() in mine and "有效" in mine
    assert 'class="table data-preview"' in client.get(f"/datasets/{scene.entry_id}").text
    client.cookies.clear()
    login(client, "rev")
    assert f"/workspace/grants/{grant.id}/revoke" in client.get("/workspace/applications").text
    assert post(client, f"/workspace/grants/{grant.id}/revoke", {"reason": "违反协议约定"}).status_code == 303
    db.expire_all()
    assert db.get(Grant, grant.id).revoked_at is not None


def test_outsiders_see_neither_queue_nor_application(client: TestClient, scene: Scene) -> None:
    app_id = scene.apply()
    login(client, "citizen")
    assert client.get("/workspace/applications").status_code == 403
    assert client.get(f"/applications/{app_id}").status_code == 404
    client.cookies.clear()
    login(client, "other-rev")
    assert client.get(f"/applications/{app_id}").status_code == 404
    assert post(client, f"/applications/{app_id}/accept").status_code == 404
