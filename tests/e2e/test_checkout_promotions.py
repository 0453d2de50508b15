"""Coupons, points and member prices at checkout, through the real app, relay and writer.

A coupon's use and a redemption of points are reserved in the same atomic step as the stock
(lua/reserve.lua), persisted with the order, and given back by a cancellation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.e2e.catalog_helpers import call, staff_headers
from tests.e2e.helpers import wait_persisted
from tests.stack import auth, iso, now

ADDRESS = {"recipient": "李四", "phone": "+8613900139000", "province": "浙江",
           "city": "杭州", "line": "文三路 9 号"}


def user() -> str:
    return f"promo{uuid.uuid4().hex[:10]}"


async def sku(client: TestClient, settings: Settings, price: int, stock: int,
              member_price: int | None = None) -> int:
    _, body = await call(client, "POST", "/api/v1/admin/products", 201,
                         headers=staff_headers(settings),
                         json={"name": "促销商品", "skus": [{"price": price, "stock": stock}]})
    sku_id = int(body["skus"][0]["id"])
    if member_price is not None:
        await call(client, "PATCH", f"/api/v1/admin/skus/{sku_id}", 200,
                   headers=staff_headers(settings), json={"member_price": member_price})
    return sku_id


async def coupon_for(client: TestClient, settings: Settings, who: str, **rules: Any) -> int:
    start = now()
    template = {"name": "满100减20", "kind": "threshold", "threshold": 10000, "amount": 2000,
                "claim_starts_at": iso(start - timedelta(seconds=5)),
                "claim_ends_at": iso(start + timedelta(hours=1)),
                "valid_from": iso(start - timedelta(seconds=5)),
                "valid_until": iso(start + timedelta(days=1)),
                "total": 100, "per_user": 1, **rules}
    _, created = await call(client, "POST", "/api/v1/admin/coupons", 201,
                            headers=staff_headers(settings), json=template)
    _, held = await call(client, "POST", f"/api/v1/coupons/{created['id']}/claim", 201,
                         headers=auth(settings, who))
    return int(held["id"])


async def give_points(client: TestClient, settings: Settings, who: str, points: int) -> None:
    await call(client, "POST", f"/api/v1/admin/members/{who}/points", 201,
               headers=staff_headers(settings), json={"delta": points, "note": "welcome"})


async def checkout(client: TestClient, settings: Settings, who: str, sku_id: int,
                   **extra: Any) -> tuple[int, Any]:
    return await call(client, "POST", "/api/v1/checkout", headers=auth(settings, who),
                      json={"items": [{"sku_id": sku_id, "qty": 1}], "delivery": "pickup",
                            **extra})


async def ledger_matches_balance(pg: asyncpg.Pool, who: str) -> int:
    balance, total = await pg.fetchrow(
        "SELECT (SELECT points FROM members WHERE user_id = $1),"
        " (SELECT sum(delta) FROM points_ledger WHERE user_id = $1)", who)
    assert balance == total
    return int(balance)


async def coupon_state(pg: asyncpg.Pool, coupon_id: int) -> tuple[str, str | None, int]:
    row = await pg.fetchrow("SELECT state, order_id, returned_count FROM user_coupons"
                            " WHERE id = $1", coupon_id)
    return row["state"], row["order_id"], row["returned_count"]


async def test_coupon_and_points_pay_part_and_come_back_on_cancel(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    who = user()
    sku_id = await sku(client, settings, 20000, 10)
    coupon = await coupon_for(client, settings, who)
    await give_points(client, settings, who, 5000)

    status, placed = await checkout(client, settings, who, sku_id, coupons=[coupon],
                                    points=3000)
    assert status == 202, placed
    assert (placed["total"], placed["discount"], placed["points_used"]) == (15000, 2000, 3000)
    order = await wait_persisted(client, settings, who, placed["order_id"])
    assert (order["total"], order["discount"], order["points_used"], order["coupon_ids"]) == \
        (15000, 2000, 3000, [coupon])
    assert await coupon_state(pg, coupon) == ("used", placed["order_id"], 0)
    assert await ledger_matches_balance(pg, who) == 2000

    # used and spent: a second order can have neither, and holds nothing
    stock_key = Keys(settings.namespace).sku_stock(sku_id)
    left = int(await redis.get(stock_key))
    status, body = await checkout(client, settings, who, sku_id, coupons=[coupon])
    assert (status, body["error"]["code"]) == (409, "coupon_used")
    status, body = await checkout(client, settings, who, sku_id, points=2500)
    assert (status, body["error"]["code"]) == (409, "points_insufficient")
    assert int(await redis.get(stock_key)) == left

    await call(client, "POST", f"/api/v1/orders/{placed['order_id']}/cancel", 200,
               headers=auth(settings, who))
    assert await coupon_state(pg, coupon) == ("available", None, 1)
    assert await ledger_matches_balance(pg, who) == 5000
    reasons = Counter(r["reason"] for r in await pg.fetch(
        "SELECT reason FROM points_ledger WHERE user_id = $1", who))
    assert reasons == {"adjust": 1, "redeem": 1, "redeem_reversal": 1}

    # given back once: usable once more, by one order only
    status, again = await checkout(client, settings, who, sku_id, coupons=[coupon],
                                   points=5000)
    assert status == 202, again
    assert (again["total"], again["points_used"]) == (13000, 5000)
    await wait_persisted(client, settings, who, again["order_id"])
    assert await coupon_state(pg, coupon) == ("used", again["order_id"], 1)
    assert await ledger_matches_balance(pg, who) == 0


async def test_racing_checkouts_use_one_coupon_once_and_points_never_twice(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    who = user()
    sku_id = await sku(client, settings, 12000, 100)
    coupon = await coupon_for(client, settings, who)
    results = await asyncio.gather(*(
        checkout(client, settings, who, sku_id, coupons=[coupon]) for _ in range(25)))
    codes = Counter(status if status == 202 else body["error"]["code"]
                    for status, body in results)
    assert codes == {202: 1, "coupon_used": 24}

    spender = user()
    await give_points(client, settings, spender, 3500)  # enough for three orders of 1,000
    results = await asyncio.gather(*(
        checkout(client, settings, spender, sku_id, points=1000) for _ in range(25)))
    codes = Counter(status if status == 202 else body["error"]["code"]
                    for status, body in results)
    assert codes == {202: 3, "points_insufficient": 22}
    placed = [body["order_id"] for status, body in results if status == 202]
    for order_id in placed:
        await wait_persisted(client, settings, spender, order_id)
    assert await ledger_matches_balance(pg, spender) == 500
    # only the four accepted orders took units
    assert int(await redis.get(Keys(settings.namespace).sku_stock(sku_id))) == 96


async def test_completed_order_earns_points_and_a_refund_takes_them_back(
    client: TestClient, settings: Settings, pg: asyncpg.Pool
) -> None:
    who = user()
    me, staff = auth(settings, who), staff_headers(settings)
    sku_id = await sku(client, settings, 30000, 5)
    await give_points(client, settings, who, 1000)
    _, placed = await checkout(client, settings, who, sku_id, points=1000)
    order_id = placed["order_id"]
    assert placed["total"] == 29000
    await wait_persisted(client, settings, who, order_id)
    _, payment = await call(client, "POST", f"/api/v1/orders/{order_id}/payments", 201,
                            headers=me, json={"provider": "sandbox"})
    await call(client, "POST", f"/api/v1/sandbox/pay/{payment['payment_id']}", 200, headers=me)
    await call(client, "POST", f"/api/v1/admin/orders/{order_id}/ship", 200, headers=staff,
               json={"carrier": "SF Express", "tracking_number": "SF0000000001"})
    await call(client, "POST", f"/api/v1/admin/orders/{order_id}/deliver", 200, headers=staff)
    await call(client, "POST", f"/api/v1/orders/{order_id}/confirm-receipt", 200, headers=me)
    # 290.00 CNY paid in cash earns 290 points; the 1,000 points spent are gone
    assert await ledger_matches_balance(pg, who) == 290
    _, membership = await call(client, "GET", "/api/v1/me/membership", 200, headers=me)
    assert membership["spent"] == 29000 and membership["points"] == 290

    _, request = await call(client, "POST", f"/api/v1/orders/{order_id}/after-sales", 201,
                            headers=me, json={"type": "refund", "reason": "too big",
                                              "photo_urls": []})
    await call(client, "POST", f"/api/v1/admin/after-sales/{request['id']}/approve", 200,
               headers=staff, json={"note": "ok"})
    # the earned points are taken back, the spent points come back
    assert await ledger_matches_balance(pg, who) == 1000
    _, membership = await call(client, "GET", "/api/v1/me/membership", 200, headers=me)
    assert membership["spent"] == 0


async def test_member_price_for_members_only(client: TestClient, settings: Settings) -> None:
    sku_id = await sku(client, settings, 10000, 10, member_price=8800)
    for role, price in (("member", 8800), ("customer", 10000)):
        who = user()
        headers = auth(settings, who, role)
        await call(client, "POST", "/api/v1/cart/items", 200, headers=headers,
                   json={"sku_id": sku_id, "qty": 1})
        _, cart = await call(client, "GET", "/api/v1/cart", 200, headers=headers)
        assert (cart["items"][0]["unit_price"], cart["items"][0]["list_price"]) == \
            (price, 10000)
        status, placed = await call(client, "POST", "/api/v1/checkout", headers=headers,
                                    json={"delivery": "pickup"})
        assert (status, placed["total"]) == (202, price)


async def test_bad_promotions_are_refused_and_hold_nothing(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    who, other = user(), user()
    sku_id = await sku(client, settings, 5000, 10)
    mine = await coupon_for(client, settings, who)  # needs 100.00; the goods are 50.00
    theirs = await coupon_for(client, settings, other, kind="fixed", amount=500, threshold=0)
    await give_points(client, settings, who, 10000)
    stock_key = Keys(settings.namespace).sku_stock(sku_id)
    await checkout(client, settings, who, sku_id)  # creates the stock key
    left = await redis.get(stock_key)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"coupons": ["x"]}, 422, "invalid_request"),
        ({"coupons": [0]}, 422, "invalid_request"),
        ({"coupons": [mine, mine]}, 422, "invalid_request"),
        ({"coupons": [1, 2, 3, 4, 5, 6]}, 422, "invalid_request"),
        ({"points": -1}, 422, "invalid_request"),
        ({"points": 1.5}, 422, "invalid_request"),
        ({"points": 2501}, 422, "points_invalid"),  # more than half the goods
        ({"coupons": [theirs]}, 422, "coupon_invalid"),
        ({"coupons": [10**12]}, 422, "coupon_invalid"),
        ({"coupons": [mine]}, 422, "coupon_not_applicable"),
    ]
    for extra, status, code in cases:
        got, body = await checkout(client, settings, who, sku_id, **extra)
        assert (got, body["error"]["code"]) == (status, code), extra
    assert await redis.get(stock_key) == left
    assert await coupon_state(pg, mine) == ("available", None, 0)
    assert await coupon_state(pg, theirs) == ("available", None, 0)
    assert await ledger_matches_balance(pg, who) == 10000
    assert await redis.get(Keys(settings.namespace).checkout.points_reserved(who)) is None
