"""脱敏 in a real browser: a provider uploads a list of people, sees the scan, edits the proposed
rules, compares original and masked rows, records the review and publishes; a visitor then sees
only masked data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_catalog_journey import log_in
from tests.conftest import Factory
from tests.desensitize.flow_data import people_csv

pytestmark = pytest.mark.browser


def pass_review_in_browser(page: Page, number: int = 1) -> None:
    """From the resource page: open the review page, record 通过 twice, publish the version."""
    page.get_by_role("link", name="脱敏与发布前审查").click()
    for legend in ("保密审查结论", "安全风险评估结论"):
        page.get_by_role("group", name=legend).get_by_label("通过", exact=True).check()
    page.get_by_role("button", name="记录审查结论").click()
    expect(page.locator("main")).to_contain_text("审查结论已记录")
    page.get_by_role("button", name=f"发布第 {number} 版").click()
    expect(page.locator("main")).to_contain_text(f"第 {number} 版已发布")


def test_scan_rules_preview_review_publish(new_page: Any, factory: Factory, tmp_path: Path) -> None:
    org = factory.org("rsj", "海河市人力资源和社会保障局")
    pub = factory.user("pub-zhao", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org, title="海河市高龄津贴发放名单")
    text = people_csv(rows=30)
    first = text.splitlines()[1].split(",")
    name, id_number, mobile = first[0], first[1], first[2]
    source = tmp_path / "高龄津贴.csv"
    source.write_text(text, encoding="utf-8")

    provider = new_page()
    log_in(provider, "pub-zhao")
    provider.goto(f"/workspace/entries/{entry_id}")
    provider.locator("#resources input[type=file]").set_input_files(str(source))
    provider.get_by_role("button", name="上传", exact=True).click()
    expect(provider.locator("#current-version")).to_contain_text("待发布", timeout=15000)
    provider.get_by_role("link", name="脱敏与发布前审查").click()

    # The scan: detected kinds in Chinese, proposed rules waiting to be confirmed.
    rules = provider.locator("section", has=provider.get_by_role("heading", name="敏感数据识别与脱敏规则"))
    expect(rules).to_contain_text("居民身份证号码")
    expect(rules).to_contain_text("手机号码")
    pending = rules.locator(".badge", has_text="待确认")
    expect(pending.first).to_be_visible()
    provider.get_by_label("姓名 的脱敏方式").select_option("suppress")
    provider.get_by_role("checkbox", name="性别").check()
    provider.get_by_role("checkbox", name="所在区").check()
    provider.get_by_role("button", name="保存脱敏规则").click()
    expect(provider.locator("main")).to_contain_text("脱敏规则已保存")
    expect(pending).to_have_count(0)

    # Original and masked side by side, for the provider's eyes only.
    preview = provider.locator(
        "section", has=provider.get_by_role("heading", name="脱敏效果预览（前 20 行）")
    )
    expect(preview).to_contain_text(id_number)
    expect(preview).to_contain_text(mobile[:3] + "****" + mobile[-4:])
    expect(preview).to_contain_text("不公开")
    risk = provider.locator("section", has=provider.get_by_role("heading", name="自动风险报告"))
    expect(risk).to_contain_text("没有未脱敏的直接标识符")
    expect(risk).to_contain_text("最小分组人数 k")

    for legend in ("保密审查结论", "安全风险评估结论"):
        provider.get_by_role("group", name=legend).get_by_label("通过", exact=True).check()
    provider.get_by_label("审查意见").fill("已去除姓名，证件号和手机号已屏蔽")
    provider.get_by_role("button", name="记录审查结论").click()
    expect(provider.locator("#latest-review")).to_contain_text("已去除姓名")
    provider.get_by_role("button", name="发布第 1 版").click()
    expect(provider.locator("main")).to_contain_text("第 1 版已发布")

    visitor = new_page()
    visitor.goto(f"/datasets/{entry_id}")
    data = visitor.locator("#data")
    expect(data).to_contain_text(mobile[:3] + "****" + mobile[-4:])
    page_text = visitor.locator("main").inner_text()
    assert id_number not in page_text and mobile not in page_text and name not in page_text
