"""HTTP helpers for the catalog end-to-end tests."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.stack import auth

STAFF = "catstaff"


def staff_headers(settings: Settings, user: str = STAFF) -> dict[str, str]:
    return auth(settings, user, "staff")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def call(client: TestClient, method: str, path: str, expect: int | None = None,
               **kwargs: Any) -> tuple[int, Any]:
    resp = await client.request(method, path, **kwargs)
    body = await resp.read()
    data = await resp.json() if body else None
    if expect is not None:
        assert resp.status == expect, f"{method} {path}: {resp.status} {body!r}"
    return resp.status, data


async def new_category(client: TestClient, settings: Settings, name: str | None = None,
                       parent_id: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name or unique("cat")}
    if parent_id is not None:
        body["parent_id"] = parent_id
    _, data = await call(client, "POST", "/api/v1/admin/categories", 201, json=body,
                         headers=staff_headers(settings))
    return dict(data)


async def new_product(client: TestClient, settings: Settings, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": unique("Gadget 小工具"),
                            "skus": [{"price": 1000, "stock": 10, "attributes": {"colour": "red"}}]}
    body.update(fields)
    _, data = await call(client, "POST", "/api/v1/admin/products", 201, json=body,
                         headers=staff_headers(settings))
    return dict(data)


async def changes_of(client: TestClient, settings: Settings, product_id: int) -> list[dict]:
    _, data = await call(client, "GET", f"/api/v1/admin/products/{product_id}/changes", 200,
                         headers=staff_headers(settings))
    return list(data["items"])
