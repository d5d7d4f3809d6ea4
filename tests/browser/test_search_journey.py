"""Search as people ask, in a real browser: everyday words, a typo, pinyin, related entries, and
the regulator adding a word to the vocabulary."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_catalog_journey import log_in
from tests.conftest import Cast, Factory
from tests.search_catalog import EverydayCatalog

pytestmark = pytest.mark.browser


def ask(page: Any, q: str) -> None:
    page.goto("/datasets")
    page.get_by_role("searchbox", name="检索词").fill(q)
    page.get_by_role("button", name="搜索").click()


def test_visitor_asks_in_everyday_words(new_page: Any, factory: Factory, cast: Cast) -> None:
    EverydayCatalog(factory, cast)
    page = new_page()
    ask(page, "办护照")
    results = page.locator("#catalog")
    expect(results).to_contain_text("没有直接包含“办护照”的目录")
    expect(page.locator(".result-list .result").first).to_contain_text("出入境证件受理点信息")
    expect(results).not_to_contain_text("护照签发明细")  # 不予开放

    ask(page, "图书管")  # a homophone typo: no entry, a suggestion
    expect(results).to_contain_text("没有找到符合条件的数据目录")
    page.get_by_role("link", name="图书馆", exact=True).click()
    expect(page.locator(".result-list .result").first).to_contain_text("图书馆")

    ask(page, "tsg")
    page.locator(".result-list").get_by_role("link", name="公共图书馆名录").click()
    related = page.locator("section.related-entries")
    expect(related).to_contain_text("相关数据集")
    expect(related).to_contain_text("同一主题")


def test_regulator_adds_an_everyday_word(new_page: Any, factory: Factory, cast: Cast) -> None:
    EverydayCatalog(factory, cast)
    regulator = new_page()
    log_in(regulator, "factory-regulator")
    regulator.goto("/admin")
    regulator.get_by_role("link", name="检索词表").click()
    regulator.get_by_label("日常说法").fill("看书的地方 书馆")
    regulator.get_by_label("目录用语").fill("图书馆 借阅")
    regulator.get_by_label("主题分类").select_option("whxx")
    regulator.get_by_role("button", name="保存").click()
    expect(regulator.locator("main")).to_contain_text("已保存检索词组：看书的地方、书馆")

    visitor = new_page()
    ask(visitor, "书馆")
    expect(visitor.locator(".result-list .result").first).to_contain_text("公共图书馆名录")
