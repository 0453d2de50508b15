"""The flash-sale HTTP contract through the real app, relay and writer."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from order_writer.stock import record_stock_return
from seckill import metrics
from tests.e2e.helpers import buy, create_product, create_sale, wait_persisted
from tests.stack import auth


async def test_sale_view_and_purchase_lifecycle(client: TestClient, settings: Settings,
                                                pg: asyncpg.Pool) -> None:
    sale = await create_sale(client, settings, stock=2, limit=1, price=999)
    assert sale["state"] == "live" and sale["remaining"] == 2 and sale["stock"] == 2
    assert set(sale) >= {"id", "sku_id", "price", "stock", "remaining", "per_user_limit",
                         "starts_at", "ends_at", "state"}
    status, body = await buy(client, settings, sale["id"], "buyer1")
    assert status == 202 and body["status"] == "queued"
    order_id = body["order_id"]
    persisted = await wait_persisted(client, settings, "buyer1", order_id)
    assert persisted["status"] == "pending_payment"
    assert [{k: line[k] for k in ("sku_id", "qty", "price")} for line in persisted["items"]] \
        == [{"sku_id": sale["sku_id"], "qty": 1, "price": 999}]
    assert persisted["items"][0]["product_name"] == sale["product_name"]
    assert persisted["total"] == 999
    assert persisted["created_at"].endswith("+00:00")
    resp = await client.get(f"/api/v1/flash-sales/{sale['id']}")
    assert (await resp.json())["remaining"] == 1


async def test_sale_views_name_their_product(client: TestClient, settings: Settings,
                                            pg: asyncpg.Pool) -> None:
    """The storefront links a sale to its product page and names it without another call."""
    sale = await create_sale(client, settings, stock=3)
    product = await pg.fetchrow("SELECT p.id, p.name FROM skus s JOIN products p "
                                "ON p.id = s.product_id WHERE s.id = $1", sale["sku_id"])
    assert (sale["product_id"], sale["product_name"]) == (product["id"], product["name"])
    assert (sale["requires_token"], sale["shards"]) == (False, 1)
    listed = []
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/api/v1/flash-sales", params=params)
        page = await resp.json()
        listed += [item for item in page["items"] if item["id"] == sale["id"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(i["product_id"], i["product_name"], i["requires_token"]) for i in listed] == [
        (product["id"], product["name"], False)]


async def test_queued_order_is_visible_before_the_writer(client: TestClient,
                                                         settings: Settings) -> None:
    sale = await create_sale(client, settings, stock=1)
    status, body = await buy(client, settings, sale["id"], "early1")
    assert status == 202
    resp = await client.get(f"/api/v1/orders/{body['order_id']}",
                            headers=auth(settings, "early1"))
    assert resp.status == 200
    assert (await resp.json())["status"] in {"queued", "pending_payment"}


async def test_someone_elses_order_is_404_but_staff_can_read(client: TestClient,
                                                             settings: Settings) -> None:
    sale = await create_sale(client, settings, stock=1)
    _, body = await buy(client, settings, sale["id"], "owner1")
    order_id = body["order_id"]
    resp = await client.get(f"/api/v1/orders/{order_id}", headers=auth(settings, "intruder"))
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    await wait_persisted(client, settings, "owner1", order_id)
    resp = await client.get(f"/api/v1/orders/{order_id}", headers=auth(settings, "intruder"))
    assert resp.status == 404
    resp = await client.get(f"/api/v1/orders/{order_id}",
                            headers=auth(settings, "ops", "staff"))
    assert resp.status == 200


async def test_sold_out_limit_and_replay(client: TestClient, settings: Settings) -> None:
    sale = await create_sale(client, settings, stock=2, limit=1)
    s1, first = await buy(client, settings, sale["id"], "rp1", key="click-1")
    s2, again = await buy(client, settings, sale["id"], "rp1", key="click-1")
    assert (s1, s2) == (202, 202) and first == again
    status, body = await buy(client, settings, sale["id"], "rp1", key="click-2")
    assert status == 409 and body["error"]["code"] == "limit_reached"
    status, body = await buy(client, settings, sale["id"], "rp1", qty=2, key="click-1")
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert (await buy(client, settings, sale["id"], "rp2"))[0] == 202
    for user in ("rp3", "rp4", "rp5"):
        status, body = await buy(client, settings, sale["id"], user)
        assert status == 409 and body["error"]["code"] == "sold_out"
    # After the sale sold out (and the sold-out flag is set), the replay still answers 202.
    await asyncio.sleep(0.3)
    status, body = await buy(client, settings, sale["id"], "rp1", key="click-1")
    assert status == 202 and body["order_id"] == first["order_id"]
    resp = await client.get(f"/api/v1/flash-sales/{sale['id']}")
    view = await resp.json()
    assert view["state"] == "sold_out" and view["remaining"] == 0


async def test_window_answers_403(client: TestClient, settings: Settings) -> None:
    upcoming = await create_sale(client, settings, start_in_s=3600)
    assert upcoming["state"] == "upcoming"
    status, body = await buy(client, settings, upcoming["id"], "w1")
    assert status == 403 and body["error"]["code"] == "not_started"
    ended = await create_sale(client, settings, start_in_s=-10, length_s=5)
    assert ended["state"] == "ended"
    status, body = await buy(client, settings, ended["id"], "w1")
    assert status == 403 and body["error"]["code"] == "ended"


async def test_sale_stock_is_reserved_from_the_sku(client: TestClient, settings: Settings,
                                                   pg: asyncpg.Pool) -> None:
    sku = await create_product(client, settings, stock=10)
    await create_sale(client, settings, stock=7, sku_id=sku)
    assert await pg.fetchval("SELECT stock FROM skus WHERE id = $1", sku) == 3
    starts = "2030-01-01T00:00:00+08:00"
    resp = await client.post(
        "/api/v1/admin/flash-sales", headers=auth(settings, "staff1", "staff"),
        json={"sku_id": sku, "price": 1, "stock": 4, "starts_at": starts,
              "ends_at": "2030-01-02T00:00:00+08:00"},
    )
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "insufficient_stock"
    assert await pg.fetchval("SELECT stock FROM skus WHERE id = $1", sku) == 3


async def test_order_list_is_newest_first_and_paginated(client: TestClient,
                                                       settings: Settings) -> None:
    order_ids = []
    for _ in range(5):
        sale = await create_sale(client, settings, stock=1)
        _, body = await buy(client, settings, sale["id"], "lister")
        order_ids.append(body["order_id"])
    for order_id in order_ids:
        await wait_persisted(client, settings, "lister", order_id)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=auth(settings, "lister"))
        assert resp.status == 200
        page = await resp.json()
        seen += [o["order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(order_ids))
    resp = await client.get("/api/v1/orders", headers=auth(settings, "nobody"))
    assert (await resp.json()) == {"items": [], "next_cursor": None}
    resp = await client.get("/api/v1/orders?cursor=garbage", headers=auth(settings, "lister"))
    assert resp.status == 422


async def test_health_and_metrics(client: TestClient) -> None:
    assert (await client.get("/livez")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["checks"] == {"redis": "ok", "postgres": "ok", "rabbitmq": "ok"}
    text = await (await client.get("/metrics")).text()
    for name in ("mall_admissions_total", "mall_admission_duration_seconds",
                 "mall_outbox_backlog", "mall_writer_batch_orders",
                 "mall_writer_batch_duration_seconds", "mall_accept_to_persist_seconds"):
        assert name in text


async def test_sold_out_flag_clears_when_stock_comes_back(
    client: TestClient, settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    sale = await create_sale(client, settings, stock=1)
    status, first = await buy(client, settings, sale["id"], "flag1")
    assert status == 202
    assert (await buy(client, settings, sale["id"], "flag2"))[0] == 409
    await asyncio.sleep(0.2)  # the buyers snapshot loads in the background
    before = metrics.SOLD_OUT_SHORTCUTS._value.get()
    status, body = await buy(client, settings, sale["id"], "flag3")
    assert status == 409 and body["error"]["code"] == "sold_out"
    assert metrics.SOLD_OUT_SHORTCUTS._value.get() == before + 1, "answered without Redis"
    # A past buyer still reaches Redis: limit_reached, not a blanket sold_out.
    status, body = await buy(client, settings, sale["id"], "flag1")
    assert body["error"]["code"] in {"limit_reached", "sold_out"}
    assert metrics.SOLD_OUT_SHORTCUTS._value.get() == before + 1
    # The order is cancelled and its unit comes back, in PostgreSQL and then in Redis.
    await wait_persisted(client, settings, "flag1", first["order_id"])
    await cancel_and_return(pg, first["order_id"])
    k = Keys(settings.namespace).sale(sale["id"])
    await wait_until(lambda: redis_int(redis, k.stock), 1)
    await asyncio.sleep(settings.soldout_refresh_s * 3)
    status, body = await buy(client, settings, sale["id"], "flag3")
    assert status == 202, body
    await wait_persisted(client, settings, "flag3", body["order_id"])
    assert await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale["id"]) == 1


async def cancel_and_return(pg: asyncpg.Pool, order_id: str) -> bool:
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
        await conn.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = $1",
                           order_id)
        return await record_stock_return(conn, order_id, "test")


async def redis_int(redis: Redis, key: str) -> int:
    return int(await redis.get(key) or 0)


async def wait_until(probe, expected: object, timeout_s: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (value := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{value} != {expected}"
        await asyncio.sleep(0.05)


async def test_returned_stock_comes_back_exactly_once(
    client: TestClient, settings: Settings, redis: Redis, pg: asyncpg.Pool
) -> None:
    """Two cancellations race; the units come back once, in PostgreSQL and in Redis."""
    sale = await create_sale(client, settings, stock=2, limit=1)
    _, a = await buy(client, settings, sale["id"], "ret1")
    _, b = await buy(client, settings, sale["id"], "ret2")
    for user, order in (("ret1", a), ("ret2", b)):
        await wait_persisted(client, settings, user, order["order_id"])
    results = await asyncio.gather(*(cancel_and_return(pg, a["order_id"]) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    k = Keys(settings.namespace).sale(sale["id"])
    await wait_until(lambda: redis_int(redis, k.stock), 1)
    assert await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale["id"]) == 1
    await wait_until(lambda: pg.fetchval(
        "SELECT applied_at IS NOT NULL FROM stock_returns WHERE order_id = $1",
        a["order_id"]), True)
    # The applier runs again over the same record (as after a crash before applied_at):
    # the per-order marker keeps Redis from getting the unit twice.
    await pg.execute("UPDATE stock_returns SET applied_at = NULL WHERE order_id = $1",
                     a["order_id"])
    await wait_until(lambda: pg.fetchval(
        "SELECT applied_at IS NOT NULL FROM stock_returns WHERE order_id = $1",
        a["order_id"]), True)
    assert await redis_int(redis, k.stock) == 1
    # The buyer whose order was cancelled may buy again; the other may not.
    status, again = await buy(client, settings, sale["id"], "ret1")
    assert status == 202, again
    status, body = await buy(client, settings, sale["id"], "ret2")
    assert status == 409


async def test_no_flash_sale_on_an_unpublished_product(client: TestClient,
                                                       settings: Settings) -> None:
    staff = auth(settings, "staff1", "staff")
    resp = await client.post("/api/v1/admin/products", headers=staff, json={
        "name": "Draft", "published": False, "skus": [{"price": 100, "stock": 5}]})
    sku = (await resp.json())["skus"][0]["id"]
    starts, ends = "2030-01-01T00:00:00+00:00", "2030-01-02T00:00:00+00:00"
    resp = await client.post("/api/v1/admin/flash-sales", headers=staff, json={
        "sku_id": sku, "price": 1, "stock": 1, "starts_at": starts, "ends_at": ends})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "not_published"
