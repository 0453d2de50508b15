"""Browser tests: Debian's Chromium, headless, driven by Playwright, against a real
`mall serve` and `mall writer` on loopback. A missing browser fails the tests.

Screenshots go to tests/artifacts/screenshots/ (kept by CI as test artifacts).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from mall.namespace import drop_namespace
from mall.settings import Settings
from tests.conftest import settings_for
from tests.stack import ARTIFACTS, Stack

SCREENSHOTS = ARTIFACTS / "screenshots"
# Sizes the pages are checked at: a phone, a tablet and a desktop.
VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "tablet": {"width": 820, "height": 1180},
    "desktop": {"width": 1366, "height": 900},
}
# Without the background-networking flags Chromium keeps trying hosts a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is not installed: `make test` installs Debian's chromium")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                            args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def web_stack(database_url: str) -> AsyncIterator[Stack]:
    """The mall as real processes (API with the pages, relay, writer) on its own namespace."""
    settings: Settings = settings_for(database_url, "w")
    stack = Stack.create(settings, f"browser-{settings.namespace}")
    await stack.start()
    yield stack
    stack.stop()
    await drop_namespace(settings)


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser, web_stack: Stack,
                    request: pytest.FixtureRequest) -> AsyncIterator[OpenPage]:
    """open_page("phone" | "tablet" | "desktop", path="/") -> a page in a fresh context (its
    own storage, so its own sign-in). Script errors on any page fail the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def opener(size: str = "desktop", path: str = "/", locale: str = "zh-CN") -> Page:
        context = await browser.new_context(viewport=VIEWPORTS[size], locale=locale,
                                            base_url=web_stack.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{size}: {exc}"))
        await page.goto(path)
        return page

    yield opener
    for context in contexts:
        await context.close()
    assert not errors, f"script errors in the page: {errors}"


async def shot(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact: screenshots/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = (page.viewport_size or {}).get("width", 0)
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}-{width}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
