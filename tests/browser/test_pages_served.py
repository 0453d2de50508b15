"""The pages are served by the app itself, with headers that keep foreign scripts out."""

from __future__ import annotations

import aiohttp

from tests.browser.conftest import OpenPage
from tests.stack import Stack


async def test_pages_and_assets_carry_the_security_headers(web_stack: Stack) -> None:
    async with aiohttp.ClientSession(base_url=web_stack.url) as http:
        for path in ("/", "/backoffice/", "/backoffice", "/assets/common/api.js"):
            async with http.get(path) as resp:
                assert resp.status == 200, path
                csp = resp.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
                assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_files_outside_the_web_folder_are_not_served(web_stack: Stack) -> None:
    async with aiohttp.ClientSession(base_url=web_stack.url) as http:
        for path in ("/assets/../mall/settings.py", "/assets/%2e%2e/mall/settings.py",
                     "/assets/..%2fpyproject.toml", "/assets/store/missing.js"):
            async with http.get(path) as resp:
                assert resp.status in (403, 404), path
                assert b"jwt_secret" not in await resp.read()


async def test_both_pages_load_in_chromium(open_page: OpenPage) -> None:
    store = await open_page("phone", "/")
    assert await store.title()
    office = await open_page("desktop", "/backoffice/")
    assert await office.title()
