"""Browser fixtures: the real app served by uvicorn in a thread, driven by Debian's Chromium.

The live server runs the same app object as the `app` fixture of tests/conftest.py, so it uses
the same test database and home, which are emptied before every test. Playwright never
downloads a browser here: it launches /usr/bin/chromium (``apt-get install chromium
fonts-noto-cjk``; scripts/test installs both). Without that binary the browser tests skip.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(app: Any) -> Iterator[str]:
    """The app on a free local port for the whole session; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start the live server")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("浏览器测试需要 Debian 的 Chromium：apt-get install -y chromium fonts-noto-cjk")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live_server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A factory of pages, each in its own browser context (its own cookies: one user each).

    `new_page(width=390)` gives a phone-sized page. On failure every page opened by the test is
    saved as a screenshot under test-artifacts/failures/.
    """
    contexts: list[Any] = []

    def make(width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            base_url=live_server, locale="zh-CN", viewport={"width": width, "height": height}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        _save_failure_screenshots(request.node.name, contexts)
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Any:
    return new_page()


def _save_failure_screenshots(test_name: str, contexts: list[Any]) -> None:
    folder = ARTIFACTS / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^\w.-]+", "_", test_name)
    for i, context in enumerate(contexts):
        for j, page in enumerate(context.pages):
            try:
                page.screenshot(path=str(folder / f"{safe}-{i}-{j}.png"), full_page=True)
            except Exception:  # a screenshot must never hide the real failure
                continue
