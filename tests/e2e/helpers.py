"""Small HTTP helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.stack import auth, window


async def create_product(client: TestClient, settings: Settings, stock: int = 100,
                         price: int = 1999) -> int:
    resp = await client.post(
        "/api/v1/admin/products", headers=auth(settings, "staff1", "staff"),
        json={"name": "Phone 手机", "skus": [{"price": price, "stock": stock}]},
    )
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["skus"][0]["id"])


async def create_sale(client: TestClient, settings: Settings, stock: int = 10, limit: int = 1,
                      start_in_s: float = -1, length_s: float = 3600, price: int = 999,
                      sku_id: int | None = None) -> dict[str, Any]:
    sku = sku_id if sku_id is not None else await create_product(client, settings, stock * 2)
    starts_at, ends_at = window(start_in_s, length_s)
    resp = await client.post(
        "/api/v1/admin/flash-sales", headers=auth(settings, "staff1", "staff"),
        json={"sku_id": sku, "price": price, "stock": stock, "per_user_limit": limit,
              "starts_at": starts_at, "ends_at": ends_at},
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def buy(client: TestClient, settings: Settings, sale_id: int, user: str, qty: int = 1,
              key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = auth(settings, user)
    if key:
        headers["Idempotency-Key"] = key
    resp = await client.post(f"/api/v1/flash-sales/{sale_id}/orders", headers=headers,
                             json={"qty": qty})
    return resp.status, dict(await resp.json())


async def wait_persisted(client: TestClient, settings: Settings, user: str, order_id: str,
                         timeout_s: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        resp = await client.get(f"/api/v1/orders/{order_id}", headers=auth(settings, user))
        body = dict(await resp.json())
        if resp.status == 200 and body["status"] != "queued":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} not persisted in {timeout_s}s")
