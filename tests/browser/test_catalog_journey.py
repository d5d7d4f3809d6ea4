"""The first complete path through the platform, in a real browser.

A citizen registers, verifies the e-mail address and logs in; a provider's publisher compiles a
catalog entry and submits it; the regulator confirms it; the publisher publishes it; an
anonymous visitor finds it from the home page's search box and opens it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, expect

from kaifang.app import Platform
from tests.conftest import PASSWORD, Factory

pytestmark = pytest.mark.browser

TITLE = "海河市共享单车停放区域信息"
QUERY = "共享单车 停放"


def field(page: Page, label: str) -> Locator:
    """The form control labelled `label`; a required one's label adds a * and （必填） for screen readers."""
    return page.get_by_label(re.compile(f"^{re.escape(label)}\\s*\\*?\\s*(（必填）)?$"))


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    field(page, "用户名或邮箱").fill(username)
    field(page, "密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.get_by_role("button", name="退出")).to_be_visible()


def verification_path(platform: Platform, email: str) -> str:
    """The path and query of the verification link in the newest mail to `email`."""
    mails = [m for m in platform.mailer.messages() if m["To"] == email]  # type: ignore[attr-defined]
    assert mails, f"no mail to {email} in the outbox"
    body = mails[-1].get_content()
    link = re.search(r"https?://\S+/verify-email\?token=\S+", body)
    assert link, body
    parts = urlsplit(link.group())
    return f"{parts.path}?{parts.query}"


def test_citizen_registers_verifies_and_logs_in(page: Page, platform: Platform) -> None:
    page.goto("/")
    page.get_by_role("link", name="注册", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("注册")
    page.get_by_label("自然人").check()
    field(page, "用户名").fill("chen-xiaoyu")
    field(page, "姓名或名称").fill("陈晓雨")
    field(page, "电子邮箱").fill("chen.xiaoyu@example.com")
    field(page, "密码").fill("Haihe-Data-2026!")
    field(page, "确认密码").fill("Haihe-Data-2026!")
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("请验证邮箱")

    page.goto(verification_path(platform, "chen.xiaoyu@example.com"))
    expect(page.locator("main")).to_contain_text("验证")
    log_in(page, "chen-xiaoyu", "Haihe-Data-2026!")
    expect(page.locator(".user-name")).to_have_text("陈晓雨")


def fill_entry_form(page: Page) -> None:
    field(page, "数据集名称").fill(TITLE)
    field(page, "摘要").fill("全市共享单车电子围栏停放区域的位置、容量和所属运营企业，每日更新。")
    field(page, "关键词").fill("共享单车，停放，电子围栏")
    field(page, "主题分类").select_option("jtys")
    field(page, "行业分类").select_option("G")
    field(page, "数据分级").select_option("L1")
    page.locator("input[name=open_type][value=unconditional]").check()
    field(page, "使用要求").fill("使用时请注明数据来源。")
    field(page, "更新频率").select_option("daily")
    page.get_by_label("文件下载").check()
    page.get_by_label("接口调用").check()
    page.get_by_label("CSV", exact=True).check()
    field(page, "联系人").fill("林晓雯")
    field(page, "联系电话").fill("022-23581025")
    field(page, "联系邮箱").fill("jtw-data@example.gov.cn")
    field(page, "空间范围").fill("海河市全市")


def provider_creates_and_submits(page: Page) -> str:
    page.goto("/workspace")
    page.get_by_role("link", name="新建目录").click()
    fill_entry_form(page)
    page.get_by_role("button", name="保存草稿").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(page.locator(".entry-state")).to_contain_text("草稿")
    entry_url = page.url
    page.get_by_role("button", name="提交确认").click()
    expect(page.locator("main")).to_contain_text("等待主管部门确认")
    return entry_url


def regulator_confirms(page: Page) -> None:
    page.goto("/admin")
    page.get_by_role("link", name="目录确认").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("目录确认")
    heading = page.get_by_role("heading", name=re.compile(re.escape(TITLE)))
    item = page.get_by_role("article").filter(has=heading)
    expect(item).to_contain_text("海河市交通运输委员会")
    item.get_by_role("button", name=re.compile("^确认")).click()
    expect(page.get_by_role("status").first).to_contain_text(f"已确认《{TITLE}》")
    expect(heading).to_have_count(0)


def visitor_finds_and_opens(page: Page) -> None:
    page.goto("/")
    field(page, "检索数据目录").fill(QUERY)
    field(page, "检索数据目录").press("Enter")
    result = page.get_by_role("link", name=TITLE)
    expect(result).to_be_visible()
    result.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(page.locator("main")).to_contain_text("无条件开放")


def test_entry_from_compilation_to_public_search(new_page: Any, factory: Factory) -> None:
    org = factory.org("jtw", "海河市交通运输委员会")
    factory.user("pub-lin", org=org, roles=("publisher",))
    factory.user("reg-xu", system_role="regulator")

    provider = new_page()
    log_in(provider, "pub-lin")
    entry_url = provider_creates_and_submits(provider)

    regulator = new_page()
    log_in(regulator, "reg-xu")
    regulator_confirms(regulator)

    provider.goto(entry_url)
    provider.get_by_role("button", name="发布", exact=True).click()
    expect(provider.locator(".entry-state")).to_contain_text("已发布")

    visitor_finds_and_opens(new_page())
