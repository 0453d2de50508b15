"""Helpers of the storefront browser tests: staff set-up through the real API, customers signed
up through the API (for tests that do not exercise the sign-up form), server-state checks."""

from __future__ import annotations

import asyncio
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


ADDRESS = {"recipient": "赵六", "phone": "+8613700137000", "province": "江苏", "city": "南京",
           "district": "玄武区", "line": "中山路 8 号"}


async def wait_order(stack: Stack, bearer: str, order_id: str, status: str,
                     timeout_s: float = 10) -> dict[str, Any]:
    """Polls the order through the API until it reaches status (the writer and the payment
    callback run asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        code, order = await call(stack, "GET", f"/orders/{order_id}", bearer)
        if code == 200 and order["status"] == status:
            return dict(order)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"order {order_id} not {status}: {code} {order}")
        await asyncio.sleep(0.1)


async def checkout_now(stack: Stack, bearer: str, sku_id: int, qty: int = 1,
                       delivery: str = "standard") -> str:
    """A regular order with an address, placed through the API; returns it once persisted."""
    code, body = await call(stack, "POST", "/checkout", bearer, {
        "items": [{"sku_id": sku_id, "qty": qty}], "delivery": delivery, "address": ADDRESS},
        {"Idempotency-Key": unique("co")})
    assert code == 202, body
    await wait_order(stack, bearer, body["order_id"], "pending_payment")
    return str(body["order_id"])


async def pay_now(stack: Stack, bearer: str, order_id: str) -> None:
    code, payment = await call(stack, "POST", f"/orders/{order_id}/payments", bearer,
                               {"provider": "sandbox"}, {"Idempotency-Key": unique("pay")})
    assert code in (200, 201), payment
    code, paid = await call(stack, "POST", f"/sandbox/pay/{payment['payment_id']}", bearer)
    assert 200 <= code < 300, paid
    await wait_order(stack, bearer, order_id, "paid")


async def delivered_order(stack: Stack, bearer: str, sku_id: int) -> str:
    """Checked out, paid, shipped and delivered (staff API): ready for receipt or after-sales."""
    order_id = await checkout_now(stack, bearer, sku_id)
    await pay_now(stack, bearer, order_id)
    for step, body in (("ship", {"carrier": "SF", "tracking_number": unique("SF")}),
                       ("deliver", {})):
        code, answer = await call(stack, "POST", f"/admin/orders/{order_id}/{step}",
                                  staff(stack), body)
        assert code == 200, answer
    return order_id
