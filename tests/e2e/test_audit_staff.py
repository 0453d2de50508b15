"""The audit log over HTTP through the real app: staff actions, permission denials, and the
requests it must leave alone."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.helpers import create_sale
from tests.stack import auth


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def rows_of(pg: asyncpg.Pool, where: str, *args: Any) -> list[dict[str, Any]]:
    rows = await pg.fetch(f"SELECT * FROM audit_log WHERE {where} ORDER BY id", *args)
    out = []
    for row in rows:
        entry = dict(row)
        entry["target"] = orjson.loads(row["target"])
        entry["details"] = orjson.loads(row["details"])
        out.append(entry)
    return out


async def test_staff_actions_are_recorded_with_who_what_target_and_outcome(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    staff = unique("aud-staff")
    name = unique("Audited lamp")
    resp = await client.post("/api/v1/admin/products", headers=auth(settings, staff, "staff"),
                             json={"name": name, "skus": [{"price": 1500, "stock": 3}]})
    assert resp.status == 201, await resp.text()
    product_id = (await resp.json())["id"]
    resp = await client.patch(f"/api/v1/admin/products/{product_id}",
                              headers=auth(settings, staff, "staff"), json={"name": name + "!"})
    assert resp.status == 200, await resp.text()
    # A staff action that fails: its row carries the status and the error code.
    resp = await client.post("/api/v1/admin/products", headers=auth(settings, staff, "staff"),
                             json={"name": "", "skus": []})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "invalid_request"

    created, patched, failed = await rows_of(pg, "actor = $1", staff)
    assert created["kind"] == "staff_action" and created["actor_role"] == "staff"
    assert (created["method"], created["path"]) == ("POST", "/api/v1/admin/products")
    assert created["route"] == "/api/v1/admin/products"
    assert (created["status"], created["outcome"]) == (201, "success")
    assert created["details"]["body"]["name"] == name
    assert str(created["ip"]) == "127.0.0.1"
    assert patched["route"] == "/api/v1/admin/products/{product_id}"
    assert patched["target"] == {"product_id": str(product_id)}
    assert (patched["method"], patched["status"]) == ("PATCH", 200)
    assert (failed["status"], failed["outcome"]) == (422, "invalid_request")
    assert failed["details"]["error"] == "invalid_request"


async def test_staff_action_without_a_valid_token_is_recorded_anonymously(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    marker = unique("no-token")
    path = f"/api/v1/admin/products/{marker}/publish"
    resp = await client.post(path, headers={"Authorization": "Bearer not.a.token"})
    assert resp.status == 401
    [row] = await rows_of(pg, "path = $1", path)
    assert (row["kind"], row["actor"], row["status"], row["outcome"]) == (
        "staff_action", None, 401, "unauthorized")
    assert row["target"] == {"product_id": marker}


async def test_a_customer_on_an_admin_route_is_a_permission_denial(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    customer = unique("aud-cust")
    resp = await client.post("/api/v1/admin/products", headers=auth(settings, customer),
                             json={"name": "sneaky", "skus": [{"price": 1, "stock": 1}]})
    assert resp.status == 403
    # Reads are denied and recorded too: it is the denial that is audited, not the method.
    resp = await client.get("/api/v1/admin/orders", headers=auth(settings, customer, "member"))
    assert resp.status == 403
    resp = await client.put(f"/api/v1/admin/users/{customer}/role",
                            headers=auth(settings, customer, "staff"), json={"role": "staff"})
    assert resp.status == 403
    post, get, put = await rows_of(pg, "actor = $1", customer)
    assert (post["kind"], post["actor_role"], post["status"]) == (
        "permission_denied", "customer", 403)
    assert post["outcome"] == "forbidden" and post["route"] == "/api/v1/admin/products"
    assert (get["kind"], get["method"], get["actor_role"]) == ("permission_denied", "GET",
                                                               "member")
    assert put["kind"] == "permission_denied" and put["actor_role"] == "staff"
    assert put["target"] == {"user_id": customer}
    assert put["details"]["body"] == {"role": "staff"}


async def test_reads_and_customer_requests_are_not_recorded(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    staff, buyer = unique("aud-reader"), unique("aud-buyer")
    before = await pg.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    sale = await create_sale(client, settings, stock=5)
    after_setup = await pg.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    assert after_setup > before  # the staff set-up above is recorded: the log is live
    for path in ("/api/v1/admin/orders", "/api/v1/admin/after-sales", "/api/v1/admin/audit",
                 f"/api/v1/admin/products/{sale['sku_id']}/changes"):
        resp = await client.get(path, headers=auth(settings, staff, "staff"))
        assert resp.status in (200, 404), path
        resp = await client.head(path, headers=auth(settings, staff, "staff"))
    resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders",
                             headers=auth(settings, buyer), json={"qty": 1})
    assert resp.status == 202
    resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders",
                             headers=auth(settings, buyer), json={"qty": 1})
    assert resp.status == 409  # limit_reached: an error, but not an audited one
    upcoming = await create_sale(client, settings, stock=2, start_in_s=3600)
    mark = await pg.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    resp = await client.post(f"/api/v1/flash-sales/{upcoming['id']}/orders",
                             headers=auth(settings, buyer), json={"qty": 1})
    assert resp.status == 403  # the sale's window, not a permission
    for path in ("/api/v1/products", "/api/v1/cart", f"/api/v1/flash-sales/{sale['id']}"):
        resp = await client.get(path, headers=auth(settings, buyer))
        assert resp.status == 200, path
    assert await rows_of(pg, "actor = ANY($1::text[])", [staff, buyer]) == []
    assert await rows_of(pg, "id > $1", mark) == []
