"""lua/reserve.lua on real Redis: all or nothing, replays, and heavy overlapping concurrency."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import orjson
from redis.asyncio import Redis

from mall.autopipe import ScriptPipe
from mall.keys import Keys, make_checkout_order_id
from mall.lua import read_script
from mall.settings import Settings

ACCEPTED, REPLAY, SHORT, REUSED = 0, 1, 2, 7


def call_args(keys: Keys, user: str, lines: list[tuple[int, int, int]], fp: str = "",
              idem: str | None = None) -> tuple[list[str], list[object], str]:
    """lines: (sku id, qty, units to start from)."""
    order_id = make_checkout_order_id(uuid.uuid4().hex)
    order = orjson.dumps({"order_id": order_id, "user_id": user,
                          "items": [{"sku_id": s, "qty": q, "price": 1} for s, q, _ in lines]})
    script_keys = [keys.checkout.idempotency(user, idem or "-"),
                   keys.checkout.order_view(order_id), keys.checkout.outbox,
                   *(keys.sku_stock(s) for s, _, _ in lines)]
    args: list[object] = [fp, order_id, order, 60]
    for _, qty, start in lines:
        args += [qty, start]
    return script_keys, args, order_id


def skus(n: int) -> list[int]:
    base = random.randrange(10**9, 2 * 10**9)
    return [base + i for i in range(n)]


async def test_all_or_nothing(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    a, b = skus(2)
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        script_keys, args, _ = call_args(keys, "u1", [(a, 2, 5), (b, 3, 2)])
        code, line, left = await pipe.call(script_keys, args)
        assert (code, line, left) == (SHORT, 2, 2)
        assert int(await redis.get(keys.sku_stock(a))) == 5  # created, nothing held
        assert int(await redis.get(keys.sku_stock(b))) == 2
        script_keys, args, order_id = call_args(keys, "u1", [(a, 2, 5), (b, 2, 2)])
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
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    try:
        k1, a1, first = call_args(keys, "u2", [(a, 1, 3)], fp="f1", idem="click")
        assert (await pipe.call(k1, a1))[0] == ACCEPTED
        k2, a2, _ = call_args(keys, "u2", [(a, 1, 3)], fp="f1", idem="click")
        assert await pipe.call(k2, a2) == [REPLAY, first.encode()]
        k3, a3, _ = call_args(keys, "u2", [(a, 2, 3)], fp="f2", idem="click")
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
    pipe = ScriptPipe(settings.redis_url, read_script("reserve"))
    baskets = []
    for _ in range(1500):
        chosen = random.sample(pool_skus, random.randint(1, 4))
        baskets.append([(s, random.randint(1, 3), start[s]) for s in sorted(chosen)])
    try:
        calls = [pipe.call(*call_args(keys, f"u{i}", lines)[:2]) for i, lines in
                 enumerate(baskets)]
        replies = await asyncio.gather(*calls)
    finally:
        await pipe.aclose()
    taken: Counter[int] = Counter()
    for lines, reply in zip(baskets, replies, strict=True):
        if reply[0] == ACCEPTED:
            for sku, qty, _ in lines:
                taken[sku] += qty
        else:
            assert reply[0] == SHORT
    for sku in pool_skus:
        left = int(await redis.get(keys.sku_stock(sku)))
        assert left >= 0
        assert left == start[sku] - taken[sku], "a rejected basket held some units"
    assert sum(1 for r in replies if r[0] == ACCEPTED) > 10
