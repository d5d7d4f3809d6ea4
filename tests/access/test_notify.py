"""Every step of an application tells the other side: a message in the inbox and an e-mail in the
outbox, sent only after the step committed. The inbox, its API and the header count show each user
only their own messages."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from kaifang.access import service as access
from kaifang.access.models import Application, Grant
from kaifang.accounts.models import Membership, OrgRole, User
from kaifang.accounts.service import actor_for
from kaifang.app import Platform
from kaifang.notify import service as notify
from kaifang.notify.models import Notification
from tests.access.conftest import Scene
from tests.access.test_pages import post
from tests.conftest import login


def messages(platform: Platform, who: User) -> list[Notification]:
    with platform.db.session() as db:
        return list(
            db.scalars(select(Notification).where(Notification.user_id == who.id).order_by(Notification.id))
        )


def mails(platform: Platform, who: User) -> list[tuple[str, str]]:
    """(subject, body) of the e-mails to `who` in the file outbox, oldest first."""
    found = [m for m in platform.mailer.messages() if m["To"] == who.email]  # type: ignore[attr-defined]
    return [(str(m["Subject"]), m.get_content()) for m in found]


def test_each_step_notifies_the_other_side(scene: Scene, platform: Platform) -> None:
    applicant, reviewer = scene.users["applicant"], scene.users["reviewer"]
    app_id = scene.apply()
    [first] = messages(platform, reviewer)
    assert first.title == "开放申请待受理：空气质量监测明细" and first.link == f"/applications/{app_id}"
    [(subject, body)] = mails(platform, reviewer)
    assert "开放申请待受理" in subject and f"http://testserver/applications/{app_id}" in body

    scene.call("reviewer", access.return_for_completion, app_id, "请补充营业执照")
    scene.call("applicant", access.resubmit, app_id, scene.form())
    scene.call("reviewer", access.accept, app_id)
    scene.call("reviewer", access.approve, app_id)
    scene.sign("applicant", app_id)
    scene.sign("reviewer", app_id)
    to_applicant = [m.title.split("：")[0] for m in messages(platform, applicant)]
    assert to_applicant == ["开放申请需补正", "开放申请已受理", "开放申请已批准", "使用授权已生效"]
    returned, accepted, _approved, granted = messages(platform, applicant)
    assert "请补充营业执照" in returned.body
    with platform.db.session() as db:
        application = db.get(Application, app_id)
        assert application is not None
        due, grant_id = application.due_on, db.scalar(select(Grant.id).where(Grant.application_id == app_id))
    assert due is not None and f"应在 {due:%Y-%m-%d} 结束前作出决定" in accepted.body
    assert "授权自" in granted.body
    to_reviewer = [m.title.split("：")[0] for m in messages(platform, reviewer)]
    assert to_reviewer == ["开放申请待受理", "开放申请待受理", "申请人已签订使用协议"]
    assert "补正后重新提交" in messages(platform, reviewer)[1].body
    assert len(mails(platform, applicant)) == 4 and len(mails(platform, reviewer)) == 3

    scene.call("reviewer", access.revoke_grant, grant_id, "超出约定用途使用数据")
    revoked = messages(platform, applicant)[-1]
    assert revoked.title.startswith("使用授权已撤销") and "超出约定用途使用数据" in revoked.body
    assert "超出约定用途使用数据" in mails(platform, applicant)[-1][1]


def test_refusal_and_the_providers_first_signature_reach_the_applicant(
    scene: Scene, platform: Platform
) -> None:
    applicant = scene.users["applicant"]
    refused = scene.apply()
    scene.call("reviewer", access.accept, refused)
    scene.call("reviewer", access.refuse, refused, "用途与数据不相符", "《办法》第十条")
    last = messages(platform, applicant)[-1]
    assert last.title.startswith("开放申请不予批准")
    assert "理由：用途与数据不相符" in last.body and "依据：《办法》第十条" in last.body
    app_id = scene.approved()
    scene.sign("reviewer", app_id)
    assert messages(platform, applicant)[-1].title.startswith("提供单位已签订使用协议")
    scene.sign("applicant", app_id)
    assert messages(platform, applicant)[-1].title.startswith("使用授权已生效")
    assert [m.title for m in messages(platform, scene.users["reviewer"])][-1].startswith("申请人已签订")


def test_a_rolled_back_step_tells_nobody(scene: Scene, platform: Platform) -> None:
    app_id = scene.apply()
    before = len(platform.mailer.messages())  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), platform.db.session() as db:
        applicant = db.get(User, scene.users["applicant"].id)
        reviewer = db.get(User, scene.users["reviewer"].id)
        assert applicant is not None and reviewer is not None
        access.accept(db, actor_for(db, reviewer), app_id)
        raise RuntimeError("the request failed after the step")
    assert len(platform.mailer.messages()) == before  # type: ignore[attr-defined]
    assert messages(platform, scene.users["applicant"]) == []
    with platform.db.session() as db:  # a savepoint rolled back inside a committed transaction
        notify.notify(db, [scene.users["applicant"].id], "送达", "保存点之前")
        savepoint = db.begin_nested()
        notify.notify(db, [scene.users["applicant"].id], "不会送达", "随保存点回滚")
        db.flush()
        savepoint.rollback()
    assert [m.title for m in messages(platform, scene.users["applicant"])] == ["送达"]
    assert [s for s, _ in mails(platform, scene.users["applicant"])] == ["【海河市公共数据开放平台】送达"]


def test_a_mail_failure_is_logged_and_the_step_stands(
    scene: Scene, platform: Platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(to: str, subject: str, body: str) -> None:
        raise OSError("SMTP server unreachable")

    monkeypatch.setattr(platform.mailer, "send", broken)
    with caplog.at_level(logging.ERROR, logger="kaifang.notify.delivery"):
        app_id = scene.apply()
    assert "notification e-mail" in caplog.text
    assert [m.link for m in messages(platform, scene.users["reviewer"])] == [f"/applications/{app_id}"]


def test_provider_staff_and_operators(scene: Scene, platform: Platform) -> None:
    admin = scene.factory.user("org-admin")
    operator = scene.factory.user("op", system_role="operator")
    scene.factory.user("op-disabled", system_role="operator", active=False)
    with platform.db.session() as db:
        org_id = db.scalar(select(Membership.org_id).where(Membership.user_id == scene.users["reviewer"].id))
        assert notify.provider_staff(db, org_id) == [scene.users["reviewer"].id]
        assert notify.provider_staff(db, org_id, OrgRole.publisher) == [scene.users["publisher"].id]
        assert notify.operators(db) == [operator.id]
        db.execute(delete(Membership).where(Membership.role == OrgRole.reviewer))
        db.add(Membership(user_id=admin.id, org_id=org_id, role=OrgRole.admin))
        db.flush()
        assert notify.provider_staff(db, org_id) == [admin.id]  # nobody reviews: the admins hear of it


def test_inbox_page_unread_count_and_reading(client: TestClient, scene: Scene, platform: Platform) -> None:
    app_id = scene.apply()
    scene.call("reviewer", access.accept, app_id)
    scene.call("reviewer", access.approve, app_id)
    login(client, "applicant")
    home = client.get("/").text
    assert 'href="/account/inbox"' in home and '>2<span class="sr-only">条未读' in home
    page = client.get("/account/inbox").text
    assert page.index("开放申请已批准") < page.index("开放申请已受理")  # newest first
    assert page.count(">未读<") == 2 and "全部标为已读" in page
    approved = messages(platform, scene.users["applicant"])[-1]
    opened = client.get(f"/account/inbox/{approved.id}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/applications/{app_id}/agreement"
    assert messages(platform, scene.users["applicant"])[-1].read_at is not None
    assert '>1<span class="sr-only">条未读' in client.get("/account/inbox").text
    done = post(client, "/account/inbox/read")
    assert done.status_code == 303
    page = client.get("/account/inbox").text
    assert ">未读<" not in page and "条未读" not in page and "开放申请已受理" in page


def test_users_see_only_their_own_messages(client: TestClient, scene: Scene, platform: Platform) -> None:
    scene.apply()
    [theirs] = messages(platform, scene.users["reviewer"])
    login(client, "citizen")
    assert client.get(f"/account/inbox/{theirs.id}", follow_redirects=False).status_code == 404
    assert "开放申请待受理" not in client.get("/account/inbox").text
    assert post(client, "/account/inbox/read").status_code == 303
    assert messages(platform, scene.users["reviewer"])[0].read_at is None
    mine = client.get("/api/v1/notifications", headers=scene.headers("user"))
    assert mine.status_code == 200 and mine.json() == []
    own = client.get("/api/v1/notifications", headers=scene.headers("reviewer")).json()
    assert [n["id"] for n in own] == [theirs.id] and own[0]["read_at"] is None
    anonymous = TestClient(client.app)
    assert anonymous.get("/api/v1/notifications").status_code == 401
    assert anonymous.get("/account/inbox", follow_redirects=False).status_code in (302, 303, 401)
