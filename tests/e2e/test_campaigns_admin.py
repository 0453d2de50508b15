"""Campaign management through the real app: edits before the start, lists, warm-up, reports."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from seckill.http import SOLD_OUT_FLAGS
from tests.e2e.helpers import buy, create_product, create_sale, wait_persisted
from tests.stack import auth, iso

ADMIN = "/api/v1/admin/flash-sales"


def staff(settings: Settings) -> dict[str, str]:
    return auth(settings, "ops1", "staff")


async def snapshot(pg: asyncpg.Pool, redis: Redis, settings: Settings,
                   sale_id: int) -> dict[str, Any]:
    """Everything an admin call could change: the sale row, its SKU's stock, its Redis state."""
    row = await pg.fetchrow("SELECT * FROM flash_sales WHERE id = $1", sale_id)
    k = Keys(settings.namespace).sale(sale_id)
    return {
        "sale": dict(row),
        "sku_stock": await pg.fetchval("SELECT stock FROM skus WHERE id = $1", row["sku_id"]),
        "meta": await redis.hgetall(k.meta),
        "stock": await redis.get(k.stock),
        "buyers": await redis.hgetall(k.buyers),
        "outbox": await redis.xlen(k.outbox),
    }


async def sku_stock(pg: asyncpg.Pool, sku: int) -> int:
    return int(await pg.fetchval("SELECT stock FROM skus WHERE id = $1", sku))


async def patch(client: TestClient, settings: Settings, sale_id: int,
                body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    resp = await client.patch(f"{ADMIN}/{sale_id}", json=body,
                              headers=headers or staff(settings))
    return resp.status, await resp.json()


async def test_edit_before_start_then_buy_at_new_price_and_limit(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    sku = await create_product(client, settings, stock=20)
    sale = await create_sale(client, settings, stock=5, limit=1, price=999, start_in_s=2.5,
                             sku_id=sku)
    assert await sku_stock(pg, sku) == 15
    status, body = await patch(client, settings, sale["id"],
                               {"price": 555, "per_user_limit": 3, "stock": 8})
    assert status == 200, body
    assert (body["price"], body["per_user_limit"], body["stock"]) == (555, 3, 8)
    assert await sku_stock(pg, sku) == 12, "three more units came out of the SKU"
    meta = await redis.hgetall(Keys(settings.namespace).sale(sale["id"]).meta)
    assert (meta[b"price"], meta[b"per_user_limit"], meta[b"stock"]) == (b"555", b"3", b"8")
    # Fewer units: they go back to the SKU.
    status, body = await patch(client, settings, sale["id"], {"stock": 6})
    assert status == 200 and body["stock"] == 6
    assert await sku_stock(pg, sku) == 14
    view = await (await client.get(f"/api/v1/flash-sales/{sale['id']}")).json()
    assert (view["price"], view["remaining"], view["state"]) == (555, 6, "upcoming")
    status, body = await buy(client, settings, sale["id"], "newterms1", qty=3)
    assert status == 403 and body["error"]["code"] == "not_started"

    await asyncio.sleep(max(0.0, datetime.fromisoformat(sale["starts_at"]).timestamp()
                            - time.time()) + 0.1)
    status, body = await buy(client, settings, sale["id"], "newterms1", qty=3)
    assert status == 202, body
    order = await wait_persisted(client, settings, "newterms1", body["order_id"])
    assert order["total"] == 3 * 555
    assert [{k: line[k] for k in ("sku_id", "qty", "price")} for line in order["items"]] == [
        {"sku_id": sku, "qty": 3, "price": 555}]
    status, body = await buy(client, settings, sale["id"], "newterms1")
    assert status == 409 and body["error"]["code"] == "limit_reached"
    # Started: no more edits, and nothing changes.
    before = await snapshot(pg, redis, settings, sale["id"])
    status, body = await patch(client, settings, sale["id"], {"price": 1})
    assert status == 409 and body["error"]["code"] == "sale_started"
    assert await snapshot(pg, redis, settings, sale["id"]) == before


async def test_edit_after_start_is_409_and_changes_nothing(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    sale = await create_sale(client, settings, stock=4, limit=1, price=700)
    status, body = await buy(client, settings, sale["id"], "started1")
    assert status == 202
    await wait_persisted(client, settings, "started1", body["order_id"])
    await asyncio.sleep(0.2)  # the relay deletes the entry after the publish confirm
    before = await snapshot(pg, redis, settings, sale["id"])
    later = iso(datetime.now(UTC) + timedelta(hours=5))
    for body in ({"price": 1}, {"stock": 100}, {"stock": 1}, {"per_user_limit": 5},
                 {"ends_at": later}, {"starts_at": later, "ends_at": iso(
                     datetime.now(UTC) + timedelta(hours=6))}):
        status, answer = await patch(client, settings, sale["id"], body)
        assert status == 409 and answer["error"]["code"] == "sale_started", (body, answer)
    assert await snapshot(pg, redis, settings, sale["id"]) == before


async def test_bad_edits_answer_their_documented_status_and_change_nothing(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    sku = await create_product(client, settings, stock=10)
    sale = await create_sale(client, settings, stock=4, start_in_s=3600, sku_id=sku)
    sale_id = sale["id"]
    before = await snapshot(pg, redis, settings, sale_id)
    soon = iso(datetime.now(UTC) + timedelta(minutes=30))
    cases: list[tuple[Any, dict[str, str] | None, int, str]] = [
        ({}, None, 422, "invalid_request"),
        ({"price": -1}, None, 422, "invalid_request"),
        ({"price": "10"}, None, 422, "invalid_request"),
        ({"stock": 0}, None, 422, "invalid_request"),
        ({"per_user_limit": 0}, None, 422, "invalid_request"),
        ({"colour": "red"}, None, 422, "invalid_request"),
        ({"starts_at": "2030-01-01T00:00:00"}, None, 422, "invalid_request"),
        ({"ends_at": soon}, None, 422, "invalid_request"),  # before the start
        ({"starts_at": iso(datetime.now(UTC) - timedelta(hours=3)),
          "ends_at": iso(datetime.now(UTC) - timedelta(hours=2))}, None, 422, "invalid_request"),
        ({"stock": 11}, None, 409, "insufficient_stock"),  # the SKU has 6 more, not 7
        ({"price": 1}, auth(settings, "cust1"), 403, "forbidden"),
    ]
    for body, headers, expected, code in cases:
        status, answer = await patch(client, settings, sale_id, body, headers)
        assert (status, answer["error"]["code"]) == (expected, code), (body, answer)
    resp = await client.patch(f"{ADMIN}/{sale_id}", data=b"{not json",
                              headers=staff(settings))
    assert resp.status == 422
    resp = await client.patch(f"{ADMIN}/{sale_id}", json={"price": 1})
    assert resp.status == 401
    for path in (f"{ADMIN}/999999999", f"{ADMIN}/abc", f"{ADMIN}/0"):
        resp = await client.patch(path, json={"price": 1}, headers=staff(settings))
        assert resp.status == 404
    for method, suffix in (("POST", "end"), ("POST", "warm-up"), ("GET", "report")):
        resp = await client.request(method, f"{ADMIN}/{sale_id}/{suffix}",
                                    headers=auth(settings, "cust1"))
        assert resp.status == 403, suffix
        resp = await client.request(method, f"{ADMIN}/424242424/{suffix}",
                                    headers=staff(settings))
        assert resp.status == 404, suffix
    assert await snapshot(pg, redis, settings, sale_id) == before
    # The whole SKU is fine: 6 more units.
    status, answer = await patch(client, settings, sale_id, {"stock": 10})
    assert status == 200 and await sku_stock(pg, sku) == 0


async def test_lists_filter_by_state_and_page(client: TestClient, settings: Settings,
                                              pg: asyncpg.Pool) -> None:
    scheduled = await create_sale(client, settings, stock=2, start_in_s=3600)
    running = await create_sale(client, settings, stock=2)
    ended = await create_sale(client, settings, stock=2, start_in_s=-10, length_s=5)
    closed = await create_sale(client, settings, stock=2)
    resp = await client.post(f"{ADMIN}/{closed['id']}/end", headers=staff(settings))
    assert resp.status == 200
    mine = {scheduled["id"], running["id"], ended["id"], closed["id"]}
    expected = {"scheduled": {scheduled["id"]}, "running": {running["id"]},
                "ended": {ended["id"], closed["id"]}}

    async def all_pages(query: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            url = f"{ADMIN}?limit=2&{query}" + (f"&cursor={cursor}" if cursor else "")
            resp = await client.get(url, headers=staff(settings))
            assert resp.status == 200, await resp.text()
            page = await resp.json()
            assert len(page["items"]) <= 2
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    for state, ids in expected.items():
        items = await all_pages(f"state={state}")
        assert {i["id"] for i in items} & mine == ids, state
        assert all(i["state"] == state for i in items)
    everything = await all_pages("")
    ids = [i["id"] for i in everything]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert mine <= set(ids)
    total = await pg.fetchval("SELECT count(*) FROM flash_sales")
    assert len(ids) == total
    for query in ("state=live", "limit=0", "limit=101", "limit=x", "cursor=abc"):
        resp = await client.get(f"{ADMIN}?{query}", headers=staff(settings))
        assert resp.status == 422, query
    assert (await client.get(ADMIN, headers=auth(settings, "cust1"))).status == 403

    public: list[dict[str, Any]] = []
    cursor = None
    while True:
        resp = await client.get("/api/v1/flash-sales?limit=3"
                                + (f"&cursor={cursor}" if cursor else ""))
        assert resp.status == 200
        page = await resp.json()
        public += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    by_id = {i["id"]: i for i in public}
    assert {scheduled["id"], running["id"]} <= set(by_id)
    assert ended["id"] not in by_id and closed["id"] not in by_id
    assert by_id[scheduled["id"]]["state"] == "upcoming"
    assert by_id[running["id"]]["state"] == "live"
    assert by_id[running["id"]]["remaining"] == 2
    assert by_id[running["id"]]["product_name"] == "Phone 手机"
    starts = [(i["starts_at"], i["id"]) for i in public]
    assert starts == sorted(starts)
    assert (await client.get("/api/v1/flash-sales?cursor=%%%")).status == 422


async def test_warm_up_is_idempotent_and_never_resets_a_running_sale(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    sale = await create_sale(client, settings, stock=5, limit=2)
    k = Keys(settings.namespace).sale(sale["id"])
    assert (await buy(client, settings, sale["id"], "warm1", qty=2))[0] == 202
    before = await snapshot(pg, redis, settings, sale["id"])
    for _ in range(3):
        resp = await client.post(f"{ADMIN}/{sale['id']}/warm-up", headers=staff(settings))
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["remaining"] == 3
    after = await snapshot(pg, redis, settings, sale["id"])
    assert after["stock"] == b"3" and after["meta"] == before["meta"]
    assert after["buyers"] == before["buyers"]
    assert after["sale"]["warmed_at"] is not None
    assert (await buy(client, settings, sale["id"], "warm2", qty=2))[0] == 202
    assert int(await redis.get(k.stock)) == 1


async def test_warm_up_rebuilds_a_lost_sale_and_refuses_an_ended_one(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    sale = await create_sale(client, settings, stock=3, start_in_s=3600, price=321)
    k = Keys(settings.namespace).sale(sale["id"])
    meta = await redis.hgetall(k.meta)
    await redis.delete(k.meta, k.stock)
    resp = await client.post(f"{ADMIN}/{sale['id']}/warm-up", headers=staff(settings))
    assert resp.status == 200 and (await resp.json())["remaining"] == 3
    assert await redis.hgetall(k.meta) == meta and await redis.get(k.stock) == b"3"
    assert not client.app[SOLD_OUT_FLAGS].answers_sold_out(sale["id"], "anyone")

    ended = await create_sale(client, settings, stock=2, start_in_s=-10, length_s=5)
    before = await snapshot(pg, redis, settings, ended["id"])
    resp = await client.post(f"{ADMIN}/{ended['id']}/warm-up", headers=staff(settings))
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "sale_ended"
    assert await snapshot(pg, redis, settings, ended["id"]) == before


async def test_sales_about_to_start_are_warmed_up_automatically(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    soon = await create_sale(client, settings, stock=3, start_in_s=20, price=111)
    far = await create_sale(client, settings, stock=3, start_in_s=3600, price=222)
    keys = Keys(settings.namespace)
    # As if Redis had lost them: the loop must load the one starting soon, and only that one.
    for sale in (soon, far):
        await redis.delete(keys.sale(sale["id"]).meta, keys.sale(sale["id"]).stock)
        await pg.execute("UPDATE flash_sales SET warmed_at = NULL WHERE id = $1", sale["id"])
    deadline = time.monotonic() + 10
    while not await redis.exists(keys.sale(soon["id"]).meta):
        assert time.monotonic() < deadline, "the sale starting soon was not warmed up"
        await asyncio.sleep(0.1)
    assert await redis.get(keys.sale(soon["id"]).stock) == b"3"
    assert await pg.fetchval("SELECT warmed_at FROM flash_sales WHERE id = $1", soon["id"])
    assert not await redis.exists(keys.sale(far["id"]).meta)


async def pay(client: TestClient, settings: Settings, user: str, order_id: str) -> None:
    resp = await client.post(f"/api/v1/orders/{order_id}/payments",
                             json={"provider": "sandbox"}, headers=auth(settings, user))
    assert resp.status == 201, await resp.text()
    payment = await resp.json()
    resp = await client.post(f"/api/v1/sandbox/pay/{payment['payment_id']}",
                             headers=auth(settings, user))
    assert resp.status == 200, await resp.text()


async def test_report_numbers_equal_independently_computed_values(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    sale = await create_sale(client, settings, stock=6, limit=2, price=500)
    buys = [("rep1", 2), ("rep2", 1), ("rep3", 2), ("rep4", 1)]
    orders: dict[str, str] = {}
    for user, qty in buys:
        status, body = await buy(client, settings, sale["id"], user, qty=qty)
        assert status == 202, body
        orders[user] = body["order_id"]
        await wait_persisted(client, settings, user, body["order_id"])
    sold_out_at = await pg.fetchval("SELECT created_at FROM orders WHERE order_id = $1",
                                    orders["rep4"])
    # rep1 and rep2 pay; rep3 cancels (2 units come back); rep4 stays unpaid.
    await pay(client, settings, "rep1", orders["rep1"])
    await pay(client, settings, "rep2", orders["rep2"])
    resp = await client.post(f"/api/v1/orders/{orders['rep3']}/cancel",
                             headers=auth(settings, "rep3"))
    assert resp.status == 200, await resp.text()
    k = Keys(settings.namespace).sale(sale["id"])
    deadline = time.monotonic() + 10
    while int(await redis.get(k.stock)) != 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    resp = await client.get(f"{ADMIN}/{sale['id']}/report", headers=staff(settings))
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["stock"] == 6
    assert report["sold"] == 4 and report["accepted"] == 4 and report["in_flight"] == 0
    assert report["remaining"] == 2
    assert report["paid_orders"] == 2 and report["revenue"] == 3 * 500
    assert report["buyers"] == 4 and report["orders"] == 4
    assert report["units_returned"] == 2
    assert report["orders_by_status"] == {"paid": 2, "cancelled": 1, "pending_payment": 1}
    assert report["sold_out"] is True
    assert report["sold_out_at"] == sold_out_at.astimezone(UTC).isoformat()
    starts = await pg.fetchval("SELECT starts_at FROM flash_sales WHERE id = $1", sale["id"])
    assert abs(report["sell_out_seconds"] - (sold_out_at - starts).total_seconds()) < 1e-6
    assert report["returned_to_sku"] == 0 and report["closed"] is False

    unsold = await create_sale(client, settings, stock=3)
    resp = await client.get(f"{ADMIN}/{unsold['id']}/report", headers=staff(settings))
    report = await resp.json()
    assert (report["sold_out"], report["sold_out_at"], report["sell_out_seconds"]) == (
        False, None, None)
    assert (report["sold"], report["accepted"], report["buyers"], report["revenue"]) == (
        0, 0, 0, 0)
    assert report["orders_by_status"] == {}
