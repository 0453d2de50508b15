"""After-sales over HTTP: a customer's request, staff decisions, and money and stock back once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.test_orders_api import call, lifecycle_client
from tests.integration.test_lifecycle_helpers import (
    make_order,
    refunds,
    sold,
    status_of,
    steps,
    stock_returns,
)
from tests.stack import auth

PHOTO = "https://img.example.com/broken.jpg"


@pytest.fixture(scope="module")
async def api(client: TestClient, settings: Settings) -> AsyncIterator[TestClient]:
    async with lifecycle_client(client, settings) as lifecycle:
        yield lifecycle


async def test_refund_request_approved_once_returns_money_and_stock_once(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "delivered", qty=2)
    path = f"/api/v1/orders/{order.order_id}/after-sales"
    status, created = await call(api, settings, "POST", path, order.user_id, json={
        "type": "refund", "reason": "arrived broken", "photo_urls": [PHOTO]})
    assert status == 201, created
    assert (created["status"], created["type"], created["photo_urls"]) == (
        "requested", "refund", [PHOTO])
    status, again = await call(api, settings, "POST", path, order.user_id, json={
        "type": "return", "reason": "changed my mind"})
    assert status == 409 and again["error"]["code"] == "after_sales_open"
    status, listed = await call(api, settings, "GET", "/api/v1/admin/after-sales?status=requested"
                                "&limit=100", "ops1", "staff")
    assert status == 200 and created["id"] in [r["id"] for r in listed["items"]]

    approve = f"/api/v1/admin/after-sales/{created['id']}/approve"
    answers = await asyncio.gather(
        call(api, settings, "POST", approve, "ops1", "staff", json={"note": "sorry"}),
        call(api, settings, "POST", approve, "ops2", "staff"))
    codes = sorted(a[0] for a in answers)
    assert codes == [200, 409], answers
    won = next(a[1] for a in answers if a[0] == 200)
    lost = next(a[1] for a in answers if a[0] == 409)
    assert won["status"] == "approved" and won["refund"]["amount"] == order.total
    assert lost["error"]["code"] == "after_sales_decided"
    assert lost["error"]["details"]["status"] == "approved"

    assert await status_of(pg, order.order_id) == "refunded"
    assert [tuple(r) for r in await refunds(pg, order.order_id)] == [
        (f"after_sales:{created['id']}", order.total, "completed")]
    assert await stock_returns(pg, order.order_id) == 1 and await sold(pg, order.sale_id) == 0
    assert [s[1:3] for s in await steps(pg, order.order_id)][-2:] == [
        ("delivered", "after_sales_requested"), ("refunded", "after_sales_approved")]
    status, body = await call(api, settings, "POST", path, order.user_id, json={
        "type": "refund", "reason": "again"})
    assert status == 409 and body["error"]["details"]["current_status"] == "refunded"


async def test_rejected_request_changes_nothing_and_a_new_one_may_follow(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "completed", qty=1)
    path = f"/api/v1/orders/{order.order_id}/after-sales"
    _, created = await call(api, settings, "POST", path, order.user_id,
                            json={"type": "exchange", "reason": "wrong size"})
    reject = f"/api/v1/admin/after-sales/{created['id']}/reject"
    status, body = await call(api, settings, "POST", reject, "ops1", "staff", json={})
    assert status == 422
    status, body = await call(api, settings, "POST", reject, "ops1", "staff",
                              json={"note": "outside the exchange window"})
    assert status == 200 and body["status"] == "rejected" and body["refund"] is None
    assert body["decided_by"] == "ops1" and body["note"] == "outside the exchange window"
    assert await status_of(pg, order.order_id) == "completed"
    assert await refunds(pg, order.order_id) == [] and await stock_returns(pg, order.order_id) == 0
    status, body = await call(api, settings, "POST", path, order.user_id,
                              json={"type": "exchange", "reason": "wrong size, really"})
    assert status == 201
    status, body = await call(api, settings, "POST", f"/api/v1/admin/after-sales/{body['id']}"
                              "/approve", "ops1", "staff")
    assert status == 200 and body["refund"] is None
    assert await status_of(pg, order.order_id) == "completed"
    assert [s[2] for s in await steps(pg, order.order_id)][-4:] == [
        "after_sales_requested", "after_sales_rejected", "after_sales_requested",
        "after_sales_approved"]


@pytest.mark.parametrize("status_of_order", ["pending_payment", "paid", "shipped", "cancelled"])
async def test_after_sales_needs_a_delivered_or_completed_order(
        api: TestClient, settings: Settings, pg: asyncpg.Pool, status_of_order: str) -> None:
    order = await make_order(pg, status_of_order)
    status, body = await call(api, settings, "POST",
                              f"/api/v1/orders/{order.order_id}/after-sales", order.user_id,
                              json={"type": "return", "reason": "no"})
    assert status == 409 and body["error"]["code"] == "after_sales_not_allowed"
    assert body["error"]["details"]["current_status"] == status_of_order


@pytest.mark.parametrize("body", [
    {"type": "swap", "reason": "x"},
    {"type": "return", "reason": ""},
    {"type": "return", "reason": "   "},
    {"type": "return", "reason": "x" * 501},
    {"type": "return", "reason": "x", "photo_urls": ["http://img.example.com/a.jpg"]},
    {"type": "return", "reason": "x", "photo_urls": ["https:///nohost"]},
    {"type": "return", "reason": "x", "photo_urls": [PHOTO] * 10},
    {"type": "return", "reason": "x", "extra": 1},
])
async def test_bad_after_sales_bodies_are_422(api: TestClient, settings: Settings,
                                              pg: asyncpg.Pool, body: dict[str, object]) -> None:
    order = await make_order(pg, "delivered")
    status, answer = await call(api, settings, "POST",
                                f"/api/v1/orders/{order.order_id}/after-sales", order.user_id,
                                json=body)
    assert status == 422 and answer["error"]["code"] == "invalid_request"
    assert len(await steps(pg, order.order_id)) == 1


async def test_after_sales_request_replays_with_its_idempotency_key(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "delivered")
    path = f"/api/v1/orders/{order.order_id}/after-sales"
    body = {"type": "return", "reason": "too small"}
    first = await api.post(path, json=body, headers={
        **auth(settings, order.user_id),
        "Idempotency-Key": "as-1"})
    assert first.status == 201
    again = await api.post(path, json=body, headers={
        **auth(settings, order.user_id),
        "Idempotency-Key": "as-1"})
    assert again.status == 201 and await again.json() == await first.json()
