"""The home page in a browser: keyboard access, and how it looks on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.conftest import Factory

pytestmark = pytest.mark.browser

PHONE_WIDTH = 390


def focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return {tag: e.tagName, id: e.id, cls: e.className, text: (e.textContent || '').trim()}; }"
    )


def test_tab_reaches_skip_link_then_search_box(page: Page) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    first = focused(page)
    assert first["text"] == "跳到主要内容", first
    expect(page.get_by_role("link", name="跳到主要内容")).to_be_visible()  # shown on focus

    for _ in range(40):
        page.keyboard.press("Tab")
        if focused(page)["id"] == "home-q":
            break
    else:
        pytest.fail("Tab 键无法到达首页搜索框")
    expect(page.get_by_label("检索数据目录")).to_be_focused()


def test_skip_link_jumps_over_the_navigation(page: Page) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("检索数据目录")).to_be_focused()


def test_home_page_on_a_phone(new_page: Any, factory: Factory) -> None:
    org = factory.org("jtw", "海河市交通运输委员会")
    publisher = factory.user("pub-lin", org=org, roles=("publisher",))
    factory.entry(publisher, org)
    factory.entry(publisher, org, title="海河市公共停车场泊位实时信息", keywords=["停车", "泊位"])
    page = new_page(width=PHONE_WIDTH, height=844)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="海河市公共停车场泊位实时信息")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot: Path = ARTIFACTS / f"home-{PHONE_WIDTH}px.png"
    page.screenshot(path=str(shot), full_page=True)  # for people to look at, whatever follows
    assert shot.stat().st_size > 10_000
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"首页在 {PHONE_WIDTH}px 宽的手机上出现横向滚动（页面宽 {width}px）"
