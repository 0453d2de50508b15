"""A little data for the fuzzer to find: a category, a product, a live flash sale and the
customer's order in it, a claimable coupon held by the customer, an address, a cart line, a
price list and a payment."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp

from mall.settings import Settings
from tests.stack import auth, iso, now, request_json, window

API = "/api/v1"
STAFF = "fuzz-staff"
PASSWORD = "correct horse battery"


@dataclass
class Seed:
    staff: dict[str, str]
    customer: dict[str, str]
    customer_id: str
    path_ids: dict[str, Any] = field(default_factory=dict)


async def _call(session: aiohttp.ClientSession, base: str, method: str, path: str,
                expect: int, **kwargs: Any) -> Any:
    status, body = await request_json(session, method, base + API + path, **kwargs)
    assert status == expect, f"{method} {path}: {status} {body}"
    return body


async def _persisted_order(session: aiohttp.ClientSession, base: str,
                           headers: dict[str, str], order_id: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, body = await request_json(session, "GET", f"{base}{API}/orders/{order_id}",
                                          headers=headers)
        if status == 200 and body["status"] != "queued":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} was not persisted")


async def _register(session: aiohttp.ClientSession, base: str) -> tuple[str, dict[str, str]]:
    body = await _call(session, base, "POST", "/auth/register", 201, json={
        "email": f"fuzz.{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD,
        "nickname": "fuzz"})
    token = body["tokens"]["access_token"]
    return body["user"]["user_id"], {"Authorization": f"Bearer {token}"}


async def seed(settings: Settings, base: str) -> Seed:
    staff = auth(settings, STAFF, "staff")
    async with aiohttp.ClientSession() as s:
        customer_id, customer = await _register(s, base)
        category = await _call(s, base, "POST", "/admin/categories", 201, headers=staff,
                               json={"name": f"fuzz {uuid.uuid4().hex[:6]}"})
        product = await _call(s, base, "POST", "/admin/products", 201, headers=staff, json={
            "name": "Fuzz phone 手机", "category_id": category["id"], "tags": ["fuzz"],
            "skus": [{"price": 19900, "stock": 1000}, {"price": 500, "stock": 1000}]})
        sku_id = product["skus"][0]["id"]
        starts_at, ends_at = window(-1, 3600)
        sale = await _call(s, base, "POST", "/admin/flash-sales", 201, headers=staff, json={
            "sku_id": product["skus"][1]["id"], "price": 100, "stock": 50, "per_user_limit": 5,
            "starts_at": starts_at, "ends_at": ends_at})
        order = await _call(s, base, "POST", f"/flash-sales/{sale['id']}/orders", 202,
                            headers=customer, json={"qty": 1})
        await _persisted_order(s, base, customer, order["order_id"])
        start = now()
        coupon = await _call(s, base, "POST", "/admin/coupons", 201, headers=staff, json={
            "name": "满100减20", "kind": "threshold", "threshold": 10000, "amount": 2000,
            "claim_starts_at": iso(start - timedelta(seconds=5)),
            "claim_ends_at": iso(start + timedelta(hours=1)),
            "valid_from": iso(start - timedelta(seconds=5)),
            "valid_until": iso(start + timedelta(days=7)), "total": 100, "per_user": 3})
        await _call(s, base, "POST", f"/coupons/{coupon['id']}/claim", 201, headers=customer)
        address = await _call(s, base, "POST", "/me/addresses", 201, headers=customer, json={
            "recipient": "张三", "phone": "13912345678", "province": "上海", "city": "上海",
            "district": "浦东", "line": "世纪大道 1 号"})
        await _call(s, base, "POST", "/cart/items", 200, headers=customer,
                    json={"sku_id": sku_id, "qty": 1})
        price_list = await _call(s, base, "POST", "/admin/price-lists", 201, headers=staff, json={
            "name": "fuzz", "starts_at": iso(start + timedelta(days=1)),
            "ends_at": iso(start + timedelta(days=2)),
            "items": [{"sku_id": sku_id, "price": 9900}]})
        payment = await _call(s, base, "POST", f"/orders/{order['order_id']}/payments", 201,
                              headers=customer, json={"provider": "cod"})
    return Seed(staff=staff, customer=customer, customer_id=customer_id, path_ids={
        "category_id": category["id"], "product_id": product["id"], "sku_id": sku_id,
        "sale_id": sale["id"], "order_id": order["order_id"], "template_id": coupon["id"],
        "address_id": address["id"], "list_id": price_list["id"],
        "payment_id": payment["payment_id"], "user_id": customer_id, "provider": "sandbox",
    })
