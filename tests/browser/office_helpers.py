"""Helpers of the back-office browser tests: accounts, a paid order and signing in, all through
the real API of a running `web_stack`."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from mall.settings import Settings
from tests.browser.conftest import shot
from tests.stack import Stack, request_json, token

PASSWORD = "correct-horse-42"
ADDRESS = {"recipient": "王五", "phone": "+8613700137000", "province": "广东",
           "city": "深圳", "line": "深南大道 3 号"}


def bearer(settings: Settings, sub: str, role: str = "customer") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, sub, role)}"}


def admin(settings: Settings) -> dict[str, str]:
    return bearer(settings, "root", "admin")


async def call(stack: Stack, method: str, path: str, headers: dict[str, str] | None = None,
               body: Any = None, expect_status: int = 200) -> Any:
    async with aiohttp.ClientSession() as http:
        status, data = await request_json(http, method, f"{stack.url}{path}",
                                          headers=headers or {}, json=body)
    assert status == expect_status, f"{method} {path}: {status} {data}"
    return data


async def register(stack: Stack, role: str = "customer") -> dict[str, str]:
    """A new account with an e-mail and password; role set by an admin when not customer."""
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    data = await call(stack, "POST", "/api/v1/auth/register",
                      {"Idempotency-Key": uuid.uuid4().hex},
                      {"email": email, "password": PASSWORD}, expect_status=201)
    user_id = data["user"]["user_id"]
    if role != "customer":
        changed = await call(stack, "PUT", f"/api/v1/admin/users/{user_id}/role",
                             admin(stack.settings), {"role": role})
        assert changed["role"] == role
    return {"user_id": user_id, "email": email, "password": PASSWORD}


async def paid_order(stack: Stack, buyer: str) -> str:
    """A customer's order, placed through the cart and paid with the sandbox provider."""
    settings = stack.settings
    staff, me = bearer(settings, "setup-staff", "staff"), bearer(settings, buyer)
    product = await call(stack, "POST", "/api/v1/admin/products",
                         {**staff, "Idempotency-Key": uuid.uuid4().hex},
                         {"name": "旅行箱 Suitcase", "skus": [{"price": 12900, "stock": 5}]},
                         expect_status=201)
    sku = product["skus"][0]["id"]
    await call(stack, "POST", "/api/v1/cart/items", me, {"sku_id": sku, "qty": 1})
    placed = await call(stack, "POST", "/api/v1/checkout",
                        {**me, "Idempotency-Key": uuid.uuid4().hex},
                        {"delivery": "standard", "address": ADDRESS}, expect_status=202)
    order_id = str(placed["order_id"])
    deadline = time.monotonic() + 15
    while True:
        order = await call(stack, "GET", f"/api/v1/orders/{order_id}", me)
        if order["status"] == "pending_payment":
            break
        assert time.monotonic() < deadline, f"order not persisted: {order}"
        await asyncio.sleep(0.05)
    payment = await call(stack, "POST", f"/api/v1/orders/{order_id}/payments", me,
                         {"provider": "sandbox"}, expect_status=201)
    paid = await call(stack, "POST", f"/api/v1/sandbox/pay/{payment['payment_id']}", me)
    assert paid["outcome"] == "paid"
    return order_id


async def sign_in(page: Page, login: str, password: str = PASSWORD) -> None:
    await page.get_by_label("邮箱或手机号").fill(login)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()


async def sign_in_as_staff(page: Page, account: dict[str, str]) -> None:
    await sign_in(page, account["email"])
    await expect(page.get_by_role("button", name="退出登录")).to_be_visible()


async def snap(page: Page, name: str) -> None:
    """A screenshot from the top of the page (the sticky top bar stays where it belongs)."""
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, name)
