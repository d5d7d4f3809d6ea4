"""管理后台 through the real pages: confirmation queue, taxonomies, users, organisations, history."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kaifang.accounts.models import Membership, Organisation, User
from kaifang.catalog.models import Entry, TaxonomyTerm
from tests.conftest import Factory, csrf_token, login

NEW_PASSWORD = "Blue-River-Lamp-73!"

ADMIN_PAGES = [
    "/admin",
    "/admin/confirmations",
    "/admin/taxonomies",
    "/admin/users",
    "/admin/users/new",
    "/admin/orgs",
    "/admin/orgs/new",
    "/admin/entries",
]


def post(client: TestClient, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)}, follow_redirects=False)


@pytest.fixture
def org(factory: Factory) -> Organisation:
    return factory.org("jtw", "海河市交通运输委员会")


@pytest.fixture
def pub(factory: Factory, org: Organisation) -> User:
    return factory.user("pub", org=org, roles=("publisher",))


@pytest.fixture
def regulator(client: TestClient, factory: Factory) -> TestClient:
    factory.user("regulator", system_role="regulator")
    return login(client, "regulator")


@pytest.fixture
def operator(client: TestClient, factory: Factory) -> TestClient:
    factory.user("operator", system_role="operator")
    return login(client, "operator")


def _status(db: Session, entry_id: int) -> str:
    db.expire_all()
    entry = db.get(Entry, entry_id)
    assert entry is not None
    return entry.status


# --- who may enter -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_is_sent_to_login(client: TestClient, url: str) -> None:
    response = client.get(url, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_citizens_and_provider_staff_get_403(
    client: TestClient, factory: Factory, pub: User, url: str
) -> None:
    factory.user("citizen")
    for username in ("citizen", "pub"):
        login(client, username)
        response = client.get(url)
        assert response.status_code == 403, (username, url)
        assert "没有访问权限" in response.text


def test_non_supervisors_cannot_post_to_admin(
    client: TestClient, factory: Factory, org: Organisation, pub: User
) -> None:
    entry_id = factory.entry(pub, org, status="submitted")
    login(client, "pub")
    assert post(client, f"/admin/entries/{entry_id}/confirm").status_code == 403
    assert (
        post(client, "/admin/taxonomies", {"kind": "theme", "code": "x1", "name": "测试"}).status_code == 403
    )
    assert post(client, "/admin/orgs/new", {"name": "某单位", "slug": "mdw"}).status_code == 403


def test_regulator_pages_and_operator_pages_are_separate(client: TestClient, factory: Factory) -> None:
    factory.user("regulator", system_role="regulator")
    factory.user("operator", system_role="operator")
    login(client, "regulator")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/orgs").status_code == 403
    login(client, "operator")
    assert client.get("/admin/confirmations").status_code == 403
    assert client.get("/admin/taxonomies").status_code == 200


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_counts(regulator: TestClient, factory: Factory, org: Organisation, pub: User) -> None:
    factory.entry(pub, org, status="submitted")
    factory.entry(pub, org, status="draft")
    page = regulator.get("/admin")
    assert page.status_code == 200
    assert "等待确认（新目录 1，变更 0）" in page.text
    assert 'href="/admin/confirmations"' in page.text and 'href="/admin/taxonomies"' in page.text


def test_operator_dashboard_links(operator: TestClient) -> None:
    page = operator.get("/admin").text
    assert 'href="/admin/users"' in page and 'href="/admin/orgs"' in page


# --- confirmation queue (regulator) ---------------------------------------------------------------


def test_regulator_confirms_one_entry_and_returns_another(
    regulator: TestClient, factory: Factory, org: Organisation, pub: User, db: Session
) -> None:
    first = factory.entry(pub, org, status="submitted", title="公交线路信息")
    second = factory.entry(pub, org, status="submitted", title="出租汽车企业名录")
    queue = regulator.get("/admin/confirmations")
    assert queue.status_code == 200
    assert "公交线路信息" in queue.text and "出租汽车企业名录" in queue.text
    assert "新目录" in queue.text and "海河市交通运输委员会" in queue.text

    assert post(regulator, f"/admin/entries/{first}/confirm", {"comment": "符合要求"}).status_code == 303
    assert _status(db, first) == "confirmed"

    refused = post(regulator, f"/admin/entries/{second}/return", {"reason": ""})
    assert refused.status_code == 422 and "请填写退回理由" in refused.text
    assert _status(db, second) == "submitted"
    returned = post(regulator, f"/admin/entries/{second}/return", {"reason": "摘要过于简略，请补充统计口径"})
    assert returned.status_code == 303
    assert _status(db, second) == "returned"

    assert "目前没有等待确认" in regulator.get("/admin/confirmations").text
    again = post(regulator, f"/admin/entries/{first}/confirm")
    assert again.status_code == 303
    assert "只有待确认的目录可以确认" in regulator.get("/admin/confirmations").text

    publisher = TestClient(regulator.app)
    login(publisher, "pub")
    page = publisher.get(f"/workspace/entries/{second}").text
    assert "摘要过于简略，请补充统计口径" in page


def test_change_shows_a_field_by_field_diff(
    client: TestClient, factory: Factory, org: Organisation, pub: User
) -> None:
    from kaifang.catalog import service
    from kaifang.db import Database

    regulator_user = factory.user("regulator", system_role="regulator")
    entry_id = factory.entry(pub, org, regulator=regulator_user)
    database: Database = client.app.state.kf.db  # type: ignore[attr-defined]
    with database.session() as db:
        actor = factory.actor(pub)
        service.edit_entry(db, actor, entry_id, {"title": "公交线路（新版）", "formats": ["CSV", "XLSX"]})
        service.submit_entry(db, actor, entry_id)
    login(client, "regulator")
    page = client.get("/admin/confirmations").text
    assert "已发布目录的变更" in page
    assert "数据集名称" in page and "海河市公交线路及站点信息" in page and "公交线路（新版）" in page
    assert "CSV、JSON" in page and "CSV、XLSX" in page


# --- taxonomies -----------------------------------------------------------------------------------


def test_regulator_adds_and_edits_a_taxonomy_term(regulator: TestClient, db: Session) -> None:
    page = regulator.get("/admin/taxonomies")
    assert page.status_code == 200
    for section in ("主题分类", "行业分类", "数据分级"):
        assert section in page.text

    added = post(
        regulator,
        "/admin/taxonomies",
        {
            "kind": "theme",
            "code": "dsjj",
            "name": "数字经济",
            "description": "数字产业",
            "sort": "40",
            "is_active": "1",
        },
    )
    assert added.status_code == 303
    term = db.query(TaxonomyTerm).filter_by(kind="theme", code="dsjj").one()
    assert term.name == "数字经济" and term.sort == 40 and term.is_active

    edit = regulator.get("/admin/taxonomies?kind=theme&code=dsjj")
    assert "修改主题分类：dsjj" in edit.text
    assert (
        post(
            regulator,
            "/admin/taxonomies",
            {"kind": "theme", "code": "dsjj", "name": "数字经济", "sort": "40"},
        ).status_code
        == 303
    )
    db.expire_all()
    assert not db.query(TaxonomyTerm).filter_by(kind="theme", code="dsjj").one().is_active

    bad = post(regulator, "/admin/taxonomies", {"kind": "theme", "code": "带中文", "name": "", "sort": "1"})
    assert bad.status_code == 422 and "编码为 1-20 位" in bad.text
    bad_sort = post(
        regulator, "/admin/taxonomies", {"kind": "grade", "code": "L9", "name": "测试", "sort": "abc"}
    )
    assert bad_sort.status_code == 422 and "排序应为" in bad_sort.text


def test_operator_reads_taxonomies_but_cannot_edit(operator: TestClient) -> None:
    page = operator.get("/admin/taxonomies")
    assert page.status_code == 200 and "新增主题分类" not in page.text
    assert (
        post(operator, "/admin/taxonomies", {"kind": "theme", "code": "x1", "name": "测试"}).status_code
        == 403
    )


# --- users (operator) -----------------------------------------------------------------------------


def test_operator_creates_and_edits_a_user(operator: TestClient, db: Session) -> None:
    assert operator.get("/admin/users/new").status_code == 200
    form = {
        "username": "zhang-wei",
        "email": "zhang.wei@example.gov.cn",
        "display_name": "张伟",
        "user_type": "individual",
        "system_role": "",
        "password": NEW_PASSWORD,
        "is_active": "1",
    }
    created = post(operator, "/admin/users/new", form)
    assert created.status_code == 303
    user = db.query(User).filter_by(username="zhang-wei").one()
    assert user.email_verified_at is not None and user.system_role is None

    weak = post(
        operator,
        "/admin/users/new",
        {**form, "username": "li-na", "email": "li@example.com", "password": "123"},
    )
    assert (
        weak.status_code == 422
        and 'name="password"' in weak.text
        and "123" not in weak.text.split('name="password"')[1][:40]
    )
    taken = post(operator, "/admin/users/new", form)
    assert taken.status_code == 422 and "该用户名已被注册" in taken.text

    listing = operator.get("/admin/users?q=zhang")
    assert "zhang-wei" in listing.text and "张伟" in listing.text
    assert "没有找到" in operator.get("/admin/users?q=nobody-here").text

    edited = post(
        operator,
        f"/admin/users/{user.id}",
        {
            "email": "zw@example.gov.cn",
            "display_name": "张伟（监管）",
            "user_type": "individual",
            "system_role": "regulator",
        },
    )
    assert edited.status_code == 303
    db.expire_all()
    user = db.query(User).filter_by(username="zhang-wei").one()
    assert user.system_role == "regulator" and user.display_name == "张伟（监管）"

    fresh = TestClient(operator.app)
    login(fresh, "zhang-wei", NEW_PASSWORD)
    assert fresh.get("/admin").status_code == 200


def test_operator_disables_a_user_whose_login_then_fails(
    operator: TestClient, factory: Factory, db: Session
) -> None:
    citizen = factory.user("citizen")
    page = operator.get(f"/admin/users/{citizen.id}")
    assert page.status_code == 200 and "停用账号" in page.text
    disabled = post(operator, f"/admin/users/{citizen.id}/active", {"active": "0", "comment": "账号转让"})
    assert disabled.status_code == 303
    db.expire_all()
    assert not db.get(User, citizen.id).is_active  # type: ignore[union-attr]

    other = TestClient(operator.app)
    other.get("/login")
    refused = post(other, "/login", {"login": "citizen", "password": "Test-password-2026"})
    assert refused.status_code == 403 and "该账号已停用" in refused.text

    assert post(operator, f"/admin/users/{citizen.id}/active", {"active": "1"}).status_code == 303
    login(other, "citizen")


def test_operator_cannot_disable_themself(operator: TestClient, db: Session) -> None:
    me = db.query(User).filter_by(username="operator").one()
    response = post(operator, f"/admin/users/{me.id}/active", {"active": "0"})
    assert response.status_code == 409 and "不能停用自己的账号" in response.text


def test_user_page_lists_memberships(operator: TestClient, pub: User) -> None:
    page = operator.get(f"/admin/users/{pub.id}").text
    assert "海河市交通运输委员会" in page and "目录发布员" in page


# --- organisations (operator) ---------------------------------------------------------------------


def test_operator_creates_an_org_and_adds_its_admin(
    operator: TestClient, factory: Factory, db: Session
) -> None:
    factory.user("wjw-admin")
    form = {
        "name": "海河市卫生健康委员会",
        "slug": "wjw",
        "org_type": "department",
        "description": "",
        "responsible_office": "规划发展与信息化处",
        "contact_phone": "022-23331234",
        "contact_email": "wjw@example.gov.cn",
    }
    created = post(operator, "/admin/orgs/new", form)
    assert created.status_code == 303
    org = db.query(Organisation).filter_by(slug="wjw").one()
    assert org.responsible_office == "规划发展与信息化处"

    duplicate = post(operator, "/admin/orgs/new", form)
    assert duplicate.status_code == 422 and "已有同名单位" in duplicate.text
    bad_slug = post(operator, "/admin/orgs/new", {**form, "name": "另一单位", "slug": "X"})
    assert bad_slug.status_code == 422 and "单位标识须为" in bad_slug.text

    added = post(operator, f"/workspace/org/{org.id}/members", {"username": "wjw-admin", "role": "admin"})
    assert added.status_code == 303
    assert db.query(Membership).filter_by(org_id=org.id, role="admin").count() == 1

    assert "海河市卫生健康委员会" in operator.get("/admin/orgs").text
    edited = post(operator, f"/admin/orgs/{org.id}", {**form, "description": "主管全市卫生健康工作"})
    assert edited.status_code == 303

    assert (
        post(operator, f"/admin/orgs/{org.id}/active", {"active": "0", "comment": "机构改革"}).status_code
        == 303
    )
    db.expire_all()
    assert not db.get(Organisation, org.id).is_active  # type: ignore[union-attr]
    assert "已停用" in operator.get("/admin/orgs").text


# --- every entry and its history ------------------------------------------------------------------


def test_entries_list_filters_and_history(
    operator: TestClient, factory: Factory, org: Organisation, pub: User
) -> None:
    published = factory.entry(pub, org, title="公交线路信息")
    factory.entry(pub, org, status="draft", title="停车场信息")
    everything = operator.get("/admin/entries").text
    assert "公交线路信息" in everything and "停车场信息" in everything
    drafts = operator.get("/admin/entries?status=draft").text
    assert "停车场信息" in drafts and "公交线路信息" not in drafts
    assert "没有符合条件的目录" in operator.get(f"/admin/entries?provider={org.id + 100}").text
    assert operator.get("/admin/entries?status=bogus").status_code == 200

    history = operator.get(f"/admin/entries/{published}/history")
    assert history.status_code == 200
    for action in ("新建", "提交确认", "确认", "发布"):
        assert f"<td>{action}</td>" in history.text
    assert "已确认" in history.text and "已发布" in history.text


def test_entries_list_pages_through_everything(
    operator: TestClient, factory: Factory, org: Organisation, pub: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kaifang.web import admin_views

    monkeypatch.setattr(admin_views, "ENTRY_LIMIT", 2)
    for title in ("甲目录", "乙目录", "丙目录"):
        factory.entry(pub, org, status="draft", title=title)
    first, second = operator.get("/admin/entries").text, operator.get("/admin/entries?page=2").text
    assert "共 3 条" in first and "page=2" in first
    shown = [t for t in ("甲目录", "乙目录", "丙目录") if t in first] + [
        t for t in ("甲目录", "乙目录", "丙目录") if t in second
    ]
    assert sorted(shown) == sorted(["甲目录", "乙目录", "丙目录"])  # each once, across the two pages
    assert operator.get("/admin/entries?page=0").status_code == 422


@pytest.mark.parametrize(
    "url",
    ["/admin/entries/99999999999/history", "/admin/users/0", "/admin/orgs/abc", "/admin/entries?provider=x"],
)
def test_hostile_ids_get_a_chinese_4xx(operator: TestClient, url: str) -> None:
    response = operator.get(url)
    assert 400 <= response.status_code < 500
    assert "提交的数据有误" in response.text or "不存在" in response.text


def test_missing_records_are_404(operator: TestClient) -> None:
    assert operator.get("/admin/users/12345").status_code == 404
    assert operator.get("/admin/orgs/12345").status_code == 404
    assert operator.get("/admin/entries/12345/history").status_code == 404
