"""The issue's whole path in a real browser: a provider uploads a messy XLSX (a notes sheet first,
a title row, a two-row merged header), picks the sheet, fixes a column type and publishes; a
citizen previews it, sees the chart and profile, downloads every format, and calls the API."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from playwright.sync_api import expect
from python_calamine import CalamineWorkbook

from tests.browser.test_catalog_journey import log_in
from tests.browser.test_desensitize_journey import pass_review_in_browser
from tests.conftest import Factory

pytestmark = pytest.mark.browser


def messy_workbook(path: Path) -> Path:
    book = xlsxwriter.Workbook(str(path))
    notes = book.add_worksheet("填报说明")
    notes.write(0, 0, "本表由区卫生健康委员会按季度报送")
    ws = book.add_worksheet("医疗机构")
    ws.merge_range(0, 0, 0, 4, "海河市医疗机构名录（2026年第三季度）")
    ws.merge_range(1, 0, 2, 0, "机构名称")
    ws.merge_range(1, 1, 1, 2, "地址")
    ws.merge_range(1, 3, 2, 3, "床位数")
    ws.merge_range(1, 4, 2, 4, "邮政编码")
    ws.write_row(2, 1, ["区", "街道"])
    rows = [
        ("海河市第一医院", "和平区", "南营门街道", 1200, "300041"),
        ("海河市儿童医院", "河西区", "友谊路街道", 650, "300074"),
        ("南开区中医医院", "南开区", "长虹街道", 300, "300100"),
        ("和平区妇幼保健院", "和平区", "劝业场街道", 120, "300022"),
    ]
    for n, row in enumerate(rows, start=3):
        ws.write_row(n, 0, row)
    book.close()
    return path


def test_messy_xlsx_from_upload_to_api(
    new_page: Any, factory: Factory, tmp_path: Path, live_server: str
) -> None:
    org = factory.org("wjw", "海河市卫生健康委员会")
    pub = factory.user("pub-wang", org=org, roles=("publisher",))
    citizen = factory.user("citizen-li")
    entry_id = factory.entry(pub, org, title="医疗机构名录")
    source = messy_workbook(tmp_path / "医疗机构名录.xlsx")

    provider = new_page()
    log_in(provider, "pub-wang")
    provider.goto(f"/workspace/entries/{entry_id}")
    resources = provider.locator("#resources")
    resources.locator("input[type=file]").set_input_files(str(source))
    resources.get_by_label("工作表").fill("医疗机构")
    provider.get_by_role("button", name="上传", exact=True).click()
    status = provider.locator("#current-version")
    expect(status).to_contain_text("待发布", timeout=15000)
    expect(status).to_contain_text("地址_区")  # the merged two-row header, joined
    # 邮政编码 stays text (leading digits are a code, not a number); make 床位数 a decimal and describe it.
    expect(provider.get_by_label("第 5 列类型")).to_have_value("text")
    provider.get_by_label("第 4 列类型").select_option("decimal")
    provider.get_by_label("第 4 列单位").fill("张")
    provider.get_by_role("button", name="保存数据字典并重新读取").click()
    expect(provider.locator("#current-version")).to_contain_text("待发布", timeout=15000)
    expect(provider.get_by_label("第 4 列类型")).to_have_value("decimal")
    pass_review_in_browser(provider)

    visitor = new_page()
    visitor.goto(f"/datasets/{entry_id}")
    data = visitor.locator("#data")
    expect(data).to_contain_text("海河市儿童医院")
    expect(data).to_contain_text("字段概况")
    chart = visitor.locator("[data-chart]").first
    expect(chart).to_have_attribute("data-chart-state", "ready", timeout=15000)

    downloads = {}
    for label in ("XLSX", "JSON", "Parquet"):
        with visitor.expect_download() as info:
            data.get_by_role("link", name=label, exact=True).click()
        downloads[label] = Path(info.value.path()).read_bytes()
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(downloads["XLSX"])).get_sheet_by_index(0).to_python()
    assert ["海河市第一医院", "和平区", "南营门街道", 1200.0, "300041"] in sheet
    body = json.loads(downloads["JSON"])
    assert any(r["机构名称"] == "南开区中医医院" and r["床位数"] == 300 for r in body["records"])
    table = pq.read_table(io.BytesIO(downloads["Parquet"]))
    assert table.num_rows == 4 and table.column("邮政编码").to_pylist()[0] == "300041"

    key = factory.api_key(citizen)
    rid = int(
        data.locator("[data-chart]").first.get_attribute("data-chart").split("/resources/")[1].split("/")[0]
    )
    answer = httpx.get(
        f"{live_server}/api/v1/resources/{rid}/data",
        params={"地址_区": "和平区", "sort": "-床位数"},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    assert [r["机构名称"] for r in answer["records"]] == ["海河市第一医院", "和平区妇幼保健院"]
    assert answer["total"] == 2
