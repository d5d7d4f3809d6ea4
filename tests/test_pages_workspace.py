"""单位工作台 through the real pages: entry form, workflow buttons, members and staff list."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kaifang.accounts.models import Membership, Organisation
from kaifang.catalog.models import CATALOG_FIELDS, Entry, TaxonomyTerm
from tests.conftest import Factory, csrf_token, login

FULL_FORM: dict[str, Any] = {
    "title": "海河市公交线路及站点信息",
    "summary": "全市公交线路走向、站点名称及经纬度。",
    "keywords": "公交，线路，站点",
    "theme": "jtys",
    "industry": "G",
    "grade": "L1",
    "open_type": "unconditional",
    "open_conditions": "",
    "usage_requirements": "注明数据来源",
    "terms_of_use": "",
    "closed_reason": "",
    "closed_legal_basis": "",
    "next_review_date": "",
    "update_frequency": "monthly",
    "access_methods": ["download", "api"],
    "formats": ["CSV", "JSON"],
    "contact_name": "林晓雯",
    "contact_phone": "022-23581025",
    "contact_email": "data@example.gov.cn",
    "spatial_coverage": "海河市全市",
    "temporal_start": "2020-01-01",
    "temporal_end": "",
}


def post(client: TestClient, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, data={**(data or {}), "csrf_token": csrf_token(client)}, follow_redirects=False)


def entry_in_db(db: Session, entry_id: int) -> Entry:
    db.expire_all()
    entry = db.get(Entry, entry_id)
    assert entry is not None
    return entry


@pytest.fixture
def org(factory: Factory) -> Organisation:
    return factory.org("jtw", "海河市交通运输委员会")


@pytest.fixture
def publisher(client: TestClient, factory: Factory, org: Organisation) -> TestClient:
    factory.user("pub", org=org, roles=("publisher",))
    return login(client, "pub")


def test_publisher_creates_edits_and_submits_an_entry(
    publisher: TestClient, org: Organisation, db: Session
) -> None:
    home = publisher.get("/workspace")
    assert home.status_code == 200
    assert "新建目录" in home.text and "海河市交通运输委员会" in home.text

    form = publisher.get(f"/workspace/entries/new?org={org.id}")
    assert form.status_code == 200
    for name in CATALOG_FIELDS:
        assert f'name="{name}"' in form.text, name
    for legend in (
        "基本信息",
        "分类分级",
        "开放属性",
        "更新与获取",
        "联系方式",
        "覆盖范围",
        "不予开放时必填",
    ):
        assert legend in form.text

    created = post(publisher, f"/workspace/entries/new?org={org.id}", {"title": "公交线路草稿"})
    assert created.status_code == 303
    url = created.headers["location"]
    entry_id = int(url.rsplit("/", 1)[1])
    assert "草稿" in publisher.get(url).text

    saved = post(publisher, url, FULL_FORM)
    assert saved.status_code == 303
    entry = entry_in_db(db, entry_id)
    assert entry.title == "海河市公交线路及站点信息"
    assert entry.keywords == ["公交", "线路", "站点"]
    assert entry.formats == ["CSV", "JSON"] and entry.access_methods == ["download", "api"]
    assert entry.temporal_start is not None and entry.temporal_start.isoformat() == "2020-01-01"

    submitted = post(publisher, f"{url}/submit", {"comment": "首次提交"})
    assert submitted.status_code == 303
    assert entry_in_db(db, entry_id).status == "submitted"
    page = publisher.get(url).text
    assert "等待主管部门确认" in page
    assert 'class="form-lock" disabled' in page
    assert "提交确认</button>" not in page
    assert "首次提交" in page and "新建" in page and "修改" in page


def test_incomplete_entry_cannot_be_submitted(publisher: TestClient, org: Organisation, db: Session) -> None:
    url = post(publisher, f"/workspace/entries/new?org={org.id}", {"title": "只有名称"}).headers["location"]
    response = post(publisher, f"{url}/submit")
    assert response.status_code == 422
    assert "请填写摘要" in response.text and "请至少填写一个关键词" in response.text
    assert 'aria-invalid="true"' in response.text
    assert entry_in_db(db, int(url.rsplit("/", 1)[1])).status == "draft"


def test_invalid_form_is_shown_again_with_errors(publisher: TestClient, org: Organisation) -> None:
    data = {**FULL_FORM, "title": "", "summary": "保留下来的摘要", "temporal_start": "2020-13-45"}
    response = post(publisher, f"/workspace/entries/new?org={org.id}", data)
    assert response.status_code == 422
    assert "日期格式应为 YYYY-MM-DD" in response.text
    assert "保留下来的摘要" in response.text

    response = post(publisher, f"/workspace/entries/new?org={org.id}", {**FULL_FORM, "title": ""})
    assert response.status_code == 422
    assert "请填写数据集名称" in response.text


def test_returned_entry_shows_the_reason(publisher: TestClient, factory: Factory, org: Organisation) -> None:
    pub = factory.user("pub2", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org, status="returned")
    page = publisher.get(f"/workspace/entries/{entry_id}").text
    assert "主管部门退回意见" in page and "信息不完整" in page
    assert "提交确认</button>" in page


def test_change_to_a_published_entry_stays_pending_until_published(
    client: TestClient, factory: Factory, org: Organisation, db: Session
) -> None:
    pub = factory.user("pub", org=org, roles=("publisher",))
    regulator = factory.user("regulator", system_role="regulator")
    entry_id = factory.entry(pub, org, status="confirmed", regulator=regulator)
    url = f"/workspace/entries/{entry_id}"
    login(client, "pub")
    assert post(client, f"{url}/publish").status_code == 303
    assert entry_in_db(db, entry_id).status == "published"

    changed = post(client, url, {**FULL_FORM, "title": "海河市公交线路（2026版）"})
    assert changed.status_code == 303
    assert client.get(f"/api/v1/datasets/{entry_id}").json()["title"] == "海河市公交线路及站点信息"
    page = client.get(url).text
    assert "公众看到的仍是已发布的版本" in page
    assert "海河市公交线路（2026版）" in page and "撤销修改" in page
    assert post(client, f"{url}/submit").status_code == 303
    assert entry_in_db(db, entry_id).pending_status == "submitted"

    reviewer = TestClient(client.app)
    login(reviewer, "regulator")
    queue = reviewer.get("/admin/confirmations").text
    assert "已发布目录的变更" in queue and "海河市公交线路（2026版）" in queue
    assert post(reviewer, f"/admin/entries/{entry_id}/confirm").status_code == 303

    assert post(client, f"{url}/publish").status_code == 303
    assert client.get(f"/api/v1/datasets/{entry_id}").json()["title"] == "海河市公交线路（2026版）"
    assert entry_in_db(db, entry_id).pending is None


def test_pending_change_can_be_discarded(
    publisher: TestClient, factory: Factory, org: Organisation, db: Session
) -> None:
    pub = factory.user("pub2", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org)
    url = f"/workspace/entries/{entry_id}"
    assert post(publisher, url, {**FULL_FORM, "summary": "新的摘要"}).status_code == 303
    assert entry_in_db(db, entry_id).pending
    assert post(publisher, f"{url}/discard").status_code == 303
    assert entry_in_db(db, entry_id).pending is None


def test_retiring_requires_a_reason(
    publisher: TestClient, factory: Factory, org: Organisation, db: Session
) -> None:
    pub = factory.user("pub2", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org)
    url = f"/workspace/entries/{entry_id}"
    refused = post(publisher, f"{url}/retire", {"reason": ""})
    assert refused.status_code == 422
    assert "请填写下线原因" in refused.text
    assert entry_in_db(db, entry_id).status == "published"
    assert post(publisher, f"{url}/retire", {"reason": "数据已停止更新"}).status_code == 303
    assert entry_in_db(db, entry_id).status == "retired"
    page = publisher.get(url).text
    assert "该目录已下线" in page and "数据已停止更新" in page


def test_workflow_step_in_the_wrong_state_explains_why(
    publisher: TestClient, factory: Factory, org: Organisation
) -> None:
    pub = factory.user("pub2", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org, status="draft")
    response = post(publisher, f"/workspace/entries/{entry_id}/publish")
    assert response.status_code == 303
    assert "只有经主管部门确认的目录或修改可以发布" in publisher.get(response.headers["location"]).text


def test_reviewer_only_member_sees_the_entry_read_only(
    client: TestClient, factory: Factory, org: Organisation
) -> None:
    pub = factory.user("pub", org=org, roles=("publisher",))
    factory.user("rev", org=org, roles=("reviewer",))
    entry_id = factory.entry(pub, org, status="draft")
    login(client, "rev")
    home = client.get("/workspace")
    assert home.status_code == 200 and "新建目录" not in home.text
    assert client.get(f"/workspace/entries/new?org={org.id}").status_code == 403
    assert post(client, f"/workspace/entries/new?org={org.id}", {"title": "不应创建"}).status_code == 403
    page = client.get(f"/workspace/entries/{entry_id}")
    assert page.status_code == 200
    assert 'class="form-lock" disabled' in page.text and "提交确认</button>" not in page.text
    assert post(client, f"/workspace/entries/{entry_id}", FULL_FORM).status_code == 403
    assert post(client, f"/workspace/entries/{entry_id}/submit").status_code == 403


def test_another_providers_publisher_cannot_open_the_edit_page(
    client: TestClient, factory: Factory, org: Organisation
) -> None:
    pub = factory.user("pub", org=org, roles=("publisher",))
    other = factory.org("wjw", "海河市卫生健康委员会")
    factory.user("other-pub", org=other, roles=("publisher",))
    draft = factory.entry(pub, org, status="draft")
    published = factory.entry(pub, org)
    login(client, "other-pub")
    assert client.get(f"/workspace/entries/{draft}").status_code == 404
    assert client.get(f"/workspace/entries/{published}").status_code == 403
    assert post(client, f"/workspace/entries/{published}", FULL_FORM).status_code in (403, 404)
    assert client.get(f"/workspace?org={org.id}").status_code == 403
    assert client.get(f"/workspace/entries/new?org={org.id}").status_code == 403


def test_workspace_is_for_provider_staff(client: TestClient, factory: Factory) -> None:
    anonymous = client.get("/workspace", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    factory.user("citizen")
    login(client, "citizen")
    assert client.get("/workspace").status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "/workspace/entries/99999999999999999",
        "/workspace/entries/abc",
        "/workspace?org=abc",
        "/workspace?org=-1",
        "/workspace/org/0/members",
        "/workspace/entries/new?org=99999999999999999",
    ],
)
def test_hostile_ids_get_a_chinese_4xx(publisher: TestClient, url: str) -> None:
    response = publisher.get(url)
    assert 400 <= response.status_code < 500
    assert "提交的数据有误" in response.text or "不存在" in response.text


def test_unknown_status_filter_lists_everything(
    publisher: TestClient, factory: Factory, org: Organisation
) -> None:
    pub = factory.user("pub2", org=org, roles=("publisher",))
    factory.entry(pub, org, status="draft", title="草稿目录甲")
    assert "草稿目录甲" in publisher.get("/workspace?status=<script>").text
    assert "草稿目录甲" in publisher.get("/workspace?status=draft").text
    assert "草稿目录甲" not in publisher.get("/workspace?status=published").text


def test_org_admin_manages_members(
    client: TestClient, factory: Factory, org: Organisation, db: Session
) -> None:
    factory.user("jtw-admin", org=org, roles=("admin",))
    factory.user("newcomer")
    login(client, "jtw-admin")
    home = client.get("/workspace").text
    assert "成员管理" in home and "人员名单" in home
    assert client.get(f"/workspace/org/{org.id}/members").status_code == 200

    added = post(client, f"/workspace/org/{org.id}/members", {"username": "newcomer", "role": "publisher"})
    assert added.status_code == 303
    member = db.query(Membership).filter_by(org_id=org.id, role="publisher").one()
    assert member.user.username == "newcomer"
    assert "Newcomer" in client.get(f"/workspace/org/{org.id}/members").text

    unknown = post(client, f"/workspace/org/{org.id}/members", {"username": "nobody", "role": "publisher"})
    assert unknown.status_code == 422 and "用户不存在" in unknown.text
    twice = post(client, f"/workspace/org/{org.id}/members", {"username": "newcomer", "role": "publisher"})
    assert twice.status_code == 409 and "该用户已担任此岗位" in twice.text

    removed = post(client, f"/workspace/org/{org.id}/members/{member.id}/remove")
    assert removed.status_code == 303
    db.expire_all()
    assert db.query(Membership).filter_by(org_id=org.id, role="publisher").count() == 0


def test_publisher_cannot_manage_members(publisher: TestClient, org: Organisation) -> None:
    page = publisher.get(f"/workspace/org/{org.id}/members")
    assert page.status_code == 200 and "添加成员" not in page.text
    assert (
        post(publisher, f"/workspace/org/{org.id}/members", {"username": "pub", "role": "admin"}).status_code
        == 403
    )


def test_org_admin_reports_the_staff_list(
    client: TestClient, factory: Factory, org: Organisation, db: Session
) -> None:
    factory.user("jtw-admin", org=org, roles=("admin",))
    login(client, "jtw-admin")
    url = f"/workspace/org/{org.id}/staff"
    page = client.get(url).text
    assert "尚未报送" in page and page.count('name="staff_name"') == 3

    rows = {
        "responsible_office": "科技信息处",
        "staff_name": ["林晓雯", "", "王建国"],
        "staff_position": ["副处长", "", "主任科员"],
        "staff_phone": ["022-23581025", "", ""],
        "staff_email": ["lin@example.gov.cn", "", ""],
        "staff_duty": ["数据开放总协调", "", "目录编制"],
    }
    assert post(client, url, rows).status_code == 303
    db.expire_all()
    saved = db.get(Organisation, org.id)
    assert saved is not None
    assert saved.responsible_office == "科技信息处"
    assert [s.name for s in saved.staff] == ["林晓雯", "王建国"]
    assert saved.staff_updated_at is not None
    page = client.get(url).text
    assert "最近报送" in page and "王建国" in page and page.count('name="staff_name"') == 5

    missing_name = {**rows, "staff_name": ["林晓雯", "", ""]}
    refused = post(client, url, missing_name)
    assert refused.status_code == 422 and "缺少姓名" in refused.text
    refused = post(client, url, {**rows, "responsible_office": ""})
    assert refused.status_code == 422


def test_members_see_the_staff_list_read_only(publisher: TestClient, org: Organisation) -> None:
    page = publisher.get(f"/workspace/org/{org.id}/staff")
    assert page.status_code == 200 and 'name="staff_name"' not in page.text
    assert (
        post(publisher, f"/workspace/org/{org.id}/staff", {"responsible_office": "办公室"}).status_code == 403
    )


def test_staff_of_two_organisations_switch_between_them(
    client: TestClient, factory: Factory, org: Organisation
) -> None:
    other = factory.org("wjw", "海河市卫生健康委员会")
    pub = factory.user("pub", org=org, roles=("publisher",))
    with_both = factory.user("both", org=other, roles=("reviewer",))
    factory.entry(pub, org, status="draft", title="交通目录")
    database = client.app.state.kf.db  # type: ignore[attr-defined]
    with database.session() as db:
        db.add(Membership(user_id=with_both.id, org_id=org.id, role="publisher"))
    login(client, "both")
    first = client.get("/workspace").text
    assert "海河市卫生健康委员会" in first and "海河市交通运输委员会" in first
    assert "交通目录" in client.get(f"/workspace?org={org.id}").text
    assert "交通目录" not in client.get(f"/workspace?org={other.id}").text


def test_supervisors_see_the_entry_page_read_only(
    client: TestClient, factory: Factory, org: Organisation
) -> None:
    pub = factory.user("pub", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org, status="draft")
    factory.user("operator", system_role="operator")
    login(client, "operator")
    page = client.get(f"/workspace/entries/{entry_id}")
    assert page.status_code == 200
    assert 'class="form-lock" disabled' in page.text and "完整流转记录" in page.text
    assert post(client, f"/workspace/entries/{entry_id}", FULL_FORM).status_code == 403


def test_a_deactivated_term_does_not_force_reclassification(
    client: TestClient, factory: Factory, db: Session
) -> None:
    org = factory.org("jtw", "海河市交通运输委员会")
    pub = factory.user("pub", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org, status="draft", theme="jtys")
    term = db.query(TaxonomyTerm).filter_by(kind="theme", code="jtys").one()
    term.is_active = False
    db.commit()
    login(client, "pub")
    page = client.get(f"/workspace/entries/{entry_id}").text
    assert "（已停用）" in page  # still offered for this entry, marked as deactivated
    response = client.patch(
        f"/api/v1/datasets/{entry_id}",
        json={"summary": "更新后的摘要"},
        headers={"X-CSRF-Token": csrf_token(client)},
    )
    assert response.status_code == 200, response.text
    db.expire_all()
    entry = db.get(Entry, entry_id)
    assert entry is not None and entry.theme == "jtys"
    # A new entry cannot choose the deactivated term.
    refused = client.post(
        "/api/v1/datasets",
        json={"title": "新目录", "theme": "jtys", "provider": "jtw"},
        headers={"X-CSRF-Token": csrf_token(client)},
    )
    assert refused.status_code == 422
