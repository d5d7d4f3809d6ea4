"""Public pages: home, catalog search, entry pages, providers, developer docs, help, hostile input."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kaifang.accounts.models import Organisation, StaffContact
from kaifang.app import Platform
from tests.conftest import Factory, csrf_token, login

AIR = {
    "title": "海河市空气质量监测数据",
    "summary": "各国控监测站点逐小时的PM2.5、PM10、臭氧浓度。",
    "keywords": ["空气", "PM2.5", "监测"],
    "theme": "sthj",
    "update_frequency": "daily",
}


@pytest.fixture
def catalog(factory: Factory) -> dict[str, Any]:
    """Two published open entries, a published 不予开放 entry and a draft of one provider."""
    org = factory.org("jtw", "海河市交通运输委员会")
    pub = factory.user("pub", org=org, roles=("publisher",))
    return {
        "org": org,
        "pub": pub,
        "bus": factory.entry(pub, org),
        "air": factory.entry(pub, org, **AIR),
        "closed": factory.entry(pub, org, open_type="closed", title="桥梁结构安全检测数据"),
        "draft": factory.entry(pub, org, status="draft", title="尚未提交的出租车目录"),
    }


def stat(html: str, label: str) -> str:
    match = re.search(r'<strong class="stat-value">([^<]*)</strong><span class="stat-label">' + label, html)
    assert match, label
    return match.group(1)


# --- home -----------------------------------------------------------------------------------------


def test_home_shows_counts_themes_and_newest(client: TestClient, catalog: dict[str, Any]) -> None:
    html = client.get("/").text
    assert stat(html, "开放数据目录") == "2"  # the 不予开放 entry and the draft are not counted
    assert stat(html, "数据提供单位") == "1"
    assert "海河市公交线路及站点信息" in html and "海河市空气质量监测数据" in html
    assert "桥梁结构安全检测数据" not in html and "尚未提交的出租车目录" not in html
    assert re.search(r'href="/datasets\?theme=jtys">交通运输<span class="count">1 个目录', html)
    assert 'action="/datasets"' in html and 'name="q"' in html


def test_home_figures_are_public_even_for_a_regulator(
    client: TestClient, factory: Factory, catalog: dict[str, Any]
) -> None:
    factory.user("reg", system_role="regulator")
    html = login(client, "reg").get("/").text
    assert stat(html, "开放数据目录") == "2"
    assert "桥梁结构安全检测数据" not in html


# --- search ---------------------------------------------------------------------------------------


def test_search_finds_by_chinese_query(client: TestClient, catalog: dict[str, Any]) -> None:
    html = client.get("/datasets", params={"q": "公交"}).text
    assert "海河市公交线路及站点信息" in html.replace("<mark>", "").replace("</mark>", "")
    assert "<mark>公交</mark>" in html
    assert "空气质量" not in html
    assert "共找到 <strong>1</strong> 个数据目录" in html


def test_facet_filter_narrows_and_can_be_removed(client: TestClient, catalog: dict[str, Any]) -> None:
    everything = client.get("/datasets").text
    assert "共找到 <strong>2</strong> 个数据目录" in everything
    assert 'href="/datasets?theme=sthj"' in everything  # the facet value adds itself to the URL
    narrowed = client.get("/datasets", params={"theme": "sthj"}).text
    assert "共找到 <strong>1</strong> 个数据目录" in narrowed
    assert "海河市空气质量监测数据" in narrowed and "海河市公交线路及站点信息" not in narrowed
    assert 'class="active" aria-current="true"' in narrowed
    assert 'href="/datasets">清除筛选' in narrowed.replace('class="facet-clear" ', "")


def test_search_without_hits_says_so_and_offers_to_drop_filters(
    client: TestClient, catalog: dict[str, Any]
) -> None:
    response = client.get("/datasets", params={"q": "公交", "theme": "sthj"})
    assert response.status_code == 200
    assert "没有找到符合条件的数据目录" in response.text
    assert 'href="/datasets?q=%E5%85%AC%E4%BA%A4">去掉筛选条件' in response.text


def test_search_with_partial_match_says_so(client: TestClient, catalog: dict[str, Any]) -> None:
    html = client.get("/datasets", params={"q": "公交 空气"}).text
    assert "没有同时包含所有检索词的目录，以下为部分匹配结果" in html
    assert "共找到 <strong>2</strong> 个数据目录" in html


def test_search_pages(client: TestClient, factory: Factory, catalog: dict[str, Any]) -> None:
    html = client.get("/datasets", params={"page_size": 1}).text
    assert 'href="/datasets?page_size=1&amp;page=2" rel="next"' in html
    second = client.get("/datasets", params={"page_size": 1, "page": 2}).text
    assert 'aria-current="page"><span class="sr-only">第</span>2' in second


# --- entry page -----------------------------------------------------------------------------------


def test_entry_page_shows_the_catalog_fields(
    client: TestClient, factory: Factory, catalog: dict[str, Any]
) -> None:
    entry_id = factory.entry(
        catalog["pub"], catalog["org"], open_type="conditional", usage_requirements="不得向第三方提供原始数据"
    )
    html = client.get(f"/datasets/{entry_id}").text
    for text in (
        "数据集名称",
        "海河市公交线路及站点信息",
        "数据标签",
        "交通运输",
        "行业分类",
        "第二级",
        "有条件开放",
        "仅限科研用途，需签订使用协议",
        "不得向第三方提供原始数据",
        "每月",
        "文件下载、接口调用",
        "CSV、JSON",
        "林晓雯",
        "022-23581025",
        "海河市全市",
        "首次发布日期",
        "最近更新日期",
        "申请使用",
        "使用用途",
        "安全保障措施",
        f"GET /api/v1/datasets/{entry_id}",
    ):
        assert text in html, text
    assert 'href="/providers/jtw"' in html
    assert re.search(
        r"数据来源：海河市交通运输委员会，《海河市公交线路及站点信息》，海河市公共数据开放平台，"
        rf"http://testserver/datasets/{entry_id}，访问日期：\d{{4}}-\d{{2}}-\d{{2}}",
        html,
    )
    assert "目录管理信息" not in html  # the staff panel is for insiders only


CLOSED_VIEWERS = [
    (None, 404),
    ("citizen", 404),  # an error page for a signed-in user (rendered after the rollback)
    ("other-staff", 404),
    ("pub", 200),
    ("reg", 200),
    ("op", 200),
]


@pytest.mark.parametrize(("viewer", "status"), CLOSED_VIEWERS)
def test_closed_entry_page_only_for_its_provider_and_supervisors(
    client: TestClient, factory: Factory, catalog: dict[str, Any], viewer: str | None, status: int
) -> None:
    other = factory.org("wjw", "海河市卫生健康委员会")
    factory.user("citizen")
    factory.user("other-staff", org=other, roles=("publisher",))
    factory.user("reg", system_role="regulator")
    factory.user("op", system_role="operator")
    if viewer:
        login(client, viewer)
    response = client.get(f"/datasets/{catalog['closed']}")
    assert response.status_code == status
    if status == 404:
        assert "桥梁结构安全检测数据" not in response.text
        assert "未找到该数据目录" in response.text
        return
    for text in ("不予开放说明", "涉及个人隐私", "《个人信息保护法》第十三条", "2099-12-31", "目录管理信息"):
        assert text in response.text, text
    workspace = f'href="/workspace/entries/{catalog["closed"]}"'
    history = f'href="/admin/entries/{catalog["closed"]}/history"'
    assert (workspace in response.text) == (viewer == "pub")
    assert (history in response.text) == (viewer in ("reg", "op"))


def test_draft_entry_page_for_its_staff_shows_status(client: TestClient, catalog: dict[str, Any]) -> None:
    assert client.get(f"/datasets/{catalog['draft']}").status_code == 404
    html = login(client, "pub").get(f"/datasets/{catalog['draft']}").text
    assert 'class="badge status-draft"' in html
    assert "此目录尚未发布或已下线，公众无法看到" in html


# --- providers ------------------------------------------------------------------------------------


def add_staff(platform: Platform, org: Organisation) -> None:
    with platform.db.session() as db:
        db.add(StaffContact(org_id=org.id, name="周建国", position="科技信息处副处长", phone="022-23581021"))
        db.get_one(Organisation, org.id).responsible_office = "科技信息处"


def test_providers_list_counts_visible_published_entries(
    client: TestClient, factory: Factory, catalog: dict[str, Any]
) -> None:
    factory.org("swjt", "海河水务集团", org_type="utility")
    html = client.get("/providers").text
    assert "政务部门" in html and "公共服务企业" in html
    assert re.search(
        r'href="/providers/jtw">海河市交通运输委员会</a></h3>\s*<p class="muted small">已发布目录 2 个', html
    )
    assert re.search(
        r'href="/providers/swjt">海河水务集团</a></h3>\s*<p class="muted small">已发布目录 0 个', html
    )


def test_provider_page_shows_entries_and_staff_list_to_insiders(
    client: TestClient, factory: Factory, platform: Platform, catalog: dict[str, Any]
) -> None:
    add_staff(platform, catalog["org"])
    factory.user("reg", system_role="regulator")
    public = client.get("/providers/jtw").text
    assert "科技信息处" in public  # the responsible office is public
    assert "海河市公交线路及站点信息" in public and "桥梁结构安全检测数据" not in public
    assert "周建国" not in public and "开放工作人员名单" not in public
    member = login(client, "pub").get("/providers/jtw").text
    assert "周建国" in member and "桥梁结构安全检测数据" in member
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert "周建国" in login(client, "reg").get("/providers/jtw").text


# --- docs, help, outbox ---------------------------------------------------------------------------


def test_docs_page_describes_every_api_path(client: TestClient, app: Any) -> None:
    html = client.get("/docs").text
    for path in app.openapi()["paths"]:
        assert f"<code>{path}</code>" in html, path
    for text in (
        "Authorization: Bearer",
        "X-API-Key",
        "kaifang apikey create USERNAME",
        'href="/openapi.json"',
        '{"error": {"code"',
        "curl",
        "检索数据目录",
        "page_size",
    ):
        assert text in html, text
    assert "cdn" not in html.lower() and "swagger" not in html.lower()


def test_help_page_has_user_and_provider_guides(client: TestClient) -> None:
    html = client.get("/help").text
    for text in (
        "检索数据目录",
        "三种开放类型",
        "注册、验证邮箱与找回密码",
        "API 密钥",
        "编制开放目录",
        "目录字段说明",
        "确认与发布流程",
        "被退回的目录",
        "修改已发布的目录",
        "不予开放的要求",
        "下次评估审查日期",
        "第三十条",
        "第一级（一般数据）",
    ):
        assert text in html, text


def test_outbox_only_in_demo_modes(
    client: TestClient, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.mailer.send(
        "someone@example.com", "测试邮件主题", "请打开 http://testserver/verify-email?token=abc"
    )
    html = client.get("/dev/outbox").text
    assert "演示邮件发件箱" in html and "测试邮件主题" in html
    assert '<a href="http://testserver/verify-email?token=abc"' in html
    monkeypatch.setattr(platform.settings, "mode", "production")
    assert client.get("/dev/outbox").status_code == 404


# --- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/datasets?page=-1&page_size=abc", 200),
        ("/datasets?page=99999999999999999999&sort=evil", 200),
        ("/datasets?theme=%00&q=%00%27%22", 200),
        ("/datasets?q=" + "长" * 5000, 200),
        ("/datasets/abc", 404),
        ("/datasets/999999", 404),
        ("/datasets/99999999999999999999", 404),
        ("/datasets/-1", 404),
        ("/providers/nope", 404),
        ("/providers/%00", 404),
        ("/providers/" + "a" * 300, 404),
        ("/no-such-page", 404),
    ],
)
def test_hostile_input_gets_a_chinese_4xx_never_a_500(
    client: TestClient, catalog: dict[str, Any], url: str, status: int
) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert "服务器内部错误" not in response.text
    if status == 404:
        assert "页面不存在" in response.text and 'href="/"' in response.text
