"""In-page actions with HTMX: the page is updated in place, not reloaded, and the URL follows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_catalog_journey import log_in
from tests.conftest import Factory

pytestmark = pytest.mark.browser


def mark_document(page: Page) -> None:
    """A flag on window that a full page load would wipe out."""
    page.evaluate("window.kfNoReload = true")


def still_same_document(page: Page) -> bool:
    return bool(page.evaluate("window.kfNoReload === true"))


def test_facets_and_search_update_the_catalog_in_place(page: Page, factory: Factory) -> None:
    org = factory.org("jtw", "海河市交通运输委员会")
    pub = factory.user("pub", org=org, roles=("publisher",))
    factory.entry(pub, org, title="公交线路站点信息", open_type="unconditional")
    factory.entry(pub, org, title="公交实时到站数据", open_type="conditional")
    page.goto("/datasets?q=公交")
    expect(page.locator(".result")).to_have_count(2)
    mark_document(page)
    page.locator(".facets").get_by_role("link", name="有条件开放").click()
    expect(page.locator(".result")).to_have_count(1)
    expect(page.locator(".result")).to_contain_text("公交实时到站数据")
    assert "open_type=conditional" in page.url
    assert still_same_document(page)
    page.get_by_label("检索词").fill("地铁")
    page.get_by_role("button", name="搜索").click()
    expect(page.get_by_text("没有找到")).to_be_visible()
    assert still_same_document(page)
    page.go_back()
    expect(page.locator(".result")).to_have_count(1)


def test_revoking_an_api_key_updates_the_list_in_place(page: Page, factory: Factory) -> None:
    user = factory.user("citizen")
    factory.api_key(user)
    log_in(page, "citizen")
    page.goto("/account")
    keys = page.locator("#api-keys")
    expect(keys.get_by_text("有效", exact=True)).to_be_visible()
    mark_document(page)
    page.once("dialog", lambda dialog: dialog.accept())
    keys.get_by_role("button", name="撤销").click()
    expect(page.locator("#api-keys").get_by_text("已撤销", exact=True)).to_be_visible()
    assert still_same_document(page)


def test_cancelled_confirmation_revokes_nothing(page: Page, factory: Factory) -> None:
    user = factory.user("citizen")
    factory.api_key(user)
    log_in(page, "citizen")
    page.goto("/account")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#api-keys").get_by_role("button", name="撤销").click()
    page.reload()
    expect(page.locator("#api-keys").get_by_text("有效", exact=True)).to_be_visible()
