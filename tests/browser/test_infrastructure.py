"""The live server and the browser work: the smallest possible browser test."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_live_server_answers_health(live_server: str) -> None:
    assert httpx.get(f"{live_server}/healthz").json() == {"status": "ok"}


def test_home_page_renders_chinese(page: Any) -> None:
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert "公共数据开放平台" in page.title()
