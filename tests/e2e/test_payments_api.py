"""Payments over HTTP through the real app: the sandbox flow, webhooks, staff confirmation,
ownership and idempotency."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from checkout.payments import http as payments_http
from checkout.payments.config import sandbox_secret
from checkout.payments.sandbox import SandboxProvider
from mall.app import create_app
from mall.settings import Settings
from tests.e2e.helpers import buy, create_sale, wait_persisted
from tests.stack import auth

TOTAL = 4999
WEBHOOK = "/api/v1/payments/webhooks/sandbox"


@pytest.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[TestClient]:
    """The real app over real HTTP, with the payments routes whether or not the app has them
    wired yet."""
    app = create_app(settings)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource}
    if WEBHOOK.replace("sandbox", "{provider}") not in paths:
        payments_http.setup(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def sandbox(settings: Settings) -> SandboxProvider:
    return SandboxProvider(sandbox_secret(settings.jwt_secret))


async def insert_order(pg: asyncpg.Pool, user: str, total: int = TOTAL,
                       status: str = "pending_payment") -> str:
    order_id = f"tp-{uuid.uuid4().hex}"
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO orders (order_id, user_id, status, total, created_at)"
            " VALUES ($1, $2, $3, $4, $5)", order_id, user, status, total, datetime.now(UTC))
    return order_id


async def create_payment(api: TestClient, settings: Settings, user: str, order_id: str,
                         provider: str = "sandbox", key: str | None = None) -> tuple[int, dict]:
    headers = auth(settings, user)
    if key:
        headers["Idempotency-Key"] = key
    resp = await api.post(f"/api/v1/orders/{order_id}/payments", json={"provider": provider},
                          headers=headers)
    return resp.status, await resp.json()


async def order_status(pg: asyncpg.Pool, order_id: str) -> str:
    return str(await pg.fetchval("SELECT status FROM orders WHERE order_id = $1", order_id))


def callback(settings: Settings, payment: dict, amount: int | None = None,
             event_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"event_id": event_id or f"evt_{uuid.uuid4().hex}",
                       "payment_id": payment["payment_id"], "order_id": payment["order_id"],
                       "amount": payment["amount"] if amount is None else amount,
                       "status": "succeeded"}).encode()
    return body, {"X-Sandbox-Signature": sandbox(settings).sign(body),
                  "Content-Type": "application/json"}


async def test_sandbox_flow_pays_the_order(api: TestClient, settings: Settings,
                                           pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "flow-buyer")
    status, payment = await create_payment(api, settings, "flow-buyer", order_id)
    assert status == 201, payment
    assert payment["status"] == "created" and payment["amount"] == TOTAL
    assert payment["pay_url"].endswith(f"/api/v1/sandbox/pay/{payment['payment_id']}")
    assert payment["qr_payload"] == payment["pay_url"]
    resp = await api.post(f"/api/v1/sandbox/pay/{payment['payment_id']}",
                          headers=auth(settings, "flow-buyer"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["outcome"] == "paid"
    assert await order_status(pg, order_id) == "paid"
    resp = await api.get(f"/api/v1/orders/{order_id}", headers=auth(settings, "flow-buyer"))
    assert (await resp.json())["status"] == "paid"
    resp = await api.get(f"/api/v1/payments/{payment['payment_id']}",
                         headers=auth(settings, "flow-buyer"))
    assert (await resp.json())["status"] == "succeeded"


async def test_flash_sale_order_paid_through_the_sandbox(client: TestClient, api: TestClient,
                                                         settings: Settings,
                                                         pg: asyncpg.Pool) -> None:
    sale = await create_sale(client, settings, stock=3, price=1234)
    status, accepted = await buy(client, settings, sale["id"], "sale-payer")
    assert status == 202, accepted
    order = await wait_persisted(client, settings, "sale-payer", accepted["order_id"])
    assert order["status"] == "pending_payment"
    status, payment = await create_payment(api, settings, "sale-payer", order["order_id"])
    assert status == 201 and payment["amount"] == 1234
    resp = await api.post(f"/api/v1/sandbox/pay/{payment['payment_id']}",
                          headers=auth(settings, "sale-payer"))
    assert resp.status == 200, await resp.text()
    assert await order_status(pg, order["order_id"]) == "paid"


async def test_someone_elses_order_is_not_found(api: TestClient, settings: Settings,
                                                pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "victim")
    status, body = await create_payment(api, settings, "mallory", order_id)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await create_payment(api, settings, "mallory", "no-such-order")
    assert status == 404
    status, payment = await create_payment(api, settings, "victim", order_id)
    assert status == 201
    for method, path in (("GET", f"/api/v1/payments/{payment['payment_id']}"),
                         ("POST", f"/api/v1/sandbox/pay/{payment['payment_id']}")):
        resp = await api.request(method, path, headers=auth(settings, "mallory"))
        assert resp.status == 404, path
    assert await order_status(pg, order_id) == "pending_payment"
    assert await pg.fetchval("SELECT count(*) FROM payments WHERE order_id = $1", order_id) == 1


async def test_create_payment_refuses_bad_input(api: TestClient, settings: Settings,
                                                pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "picky")
    path = f"/api/v1/orders/{order_id}/payments"
    for body in (b"{", b"{}", b'{"provider": "paypal"}', b'{"provider": "sandbox", "x": 1}'):
        resp = await api.post(path, data=body, headers=auth(settings, "picky"))
        assert resp.status == 422, body
        assert (await resp.json())["error"]["code"] == "invalid_request"
    resp = await api.post(path, json={"provider": "sandbox"})
    assert resp.status == 401
    paid = await insert_order(pg, "picky", status="paid")
    status, body = await create_payment(api, settings, "picky", paid)
    assert (status, body["error"]["code"]) == (409, "order_not_payable")
    status, body = await create_payment(api, settings, "picky", order_id, provider="alipay")
    assert (status, body["error"]["code"]) == (422, "provider_unavailable")
    for weird in ("%00", "%ED%A0%80", "x" * 200):
        status, _ = await create_payment(api, settings, "picky", weird)
        assert status == 404, weird
        resp = await api.get(f"/api/v1/payments/{weird}", headers=auth(settings, "picky"))
        assert resp.status == 404, weird
        resp = await api.post(f"/api/v1/admin/payments/{weird}/confirm",
                              json={"amount": 1, "reference": "r"},
                              headers=auth(settings, "clerk", "staff"))
        assert resp.status == 404, weird


async def test_create_payment_is_idempotent(api: TestClient, settings: Settings,
                                            pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "retrier")
    first = await create_payment(api, settings, "retrier", order_id, key="pay-once-1")
    again = await create_payment(api, settings, "retrier", order_id, key="pay-once-1")
    assert first[0] == again[0] == 201 and first[1] == again[1]
    unkeyed = await create_payment(api, settings, "retrier", order_id)
    assert unkeyed[0] == 200 and unkeyed[1]["payment_id"] == first[1]["payment_id"]
    other = await create_payment(api, settings, "retrier", order_id, provider="cod",
                                 key="pay-once-1")
    assert (other[0], other[1]["error"]["code"]) == (422, "idempotency_key_reused")
    assert await pg.fetchval("SELECT count(*) FROM payments WHERE order_id = $1", order_id) == 1


async def test_webhook_refuses_forged_and_tampered_callbacks(api: TestClient, settings: Settings,
                                                             pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "forgery")
    _, payment = await create_payment(api, settings, "forgery", order_id)
    body, headers = callback(settings, payment)
    tampered = body.replace(b'"succeeded"', b'"succeeded" ')
    for data, hdrs in ((body, {"X-Sandbox-Signature": "0" * 64}), (body, {}),
                       (tampered, headers), (b"\x00\xff", headers)):
        resp = await api.post(WEBHOOK, data=data, headers=hdrs)
        assert resp.status == 401, data
        assert (await resp.json())["error"]["code"] == "invalid_signature"
    assert await order_status(pg, order_id) == "pending_payment"
    resp = await api.post("/api/v1/payments/webhooks/paypal", data=body, headers=headers)
    assert resp.status == 404
    for junk in (b'{"event_id": 5}', body.replace(b'"event_id": "', b'"event_id": "\\u0000')):
        resp = await api.post(WEBHOOK, data=junk,
                              headers={"X-Sandbox-Signature": sandbox(settings).sign(junk)})
        assert resp.status == 422, junk
    resp = await api.post(WEBHOOK, data=body, headers=headers)
    assert resp.status == 200 and (await resp.json())["outcome"] == "paid"


async def test_webhook_replays_and_duplicates_pay_once(api: TestClient, settings: Settings,
                                                       pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "dupes")
    _, payment = await create_payment(api, settings, "dupes", order_id)
    body, headers = callback(settings, payment)

    async def post() -> dict:
        resp = await api.post(WEBHOOK, data=body, headers=headers)
        assert resp.status == 200
        return dict(await resp.json())

    answers = await asyncio.gather(*(post() for _ in range(5)))
    assert {a["outcome"] for a in answers} == {"paid"}
    assert sorted(a["replayed"] for a in answers) == [False, True, True, True, True]
    assert (await post())["replayed"] is True
    transitions = await pg.fetchval(
        "SELECT count(*) FROM order_history WHERE order_id = $1 AND to_status = 'paid'",
        order_id)
    assert transitions == 1


async def test_webhook_amount_mismatch_is_409_and_changes_nothing(
        api: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "shortpay")
    _, payment = await create_payment(api, settings, "shortpay", order_id)
    body, headers = callback(settings, payment, amount=1)
    resp = await api.post(WEBHOOK, data=body, headers=headers)
    assert resp.status == 409
    error = (await resp.json())["error"]
    assert error["code"] == "amount_mismatch" and error["details"]["expected"] == TOTAL
    assert await order_status(pg, order_id) == "pending_payment"
    resp = await api.get(f"/api/v1/payments/{payment['payment_id']}",
                         headers=auth(settings, "shortpay"))
    assert (await resp.json())["status"] == "created"


async def test_late_payment_after_cancel_is_refunded(api: TestClient, settings: Settings,
                                                     pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "latepayer")
    _, payment = await create_payment(api, settings, "latepayer", order_id)
    await pg.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = $1", order_id)
    resp = await api.post(f"/api/v1/sandbox/pay/{payment['payment_id']}",
                          headers=auth(settings, "latepayer"))
    assert resp.status == 200 and (await resp.json())["outcome"] == "refund_due"
    assert await order_status(pg, order_id) == "cancelled"
    resp = await api.get(f"/api/v1/payments/{payment['payment_id']}",
                         headers=auth(settings, "latepayer"))
    assert (await resp.json())["status"] == "refunded"


async def test_bank_transfer_is_confirmed_by_staff_only(api: TestClient, settings: Settings,
                                                        pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "transferer")
    status, payment = await create_payment(api, settings, "transferer", order_id,
                                           provider="bank_transfer")
    assert status == 201 and payment["pay_url"] is None
    instructions = payment["instructions"]
    assert instructions["reference"] == payment["payment_id"]
    assert instructions["amount"] == TOTAL and instructions["account"]
    path = f"/api/v1/admin/payments/{payment['payment_id']}/confirm"
    good = {"amount": TOTAL, "reference": "BANK-20261123-0001"}
    resp = await api.post(path, json=good, headers=auth(settings, "transferer"))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden"
    resp = await api.post(path, json={**good, "amount": TOTAL - 100},
                          headers=auth(settings, "clerk", "staff"))
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "amount_mismatch"
    assert await order_status(pg, order_id) == "pending_payment"
    resp = await api.post(path, json=good, headers=auth(settings, "clerk", "staff"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["outcome"] == "paid" and body["payment"]["status"] == "succeeded"
    assert await order_status(pg, order_id) == "paid"
    actor = await pg.fetchval("SELECT actor FROM order_history WHERE order_id = $1"
                              " AND to_status = 'paid'", order_id)
    assert actor == "clerk"
    resp = await api.post(path, json=good, headers=auth(settings, "clerk", "staff"))
    assert resp.status == 200 and (await resp.json())["outcome"] == "already_paid"


async def test_cash_on_delivery_keeps_the_order_payable(api: TestClient, settings: Settings,
                                                        pg: asyncpg.Pool) -> None:
    order_id = await insert_order(pg, "codbuyer")
    status, payment = await create_payment(api, settings, "codbuyer", order_id, provider="cod")
    assert status == 201 and payment["instructions"]["method"] == "cash_on_delivery"
    assert await order_status(pg, order_id) == "pending_payment"
    _, sandbox_payment = await create_payment(api, settings, "codbuyer", order_id)
    resp = await api.post(f"/api/v1/admin/payments/{sandbox_payment['payment_id']}/confirm",
                          json={"amount": TOTAL, "reference": "x"},
                          headers=auth(settings, "clerk", "staff"))
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_staff_confirmed"
    resp = await api.post(f"/api/v1/admin/payments/{payment['payment_id']}/confirm",
                          json={"amount": TOTAL, "reference": "COURIER-77"},
                          headers=auth(settings, "courier-desk", "staff"))
    assert resp.status == 200 and (await resp.json())["outcome"] == "paid"
    assert await order_status(pg, order_id) == "paid"


async def test_every_payments_route_is_documented(api: TestClient) -> None:
    spec = await (await api.get("/api/openapi.json")).json()
    for path in ("/api/v1/orders/{order_id}/payments", "/api/v1/payments/webhooks/{provider}",
                 "/api/v1/admin/payments/{payment_id}/confirm",
                 "/api/v1/sandbox/pay/{payment_id}"):
        assert "post" in spec["paths"][path], path
    assert "CreatePaymentBody" in spec["components"]["schemas"]
