"""Helpers of the storefront browser tests: staff set-up through the real API, customers signed
up through the API (for tests that do not exercise the sign-up form), server-state checks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import asyncpg
from playwright.async_api import Page

from tests.stack import Stack, request_json, token, window

SESSION_KEY = "mall.store.session"


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def call(stack: Stack, method: str, path: str, bearer: str | None = None,
               body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    hdrs = dict(headers or {})
    if bearer:
        hdrs["Authorization"] = f"Bearer {bearer}"
    async with aiohttp.ClientSession(base_url=stack.url) as http:
        kwargs: dict[str, Any] = {"headers": hdrs}
        if body is not None:
            kwargs["json"] = body
        return await request_json(http, method, f"/api/v1{path}", **kwargs)


def staff(stack: Stack) -> str:
    return token(stack.settings, "ops", "staff")


async def create_category(stack: Stack, name: str) -> int:
    status, body = await call(stack, "POST", "/admin/categories", staff(stack), {"name": name})
    assert status == 201, body
    return int(body["id"])


async def create_product(stack: Stack, name: str, skus: list[dict[str, Any]],
                         category_id: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": name, "skus": skus, "description": f"{name} description"}
    if category_id is not None:
        payload["category_id"] = category_id
    status, body = await call(stack, "POST", "/admin/products", staff(stack), payload)
    assert status == 201, body
    return dict(body)


async def create_sale(stack: Stack, sku_id: int, *, stock: int = 5, limit: int = 1,
                      price: int = 9900, start_in_s: float = -1,
                      length_s: float = 3600) -> dict[str, Any]:
    starts_at, ends_at = window(start_in_s, length_s)
    status, body = await call(stack, "POST", "/admin/flash-sales", staff(stack), {
        "sku_id": sku_id, "price": price, "stock": stock, "per_user_limit": limit,
        "starts_at": starts_at, "ends_at": ends_at})
    assert status == 201, body
    return dict(body)


async def sale_product(stack: Stack, name: str, stock: int = 5, limit: int = 1,
                       start_in_s: float = -1) -> tuple[dict[str, Any], dict[str, Any]]:
    product = await create_product(stack, name, [{"price": 19900, "stock": stock + 10}])
    sale = await create_sale(stack, product["skus"][0]["id"], stock=stock, limit=limit,
                             start_in_s=start_in_s)
    return product, sale


async def register(stack: Stack, email: str | None = None,
                   password: str = "store-pass-123") -> dict[str, Any]:
    status, body = await call(stack, "POST", "/auth/register", None, {
        "email": email or f"{unique('buyer')}@example.com", "password": password,
        "nickname": "Buyer"})
    assert status == 201, body
    return dict(body)


async def sign_in_page(page: Page, account: dict[str, Any], path: str) -> None:
    """Puts an API-created session in the page's storage, then opens path."""
    session = {**account["tokens"], "user": account["user"]}
    await page.evaluate("([k, v]) => localStorage.setItem(k, v)",
                        [SESSION_KEY, json.dumps(session)])
    await page.goto(path)


async def page_token(page: Page) -> str:
    raw = await page.evaluate("(k) => localStorage.getItem(k)", SESSION_KEY)
    assert raw, "the page has no session"
    return str(json.loads(raw)["access_token"])


async def pg_fetch(stack: Stack, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def horizontal_overflow(page: Page) -> int:
    """How many pixels the page is wider than its viewport (0: no horizontal scrolling)."""
    return int(await page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"))
