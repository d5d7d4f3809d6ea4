"""The entry page's column profile and chart in a real browser: ECharts draws on page load and
redraws when the visitor picks another chart type or aggregate; without JavaScript the profile
table still shows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from kaifang.app import Platform
from tests.conftest import Factory
from tests.datastore.test_profile import CSV, publish

pytestmark = pytest.mark.browser

CHART = "[data-chart] .chart-canvas"
# The drawn chart as ECharts holds it: series type, category names and values.
READ_CHART = """selector => {
  const chart = echarts.getInstanceByDom(document.querySelector(selector));
  if (!chart) { return null; }
  const option = chart.getOption();  // undefined until the first figures arrive
  if (!option || !option.series) { return null; }
  const series = option.series[0];
  const names = series.type === "pie" ? series.data.map(d => d.name) : option.xAxis[0].data;
  const values = series.data.map(d => (typeof d === "object" ? d.value : d));
  return {type: series.type, names: names, values: values};
}"""
# Pixels the canvas has painted (not transparent): a drawn chart has thousands.
PAINTED = """selector => {
  const canvas = document.querySelector(selector + " canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted++; } }
  return painted;
}"""


@pytest.fixture
def entry_id(client: TestClient, platform: Platform, factory: Factory) -> int:
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    entry = factory.entry(pub, org, title="空气质量监测日报")
    publish(client, platform, factory.api_key(pub), entry, CSV)
    return entry


def wait_for_chart(page: Any, series_type: str, values: list[Any]) -> dict[str, Any]:
    """Wait until ECharts holds the expected series (drawing follows a fetch), then return it."""
    page.wait_for_function(
        f"([s, t, v]) => {{ const c = ({READ_CHART})(s); "
        "return c && c.type === t && JSON.stringify(c.values) === JSON.stringify(v); }",
        arg=[CHART, series_type, values],
    )
    chart: dict[str, Any] = page.evaluate(READ_CHART, CHART)
    return chart


def watch_for_problems(page: Any) -> list[str]:
    """Script errors, CSP refusals and failed requests (but the favicon) of the page, as they come."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def console(msg: Any) -> None:
        if "Content Security Policy" in msg.text:
            problems.append(msg.text)

    def response(r: Any) -> None:
        if r.status >= 400 and "favicon" not in r.url:
            problems.append(f"{r.status} {r.url}")

    page.on("console", console)
    page.on("response", response)
    return problems


def test_visitor_sees_profile_and_switches_the_chart(new_page: Any, entry_id: int) -> None:
    page = new_page()
    problems = watch_for_problems(page)
    page.goto(f"/datasets/{entry_id}")

    profile = page.locator("table.profile-table")
    expect(profile).to_be_visible()
    pm_row = profile.locator("tr", has=page.locator("th", has_text="PM2.5"))
    expect(pm_row).to_contain_text("36.8")  # mean
    expect(pm_row).to_contain_text("1（16.7%）")  # one null in six rows
    expect(profile.locator("tr", has=page.locator("th", has_text="区"))).to_contain_text("和平区")

    # Drawn on load: the first column with few repeated values, counted, as bars.
    panel = page.locator("[data-chart]")
    expect(panel).to_have_attribute("data-chart-state", "ready")
    chart = wait_for_chart(page, "bar", [3, 2, 1])
    assert chart["names"] == ["和平区", "河西区", "南开区"]
    assert page.evaluate(PAINTED, CHART) > 1000
    expect(page.locator(CHART)).to_have_attribute(
        "aria-label", "按“区”统计的记录数：和平区 3；河西区 2；南开区 1"
    )
    expect(page.get_by_label("数值字段")).to_be_hidden()  # counting needs no numeric column

    page.get_by_label("图表类型").select_option(label="饼图")
    chart = wait_for_chart(page, "pie", [3, 2, 1])
    assert chart["names"] == ["和平区", "河西区", "南开区"]

    page.get_by_label("统计方式").select_option(label="求和")
    expect(page.get_by_label("数值字段")).to_be_visible()
    chart = wait_for_chart(page, "pie", [88, 55, 41])  # PM2.5 by district, largest first
    assert chart["names"] == ["河西区", "和平区", "南开区"]

    page.get_by_label("图表类型").select_option(label="折线图")
    page.get_by_label("分类字段").select_option("监测日期")
    chart = wait_for_chart(page, "line", [93, 41, 50])
    assert chart["names"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert page.evaluate(PAINTED, CHART) > 1000
    assert problems == [], problems  # nothing refused by the CSP, no script errors


def test_without_javascript_the_profile_still_shows(browser: Any, live_server: str, entry_id: int) -> None:
    context = browser.new_context(base_url=live_server, locale="zh-CN", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"/datasets/{entry_id}")
        expect(page.locator("table.profile-table")).to_contain_text("36.8")
        # (Playwright's switch stops scripts but parses <noscript> as a script-enabled browser
        # does, so its note is checked as text rather than as a visible element.)
        assert "图表需要浏览器启用 JavaScript" in (page.locator("[data-chart] noscript").text_content() or "")
        expect(page.locator(".chart-form")).to_be_hidden()
        expect(page.locator(".chart-canvas")).to_be_hidden()
    finally:
        context.close()
