"""lua/reserve.lua on real Redis: all or nothing, replays, and heavy overlapping concurrency."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import orjson
from redis.asyncio import Redis

from checkout.reservation import PointsSpend, Reservation
from mall.autopipe import ScriptPipe
from mall.keys import Keys, make_checkout_order_id
from mall.lua import read_script
from mall.settings import Settings

ACCEPTED, REPLAY, SHORT, NO_POINTS, COUPON_USED, NO_KEY, REUSED = 0, 1, 2, 3, 4, 5, 7


def call_args(keys: Keys, user: str, lines: list[tuple[int, int]], fp: str = "",
              idem: str | None = None, coupons: list[tuple[int, int]] | None = None,
              points: PointsSpend | None = None) -> tuple[list[str], list[object], str]:
    """lines: (sku id, qty); coupons: (user coupon id, times returned)."""
    order_id = make_checkout_order_id(uuid.uuid4().hex)
    order = orjson.dumps({"order_id": order_id, "user_id": user,
                          "items": [{"sku_id": s, "qty": q, "price": 1} for s, q in lines]})
    script_keys, args = Reservation(user, order_id, order, 60, lines, coupons or [], points,
                                    idem, fp).call(keys)
    return script_keys, args, order_id


def skus(n: int) -> list[int]:
    base = random.randrange(10**9, 2 * 10**9)
    return [base + i for i in range(n)]


async def stock(redis: Redis, keys: Keys, units: dict[int, int]) -> None:
    """What lua/stock_init.lua would have created for these SKUs."""
    for sku, n in units.items():
        await redis.set(keys.sku_stock(sku), n)


async def test_a_missing_stock_key_holds_nothing_and_creates_nothing(
    redis: Redis, settings: Settings
) -> None:
    keys = Keys(settings.namespace)
    a, b = skus(2)
    coupon = random.randrange(10**9, 2 * 10**9)
    await stock(redis, keys, {a: 5})
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        script_keys, args, order_id = call_args(keys, "u0", [(a, 1), (b, 1)], fp="f",
                                                idem="k", coupons=[(coupon, 0)])
        assert await pipe.call(script_keys, args) == [NO_KEY, 2]
        assert await redis.get(keys.sku_stock(b)) is None  # never made up from a stale number
        assert int(await redis.get(keys.sku_stock(a))) == 5
        assert await redis.get(keys.checkout.coupon_uses(coupon)) is None
        assert await redis.get(keys.checkout.idempotency("u0", "k")) is None
        assert await redis.get(keys.checkout.order_view(order_id)) is None
        assert await redis.xlen(keys.checkout.outbox) == 0
    finally:
        await pipe.aclose()


async def test_all_or_nothing(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    a, b = skus(2)
    await stock(redis, keys, {a: 5, b: 2})
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        script_keys, args, _ = call_args(keys, "u1", [(a, 2), (b, 3)])
        code, line, left = await pipe.call(script_keys, args)
        assert (code, line, left) == (SHORT, 2, 2)
        assert int(await redis.get(keys.sku_stock(a))) == 5  # nothing held
        assert int(await redis.get(keys.sku_stock(b))) == 2
        script_keys, args, order_id = call_args(keys, "u1", [(a, 2), (b, 2)])
        assert await pipe.call(script_keys, args) == [ACCEPTED, order_id.encode()]
        assert int(await redis.get(keys.sku_stock(a))) == 3
        assert int(await redis.get(keys.sku_stock(b))) == 0
        view = orjson.loads(await redis.get(keys.checkout.order_view(order_id)))
        assert view["order_id"] == order_id
    finally:
        await pipe.aclose()


async def test_replay_and_reuse(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    (a,) = skus(1)
    await stock(redis, keys, {a: 3})
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        k1, a1, first = call_args(keys, "u2", [(a, 1)], fp="f1", idem="click")
        assert (await pipe.call(k1, a1))[0] == ACCEPTED
        k2, a2, _ = call_args(keys, "u2", [(a, 1)], fp="f1", idem="click")
        assert await pipe.call(k2, a2) == [REPLAY, first.encode()]
        k3, a3, _ = call_args(keys, "u2", [(a, 2)], fp="f2", idem="click")
        assert (await pipe.call(k3, a3))[0] == REUSED
        assert int(await redis.get(keys.sku_stock(a))) == 2
    finally:
        await pipe.aclose()


async def test_overlapping_baskets_never_oversell_or_hold_partially(
    redis: Redis, settings: Settings
) -> None:
    keys = Keys(settings.namespace)
    pool_skus = skus(6)
    start = {s: 40 for s in pool_skus}
    await stock(redis, keys, start)
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    baskets = []
    for _ in range(1500):
        chosen = random.sample(pool_skus, random.randint(1, 4))
        baskets.append([(s, random.randint(1, 3)) for s in sorted(chosen)])
    try:
        calls = [pipe.call(*call_args(keys, f"u{i}", lines)[:2]) for i, lines in
                 enumerate(baskets)]
        replies = await asyncio.gather(*calls)
    finally:
        await pipe.aclose()
    taken: Counter[int] = Counter()
    for lines, reply in zip(baskets, replies, strict=True):
        if reply[0] == ACCEPTED:
            for sku, qty in lines:
                taken[sku] += qty
        else:
            assert reply[0] == SHORT
    for sku in pool_skus:
        left = int(await redis.get(keys.sku_stock(sku)))
        assert left >= 0
        assert left == start[sku] - taken[sku], "a rejected basket held some units"
    assert sum(1 for r in replies if r[0] == ACCEPTED) > 10


async def test_a_coupon_use_is_reserved_once_until_given_back(
    redis: Redis, settings: Settings
) -> None:
    keys = Keys(settings.namespace)
    (a,) = skus(1)
    coupon = random.randrange(10**9, 2 * 10**9)
    await stock(redis, keys, {a: 500})
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        # 200 concurrent orders race for one coupon: exactly one gets it, and the losers hold
        # no stock.
        calls = [pipe.call(*call_args(keys, "cu", [(a, 1)], coupons=[(coupon, 0)])[:2])
                 for _ in range(200)]
        replies = await asyncio.gather(*calls)
        codes = Counter(int(r[0]) for r in replies)
        assert codes == {ACCEPTED: 1, COUPON_USED: 199}
        assert int(await redis.get(keys.sku_stock(a))) == 499
        assert int(await redis.get(keys.checkout.coupon_uses(coupon))) == 1
        # the order was cancelled before payment: returned once, usable once more
        k, args, _ = call_args(keys, "cu", [(a, 1)], coupons=[(coupon, 1)])
        assert (await pipe.call(k, args))[0] == ACCEPTED
        k, args, _ = call_args(keys, "cu", [(a, 1)], coupons=[(coupon, 1)])
        assert await pipe.call(k, args) == [COUPON_USED, 1]
        # a stale reader that still sees returned_count 0 cannot use it either
        k, args, _ = call_args(keys, "cu", [(a, 1)], coupons=[(coupon, 0)])
        assert (await pipe.call(k, args))[0] == COUPON_USED
        assert int(await redis.get(keys.sku_stock(a))) == 498
    finally:
        await pipe.aclose()


async def test_points_never_spent_twice_under_concurrency(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    (a,) = skus(1)
    user = f"pts{random.randrange(10**9)}"
    await stock(redis, keys, {a: 1000})
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        # balance 1,000 of which 200 were already redeemed and persisted; 300 orders of 30
        spend = PointsSpend(wanted=30, balance=1000, redeemed=200)
        calls = [pipe.call(*call_args(keys, user, [(a, 1)], points=spend)[:2])
                 for _ in range(300)]
        replies = await asyncio.gather(*calls)
        accepted = sum(1 for r in replies if r[0] == ACCEPTED)
        assert accepted == 1000 // 30
        assert all(r == [NO_POINTS, 1000 - 30 * accepted] for r in replies if r[0] != ACCEPTED)
        assert int(await redis.get(keys.checkout.points_reserved(user))) == 200 + 30 * accepted
        assert int(await redis.get(keys.sku_stock(a))) == 1000 - accepted
        # the writer persisted them all: PostgreSQL now says balance 10, redeemed 1,190
        persisted = PointsSpend(wanted=10, balance=1000 - 30 * accepted,
                                redeemed=200 + 30 * accepted)
        k, args, _ = call_args(keys, user, [(a, 1)], points=persisted)
        assert (await pipe.call(k, args))[0] == ACCEPTED
        k, args, _ = call_args(keys, user, [(a, 1)], points=persisted)
        assert (await pipe.call(k, args))[0] == NO_POINTS
    finally:
        await pipe.aclose()


async def test_short_stock_holds_no_coupon_and_no_points(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    (a,) = skus(1)
    coupon = random.randrange(10**9, 2 * 10**9)
    user = f"pts{random.randrange(10**9)}"
    await stock(redis, keys, {a: 2})
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        k, args, _ = call_args(keys, user, [(a, 5)], coupons=[(coupon, 0)],
                               points=PointsSpend(50, 100, 0))
        assert await pipe.call(k, args) == [SHORT, 1, 2]
        assert await redis.get(keys.checkout.coupon_uses(coupon)) is None
        assert await redis.get(keys.checkout.points_reserved(user)) is None
        k, args, _ = call_args(keys, user, [(a, 1)], coupons=[(coupon, 0)],
                               points=PointsSpend(500, 100, 0))
        assert await pipe.call(k, args) == [NO_POINTS, 100]
        assert await redis.get(keys.checkout.coupon_uses(coupon)) is None
        assert int(await redis.get(keys.sku_stock(a))) == 2
    finally:
        await pipe.aclose()
