"""有条件开放 in a real browser: a citizen applies, the provider's reviewer accepts and approves,
both sign the agreement, the citizen downloads the data under the grant and files the use report
(Art. 22), and the reviewer accepts it."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.access.conftest import Scene
from tests.access.conftest import scene as scene  # the fixture, shared with tests/access
from tests.browser.test_catalog_journey import log_in

pytestmark = pytest.mark.browser


def test_apply_accept_approve_sign_download_report(new_page: Any, scene: Scene) -> None:
    citizen = new_page()
    log_in(citizen, "applicant")
    citizen.goto(f"/datasets/{scene.entry_id}")
    expect(citizen.locator("#data")).not_to_contain_text("和平站")
    citizen.get_by_role("link", name="申请使用").click()
    citizen.get_by_label("使用用途").fill("研究城市空气质量与交通出行的关系，形成学术论文")
    citizen.get_by_label("使用场景").fill("高校科研")
    citizen.get_by_label("使用时限（天）").fill("30")
    citizen.get_by_label("安全保障措施").fill("数据存放于内网服务器，仅课题组可访问，期满删除")
    citizen.get_by_label("联系人及联系方式").fill("王老师 13800138000")
    citizen.get_by_role("button", name="提交申请").click()
    expect(citizen.locator("main")).to_contain_text("申请已提交")
    application_url = citizen.url

    reviewer = new_page()
    log_in(reviewer, "rev")
    reviewer.goto("/workspace/applications")
    reviewer.locator("table a").first.click()
    reviewer.get_by_role("button", name="受理", exact=True).click()
    expect(reviewer.locator("main")).to_contain_text("答复期限")
    reviewer.get_by_role("button", name="批准并生成使用协议").click()
    reviewer.get_by_role("link", name="查看并签订使用协议").click()
    expect(reviewer.locator("main")).to_contain_text("不得将数据或其副本向任何第三方转让")
    reviewer.get_by_role("button", name="确认签订").click()
    expect(reviewer.locator("main")).to_contain_text("等待另一方签订")

    citizen.goto(application_url + "/agreement")
    citizen.get_by_role("button", name="确认签订").click()
    expect(citizen.locator("main")).to_contain_text("双方均已签订，授权已生效")
    citizen.goto("/account/applications")
    expect(citizen.locator("main")).to_contain_text("有效")

    citizen.goto(f"/datasets/{scene.entry_id}")
    data = citizen.locator("#data")
    expect(data).to_contain_text("和平站")
    with citizen.expect_download() as info:
        data.get_by_role("link", name="CSV（Excel 可直接打开）").click()
    rows = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][0] == "站点名称" and len(rows) == 4

    # The 30-day term's only reporting point is its last day: the report is due at once.
    citizen.goto("/account/applications")
    citizen.locator("a[href^='/grants/']").first.click()
    expect(citizen.locator("main")).to_contain_text("使用情况报告")
    citizen.get_by_role("textbox", name="使用情况").fill(
        "用于课题组的空气质量与出行关系分析，数据仅存放于内网服务器"
    )
    citizen.get_by_role("textbox", name="成果").fill("形成论文初稿一篇")
    citizen.get_by_role("button", name="提交报告").click()
    expect(citizen.locator("main")).to_contain_text("形成论文初稿一篇")
    grant_url = citizen.url.split("#")[0].split("?")[0]

    reviewer.goto(grant_url)
    expect(reviewer.locator("main")).to_contain_text("形成论文初稿一篇")
    expect(reviewer.locator("main")).not_to_contain_text("已认可")
    reviewer.get_by_role("button", name="认可").click()
    expect(reviewer.locator("main")).to_contain_text("已认可")
    citizen.reload()
    expect(citizen.locator("main")).to_contain_text("已认可")
