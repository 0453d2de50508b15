"""The order lifecycle over HTTP through the real app: buy, pay, ship, deliver, confirm, cancel,
history, after-sales, and who may call what."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from mall.app import create_app
from mall.openapi import documented_routes
from mall.settings import Settings
from order_writer import routes
from order_writer.lifecycle import ImmediateRefunder, PaymentOutcome, record_payment
from tests.e2e.helpers import buy, create_sale, wait_persisted
from tests.integration.test_lifecycle_helpers import (
    make_order,
    refunds,
    sold,
    status_of,
    steps,
    stock_returns,
)
from tests.stack import auth

CANCEL_PATH = "/api/v1/orders/{order_id}/cancel"
ADDRESS = {"recipient": "王五", "phone": "+8613700137000", "province": "广东", "city": "深圳",
           "line": "深南大道 3 号"}


@contextlib.asynccontextmanager
async def lifecycle_client(client: TestClient, settings: Settings) -> AsyncIterator[TestClient]:
    """The shared app when it already serves the lifecycle routes, else the same app with them
    (it shares the writer, database and namespace of the shared one)."""
    if any(path == CANCEL_PATH for _, path, _ in documented_routes(client.app)):
        yield client
        return
    app = create_app(settings)
    routes.setup(app)
    own = TestClient(TestServer(app))
    await own.start_server()
    try:
        yield own
    finally:
        await own.close()


@pytest.fixture(scope="module")
async def api(client: TestClient, settings: Settings) -> AsyncIterator[TestClient]:
    async with lifecycle_client(client, settings) as lifecycle:
        yield lifecycle


async def call(api: TestClient, settings: Settings, method: str, path: str, user: str | None,
               role: str = "customer", **kwargs: Any) -> tuple[int, Any]:
    headers = auth(settings, user, role) if user else {}
    resp = await api.request(method, path, headers=headers, **kwargs)
    body = await resp.json() if resp.content_type == "application/json" else await resp.text()
    return resp.status, body


async def test_an_order_from_purchase_to_completion(api: TestClient, settings: Settings,
                                                    pg: asyncpg.Pool) -> None:
    sale = await create_sale(api, settings, stock=3, price=999)
    _, accepted = await buy(api, settings, sale["id"], "life1")
    order_id = accepted["order_id"]
    order = await wait_persisted(api, settings, "life1", order_id)
    assert order["status"] == "pending_payment"
    paid = await record_payment(pg, ImmediateRefunder(pg), order_id, 999, "alipay", "a-1",
                                "system")
    assert paid.outcome is PaymentOutcome.PAID
    # A flash-sale order carries no address: the buyer gives one before it can ship.
    status, body = await call(api, settings, "PUT", f"/api/v1/orders/{order_id}/address",
                              "life1", json={"address": ADDRESS})
    assert status == 200 and body["address"]["recipient"] == ADDRESS["recipient"], body
    status, body = await call(api, settings, "POST", f"/api/v1/admin/orders/{order_id}/ship",
                              "ops1", "staff",
                              json={"carrier": "SF Express", "tracking_number": "SF1234567"})
    assert status == 200, body
    assert body["status"] == "shipped" and body["tracking_number"] == "SF1234567"
    assert body["carrier"] == "SF Express" and body["shipped_at"].endswith("+00:00")
    status, body = await call(api, settings, "POST", f"/api/v1/admin/orders/{order_id}/deliver",
                              "ops1", "staff")
    assert (status, body["status"]) == (200, "delivered")
    status, view = await call(api, settings, "GET", f"/api/v1/orders/{order_id}", "life1")
    assert status == 200 and view["status"] == "delivered" and view["paid_at"] is not None
    assert view["shipment"]["carrier"] == "SF Express"
    assert view["shipment"]["tracking_number"] == "SF1234567"
    assert view["shipment"]["delivered_at"].endswith("+00:00")
    status, body = await call(api, settings, "POST",
                              f"/api/v1/orders/{order_id}/confirm-receipt", "life1")
    assert (status, body) == (200, {"order_id": order_id, "status": "completed"})
    status, body = await call(api, settings, "GET", f"/api/v1/orders/{order_id}/history", "life1")
    assert status == 200 and body["status"] == "completed"
    assert [(s["from_status"], s["to_status"], s["actor"]) for s in body["items"]] == [
        ("queued", "pending_payment", "system"),
        ("pending_payment", "paid", "system"),
        ("paid", "paid", "life1"),  # address_set
        ("paid", "shipped", "ops1"),
        ("shipped", "delivered", "ops1"),
        ("delivered", "completed", "life1"),
    ]
    assert body["items"][3]["details"] == {"carrier": "SF Express",
                                           "tracking_number": "SF1234567"}
    assert all(s["at"].endswith("+00:00") for s in body["items"])
    status, _ = await call(api, settings, "GET", f"/api/v1/orders/{order_id}/history", "ops9",
                           "staff")
    assert status == 200


async def test_cancel_returns_stock_once_even_when_two_cancels_race(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    sale = await create_sale(api, settings, stock=2, limit=2)
    _, accepted = await buy(api, settings, sale["id"], "cx1", qty=2)
    order_id = accepted["order_id"]
    await wait_persisted(api, settings, "cx1", order_id)
    assert await sold(pg, sale["id"]) == 2
    path = f"/api/v1/orders/{order_id}/cancel"
    first, second = await asyncio.gather(call(api, settings, "POST", path, "cx1"),
                                         call(api, settings, "POST", path, "cx1"))
    answers = sorted([first, second], key=lambda a: a[0])
    assert [a[0] for a in answers] == [200, 409]
    assert answers[0][1]["stock_returned"] is True and answers[0][1]["refund"] is None
    assert answers[1][1]["error"]["code"] == "illegal_transition"
    assert answers[1][1]["error"]["details"]["current_status"] == "cancelled"
    assert await sold(pg, sale["id"]) == 0
    assert await stock_returns(pg, order_id) == 1


async def test_cancelling_a_paid_order_refunds_it(api: TestClient, settings: Settings,
                                                  pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "pending_payment", qty=1)
    # Paid through the sandbox provider, so the refund has a payment to go back through.
    await pg.execute("INSERT INTO payments (id, order_id, user_id, provider, amount, status)"
                     " VALUES ($1, $2, $3, 'sandbox', $4, 'succeeded')",
                     f"pay-{order.order_id[-20:]}", order.order_id, order.user_id, order.total)
    await record_payment(pg, ImmediateRefunder(pg), order.order_id, order.total, "sandbox",
                         f"pay-{order.order_id[-20:]}", "system")
    status, body = await call(api, settings, "POST", f"/api/v1/orders/{order.order_id}/cancel",
                              order.user_id)
    assert status == 200 and body["previous_status"] == "paid"
    assert body["refund"]["amount"] == order.total
    assert [tuple(r) for r in await refunds(pg, order.order_id)] == [
        ("cancel", order.total, "completed")]
    assert await stock_returns(pg, order.order_id) == 1 and await sold(pg, order.sale_id) == 0


ROUTE_TARGETS = {
    ("POST", "/api/v1/orders/{}/cancel", "owner"): {"pending_payment", "paid"},
    ("POST", "/api/v1/orders/{}/confirm-receipt", "owner"): {"shipped", "delivered"},
    ("POST", "/api/v1/admin/orders/{}/ship", "staff"): {"paid"},
    ("POST", "/api/v1/admin/orders/{}/deliver", "staff"): {"shipped"},
}
ROUTE_ILLEGAL = [
    (method, path, who, src)
    for (method, path, who), allowed in ROUTE_TARGETS.items()
    for src in ("pending_payment", "paid", "shipped", "delivered", "completed", "cancelled",
                "refunded")
    if src not in allowed
]


@pytest.mark.parametrize(("method", "path", "who", "src"), ROUTE_ILLEGAL,
                         ids=[f"{p.split('/')[-1]}-from-{s}" for _, p, _, s in ROUTE_ILLEGAL])
async def test_routes_refuse_illegal_transitions_with_the_current_status(
        api: TestClient, settings: Settings, pg: asyncpg.Pool, method: str, path: str, who: str,
        src: str) -> None:
    order = await make_order(pg, src)
    user, role = (order.user_id, "customer") if who == "owner" else ("ops2", "staff")
    body = {"carrier": "EMS", "tracking_number": "EMS0001"} if path.endswith("ship") else None
    status, answer = await call(api, settings, method, path.format(order.order_id), user, role,
                                json=body)
    assert status == 409, answer
    assert answer["error"]["code"] == "illegal_transition"
    assert answer["error"]["details"]["current_status"] == src
    assert await status_of(pg, order.order_id) == src


OWNER_ROUTES = [
    ("GET", "/api/v1/orders/{}", None),
    ("GET", "/api/v1/orders/{}/history", None),
    ("POST", "/api/v1/orders/{}/cancel", None),
    ("POST", "/api/v1/orders/{}/confirm-receipt", None),
    ("POST", "/api/v1/orders/{}/after-sales", {"type": "refund", "reason": "broken"}),
    ("GET", "/api/v1/orders/{}/after-sales", None),
    ("PUT", "/api/v1/orders/{}/address", {"address": ADDRESS}),
]


@pytest.mark.parametrize("status_of_order", ["pending_payment", "shipped", "delivered"])
async def test_someone_elses_order_is_404_on_every_route(api: TestClient, settings: Settings,
                                                         pg: asyncpg.Pool,
                                                         status_of_order: str) -> None:
    order = await make_order(pg, status_of_order)
    for method, path, body in OWNER_ROUTES:
        status, answer = await call(api, settings, method, path.format(order.order_id),
                                    "intruder7", json=body)
        assert status == 404, (method, path, answer)
        assert answer["error"]["code"] == "not_found"
    assert await status_of(pg, order.order_id) == status_of_order
    assert len(await steps(pg, order.order_id)) == 1
    for method, path, _ in OWNER_ROUTES:
        status, _ = await call(api, settings, method, path.format(order.order_id), None)
        assert status == 401


STAFF_ROUTES = [
    ("GET", "/api/v1/admin/orders"),
    ("GET", "/api/v1/admin/orders/export.csv"),
    ("POST", "/api/v1/admin/orders/{}/ship"),
    ("POST", "/api/v1/admin/orders/{}/deliver"),
    ("GET", "/api/v1/admin/after-sales"),
    ("POST", "/api/v1/admin/after-sales/1/approve"),
    ("POST", "/api/v1/admin/after-sales/1/reject"),
]


@pytest.mark.parametrize(("method", "path"), STAFF_ROUTES)
async def test_staff_routes_refuse_customers_and_anonymous(api: TestClient, settings: Settings,
                                                           pg: asyncpg.Pool, method: str,
                                                           path: str) -> None:
    order = await make_order(pg, "paid")
    url = path.format(order.order_id)
    status, answer = await call(api, settings, method, url, order.user_id)
    assert status == 403 and answer["error"]["code"] == "forbidden"
    status, answer = await call(api, settings, method, url, None)
    assert status == 401 and answer["error"]["code"] == "unauthorized"
    assert await status_of(pg, order.order_id) == "paid"


async def test_lifecycle_routes_are_documented(api: TestClient) -> None:
    spec = await (await api.get("/api/openapi.json")).json()
    for path in ("/api/v1/orders/{order_id}/cancel", "/api/v1/admin/orders/export.csv",
                 "/api/v1/admin/after-sales/{request_id}/approve"):
        assert path in spec["paths"]
    ship = spec["paths"]["/api/v1/admin/orders/{order_id}/ship"]["post"]
    assert ship["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ShipBody")
    assert spec["components"]["schemas"]["AfterSalesBody"]["properties"]["photo_urls"][
        "maxItems"] == 9


async def test_the_app_cancels_orders_past_their_payment_deadline(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    overdue = await make_order(pg, qty=2, age_s=settings.payment_timeout_s + 60)
    fresh = await make_order(pg, qty=1, sale=(overdue.sale_id, overdue.sku_id))
    deadline = asyncio.get_running_loop().time() + settings.payment_sweep_s * 3
    while await status_of(pg, overdue.order_id) != "cancelled":
        assert asyncio.get_running_loop().time() < deadline, "no sweep cancelled the order"
        await asyncio.sleep(0.1)
    assert (await steps(pg, overdue.order_id))[-1] == (
        "pending_payment", "cancelled", "payment_timeout", "system")
    assert await stock_returns(pg, overdue.order_id) == 1
    assert await sold(pg, overdue.sale_id) == fresh.qty
    assert await status_of(pg, fresh.order_id) == "pending_payment"
