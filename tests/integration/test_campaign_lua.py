"""lua/sale_update.lua, lua/sale_close.lua and lua/sale_warm.lua on real Redis, with admit.lua."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import orjson
from redis.asyncio import Redis

from mall.autopipe import ScriptPipe
from mall.keys import RELAY_GROUP, Keys, make_order_id
from mall.lua import Script, read_script
from mall.settings import Settings

ACCEPTED, ENDED, NOT_STARTED = 0, 5, 4
_ids = itertools.count(2_000_000)


def now_ms() -> int:
    return int(time.time() * 1000)


async def load(redis: Redis, keys: Keys, sale_id: int, starts: int, stock: int, price: int = 100,
               limit: int = 1) -> None:
    await Script(redis, "init_sale")(
        keys.sale(sale_id).init(),
        [sale_id, 7, price, starts, starts + 3_600_000, limit, stock, RELAY_GROUP])


async def update(redis: Redis, keys: Keys, sale_id: int, starts: int, old_starts: int,
                 stock: int, price: int, limit: int = 1) -> int:
    code, _ = await Script(redis, "sale_update")(
        keys.sale(sale_id).init(),
        [sale_id, 7, price, starts, starts + 3_600_000, limit, stock, RELAY_GROUP, old_starts])
    return int(code)


async def admit(script: ScriptPipe, keys: Keys, sale_id: int, user: str) -> int:
    order_id = make_order_id(sale_id, uuid.uuid4().hex)
    code, _, _ = await script.call(keys.sale(sale_id).admission(user, None, order_id),
                                   [user, 1, order_id, "", 60])
    return int(code)


async def test_edits_racing_the_start_are_all_or_nothing(redis: Redis,
                                                         settings: Settings) -> None:
    """Admissions hammer a sale while edits replace its terms up to and past the start: every
    accepted order carries one complete version of the terms, the last one before the start."""
    keys = Keys(settings.namespace)
    sale_id = next(_ids)
    starts = now_ms() + 400
    versions = [(100 + n, 20 + n) for n in range(1, 1000)]  # (price, stock) edited together
    await load(redis, keys, sale_id, starts, stock=20, price=100)
    script = ScriptPipe(settings.redis_url, read_script("admit"))
    applied: list[tuple[int, int]] = []
    refused = 0

    async def edits() -> None:
        nonlocal refused
        for price, stock in versions:
            code = await update(redis, keys, sale_id, starts, starts, stock, price)
            if code == 0:
                applied.append((price, stock))
            else:
                refused += 1
            if now_ms() > starts + 200:
                return

    async def buyers(worker: int) -> list[int]:
        codes = []
        for n in itertools.count():
            codes.append(await admit(script, keys, sale_id, f"w{worker}-{n}"))
            if now_ms() > starts + 300:
                return codes
        return codes

    results = await asyncio.gather(edits(), *(buyers(w) for w in range(20)))
    await script.aclose()
    codes = [c for r in results[1:] for c in r]  # type: ignore[union-attr]
    assert applied and refused, "edits must have run on both sides of the start"
    price, stock = applied[-1]
    entries = await redis.xrange(keys.sale(sale_id).outbox)
    orders = [orjson.loads(f[b"o"]) for _, f in entries]
    assert len(orders) == codes.count(ACCEPTED) > 0
    assert {o["price"] for o in orders} == {price}
    assert len(orders) <= stock
    meta = await redis.hgetall(keys.sale(sale_id).meta)
    assert (int(meta[b"price"]), int(meta[b"stock"])) == (price, stock)
    assert int(await redis.get(keys.sale(sale_id).stock)) == stock - len(orders)


async def test_update_obeys_the_redis_clock_and_the_earlier_start(redis: Redis,
                                                                  settings: Settings) -> None:
    keys = Keys(settings.namespace)
    sale_id = next(_ids)
    await load(redis, keys, sale_id, now_ms() - 10, stock=5)
    before = await redis.hgetall(keys.sale(sale_id).meta)
    # PostgreSQL believes the start is ahead, Redis has already started the sale: refused.
    assert await update(redis, keys, sale_id, now_ms() + 60_000, now_ms() + 60_000, 9, 1) == 1
    assert await redis.hgetall(keys.sale(sale_id).meta) == before
    assert await redis.get(keys.sale(sale_id).stock) == b"5"


async def test_close_takes_the_unsold_units_once_and_ends_admission(
    redis: Redis, settings: Settings
) -> None:
    keys = Keys(settings.namespace)
    sale_id = next(_ids)
    k = keys.sale(sale_id)
    await load(redis, keys, sale_id, now_ms() - 1000, stock=5, limit=5)
    admit_script = Script(redis, "admit")
    order_id = make_order_id(sale_id, uuid.uuid4().hex)
    code, _, _ = await admit_script(k.admission("a", None, order_id), ["a", 2, order_id, "", 60])
    assert int(code) == ACCEPTED
    close = Script(redis, "sale_close")
    code, to_sku, ends_at = await close(k.init()[:2], [])
    assert (int(code), int(to_sku)) == (0, 3)
    assert int(ends_at) <= now_ms() and not await redis.exists(k.stock)
    again = await close(k.init()[:2], [])
    assert [int(again[0]), int(again[1])] == [1, 3]
    other = make_order_id(sale_id, uuid.uuid4().hex)
    code, _, _ = await admit_script(k.admission("b", None, other), ["b", 1, other, "", 60])
    assert int(code) == ENDED
    # The cancelled order's units come back to the sale, and the next close takes them.
    await Script(redis, "release")(k.release(order_id), ["a", 2, 60])
    assert [int(x) for x in (await close(k.init()[:2], []))[:2]] == [1, 5]
    assert [int(x) for x in (await close(k.init()[:2], []))[:2]] == [1, 5]
    # Neither warm-up nor an edit brings a closed sale back.
    warm = Script(redis, "sale_warm")
    starts = now_ms() + 60_000
    code, _ = await warm(k.init(), [sale_id, 7, 100, starts, starts + 1000, 1, 5, 5, RELAY_GROUP])
    assert int(code) == 1 and not await redis.exists(k.stock)
    assert await update(redis, keys, sale_id, starts, starts, 5, 100) == 2
    assert not await redis.exists(k.stock)


async def test_closing_before_the_start_answers_ended(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    sale_id = next(_ids)
    k = keys.sale(sale_id)
    await load(redis, keys, sale_id, now_ms() + 60_000, stock=3)
    code, to_sku, _ = await Script(redis, "sale_close")(k.init()[:2], [])
    assert (int(code), int(to_sku)) == (0, 3)
    order_id = make_order_id(sale_id, uuid.uuid4().hex)
    code, _, _ = await Script(redis, "admit")(k.admission("a", None, order_id),
                                             ["a", 1, order_id, "", 60])
    assert int(code) == ENDED


async def test_warm_never_resets_stock(redis: Redis, settings: Settings) -> None:
    keys = Keys(settings.namespace)
    sale_id = next(_ids)
    k = keys.sale(sale_id)
    warm = Script(redis, "sale_warm")
    starts = now_ms() - 1000
    args = [sale_id, 7, 100, starts, starts + 60_000, 2, 10, 10, RELAY_GROUP]
    assert [int(x) for x in await warm(k.init(), args)] == [0, 10]
    await redis.decrby(k.stock, 4)
    for _ in range(3):
        assert [int(x) for x in await warm(k.init(), args)] == [0, 6]
    assert int((await redis.hgetall(k.meta))[b"stock"]) == 10
    groups = await redis.xinfo_groups(k.outbox)
    assert [g["name"] for g in groups] == [RELAY_GROUP.encode()]
