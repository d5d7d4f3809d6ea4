"""Data in a real browser: a provider uploads a GBK CSV and publishes it; a visitor previews and downloads."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_catalog_journey import log_in
from tests.browser.test_desensitize_journey import pass_review_in_browser
from tests.conftest import Factory

pytestmark = pytest.mark.browser

GBK_CSV = (
    "海河市停车场泊位信息\n"
    "停车场名称,区,泊位数,收费标准（元/小时）\n"
    "和平路地下停车场,和平区,320,6\n"
    "滨江道立体停车楼,和平区,500,8\n"
    "南开公园停车场,南开区,120,4\n"
).encode("gbk")


def test_provider_uploads_and_visitor_downloads(new_page: Any, factory: Factory, tmp_path: Path) -> None:
    org = factory.org("jtw", "海河市交通运输委员会")
    pub = factory.user("pub-lin", org=org, roles=("publisher",))
    entry_id = factory.entry(pub, org, title="停车场泊位信息")
    source = tmp_path / "停车场.csv"
    source.write_bytes(GBK_CSV)

    provider = new_page()
    log_in(provider, "pub-lin")
    provider.goto(f"/workspace/entries/{entry_id}")
    provider.locator("#resources input[type=file]").set_input_files(str(source))
    provider.get_by_role("button", name="上传", exact=True).click()
    status = provider.locator("#current-version")
    expect(status).to_contain_text("待发布", timeout=15000)  # the page polls while the file is read
    expect(status).to_contain_text("gb18030")
    expect(status).to_contain_text("已跳过")  # the title row above the header
    provider.get_by_label("第 3 列说明").fill("可停放小型车的泊位")
    provider.get_by_role("button", name="保存数据字典并重新读取").click()
    expect(provider.locator("#current-version")).to_contain_text("待发布", timeout=15000)
    pass_review_in_browser(provider)

    visitor = new_page()
    visitor.goto(f"/datasets/{entry_id}")
    data = visitor.locator("#data")
    expect(data).to_contain_text("滨江道立体停车楼")
    expect(data).to_contain_text("可停放小型车的泊位")
    with visitor.expect_download() as info:
        data.get_by_role("link", name="CSV（Excel 可直接打开）").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    # Header cells are NFKC-normalised on reading: full-width brackets become ASCII ones.
    assert rows[0] == ["停车场名称", "区", "泊位数", "收费标准(元/小时)"] and len(rows) == 4
