"""lua/admit.lua and lua/init_sale.lua run directly on real Redis: every return code."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import orjson
import pytest
from redis.asyncio import Redis

from mall.autopipe import ScriptPipe
from mall.keys import RELAY_GROUP, Keys, make_order_id
from mall.lua import Script, read_script
from mall.settings import Settings

ACCEPTED, REPLAY, SOLD_OUT, LIMIT, NOT_STARTED, ENDED, NO_SALE, REUSED = range(8)
_ids = itertools.count(1_000_000)


class Sale:
    def __init__(self, redis: Redis, keys: Keys, sale_id: int) -> None:
        self.redis = redis
        self.keys = keys
        self.id = sale_id
        self.k = keys.sale(sale_id)
        self.admit_script = Script(redis, "admit")

    async def admit(self, user: str, qty: int = 1, idem: str | None = None,
                    fingerprint: str | None = None) -> tuple[int, str, int]:
        order_id = make_order_id(self.id, uuid.uuid4().hex)
        fp = fingerprint if fingerprint is not None else (f"qty={qty}" if idem else "")
        code, oid, remaining = await self.admit_script(
            self.k.admission(user, idem, order_id), [user, qty, order_id, fp, 60]
        )
        return int(code), oid.decode(), int(remaining)

    async def outbox(self) -> list[dict[str, object]]:
        entries = await self.redis.xrange(self.k.outbox)
        return [orjson.loads(fields[b"o"]) for _, fields in entries]

    async def remaining(self) -> int:
        return int(await self.redis.get(self.k.stock))


async def make_sale(redis: Redis, settings: Settings, stock: int = 5, limit: int = 1,
                    start_in_s: float = -10, length_s: float = 3600, price: int = 990) -> Sale:
    keys = Keys(settings.namespace)
    sale = Sale(redis, keys, next(_ids))
    starts = int((time.time() + start_in_s) * 1000)
    await Script(redis, "init_sale")(
        sale.k.init(),
        [sale.id, 77, price, starts, starts + int(length_s * 1000), limit, stock, RELAY_GROUP],
    )
    return sale


async def test_accepts_and_writes_order_view_and_outbox(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, price=990)
    code, order_id, remaining = await sale.admit("alice", qty=1)
    assert (code, remaining) == (ACCEPTED, 4)
    [order] = await sale.outbox()
    assert order["order_id"] == order_id
    assert order == {
        "order_id": order_id, "user_id": "alice", "sale_id": sale.id, "sku_id": 77, "qty": 1,
        "price": 990, "total": 990, "accepted_at_ms": order["accepted_at_ms"],
    }
    assert abs(int(order["accepted_at_ms"]) - time.time() * 1000) < 5000  # type: ignore[arg-type]
    view = orjson.loads(await redis.get(sale.k.order_view(order_id)))
    assert view == order
    assert int(await redis.hget(sale.k.buyers, "alice")) == 1


async def test_unknown_sale(redis: Redis, settings: Settings) -> None:
    sale = Sale(redis, Keys(settings.namespace), next(_ids))
    assert (await sale.admit("alice"))[0] == NO_SALE
    assert await redis.exists(sale.k.outbox, sale.k.stock, sale.k.buyers) == 0


async def test_not_started_and_ended_change_nothing(redis: Redis, settings: Settings) -> None:
    early = await make_sale(redis, settings, start_in_s=60)
    late = await make_sale(redis, settings, start_in_s=-120, length_s=60)
    assert (await early.admit("alice"))[0] == NOT_STARTED
    assert (await late.admit("alice"))[0] == ENDED
    for sale in (early, late):
        assert await sale.remaining() == 5
        assert await sale.outbox() == []
        assert await redis.hlen(sale.k.buyers) == 0


async def test_sold_out_including_partial_quantity(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=3, limit=10)
    assert (await sale.admit("a", qty=2))[::2] == (ACCEPTED, 1)
    code, _, remaining = await sale.admit("b", qty=2)
    assert (code, remaining) == (SOLD_OUT, 1)
    assert (await sale.admit("b", qty=1))[::2] == (ACCEPTED, 0)
    assert (await sale.admit("c", qty=1))[::2] == (SOLD_OUT, 0)
    assert await sale.remaining() == 0
    assert len(await sale.outbox()) == 2


async def test_duplicate_call_without_key_hits_the_limit(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=10, limit=1)
    assert (await sale.admit("alice"))[0] == ACCEPTED
    assert (await sale.admit("alice"))[0] == LIMIT
    assert await sale.remaining() == 9
    assert len(await sale.outbox()) == 1


async def test_limit_counts_units_not_orders(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=10, limit=3)
    assert (await sale.admit("alice", qty=2))[0] == ACCEPTED
    assert (await sale.admit("alice", qty=2))[0] == LIMIT
    assert (await sale.admit("alice", qty=1))[0] == ACCEPTED
    assert (await sale.admit("alice", qty=1))[0] == LIMIT
    assert int(await redis.hget(sale.k.buyers, "alice")) == 3
    assert await sale.remaining() == 7


async def test_idempotent_replay_returns_first_order(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=1, limit=1)
    code, first, _ = await sale.admit("alice", idem="key-1")
    assert code == ACCEPTED
    # Replayed after the sale sold out: still the first answer, nothing deducted twice.
    for _ in range(3):
        code, again, remaining = await sale.admit("alice", idem="key-1")
        assert (code, again, remaining) == (REPLAY, first, 0)
    assert len(await sale.outbox()) == 1


async def test_same_key_other_body_is_rejected(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=5)
    assert (await sale.admit("alice", qty=1, idem="k"))[0] == ACCEPTED
    assert (await sale.admit("alice", qty=2, idem="k"))[0] == REUSED
    assert await sale.remaining() == 4
    assert len(await sale.outbox()) == 1


async def test_keys_are_per_user(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5, limit=1)
    _, a, _ = await sale.admit("alice", idem="same")
    code, b, _ = await sale.admit("bob", idem="same")
    assert code == ACCEPTED and a != b


async def test_init_is_idempotent_and_never_resets_stock(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=5)
    await sale.admit("alice")
    starts = int(time.time() * 1000) - 1000
    again = await Script(redis, "init_sale")(
        sale.k.init(), [sale.id, 77, 990, starts, starts + 10_000, 1, 5, RELAY_GROUP]
    )
    assert int(again) == 4
    groups = await redis.xinfo_groups(sale.k.outbox)
    assert [g["name"] for g in groups] == [RELAY_GROUP.encode()]


async def test_keys_of_one_sale_share_a_cluster_slot(settings: Settings) -> None:
    from redis.crc import key_slot

    k = Keys(settings.namespace).sale(42)
    keys = k.admission("alice", "idem", make_order_id(42, uuid.uuid4().hex)) + k.init()
    assert len({key_slot(key.encode()) for key in keys}) == 1


@pytest.mark.parametrize("stock,users,limit", [(50, 400, 1), (30, 40, 3)])
async def test_concurrent_pipelined_calls_never_oversell(
    redis: Redis, settings: Settings, stock: int, users: int, limit: int
) -> None:
    """Thousands of calls through the pipelining path, many per user, in random order."""
    sale = await make_sale(redis, settings, stock=stock, limit=limit)
    script = ScriptPipe(settings.redis_url, read_script("admit"))

    async def attempt(user: str) -> int:
        order_id = make_order_id(sale.id, uuid.uuid4().hex)
        code, _, _ = await script.call(sale.k.admission(user, None, order_id),
                                       [user, 1, order_id, "", 60])
        return int(code)

    calls = [attempt(f"u{i % users}") for i in range(users * 5)]
    codes = await asyncio.gather(*calls)
    await script.aclose()
    assert codes.count(ACCEPTED) == stock
    assert set(codes) <= {ACCEPTED, SOLD_OUT, LIMIT}
    assert await sale.remaining() == 0
    outbox = await sale.outbox()
    assert len(outbox) == stock
    per_user: dict[str, int] = {}
    for order in outbox:
        per_user[str(order["user_id"])] = per_user.get(str(order["user_id"]), 0) + 1
    assert max(per_user.values()) <= limit
    buyers = {k.decode(): int(v) for k, v in (await redis.hgetall(sale.k.buyers)).items()}
    assert buyers == per_user


async def test_release_gives_units_back_once(redis: Redis, settings: Settings) -> None:
    sale = await make_sale(redis, settings, stock=2, limit=2)
    code, order_id, _ = await sale.admit("alice", qty=2)
    assert code == ACCEPTED and await sale.remaining() == 0
    release = Script(redis, "release")
    keys = sale.k.release(order_id)
    assert [int(x) for x in await release(keys, ["alice", 2, 60])] == [1, 2]
    assert [int(x) for x in await release(keys, ["alice", 2, 60])] == [0, 2]
    assert await sale.remaining() == 2
    assert await redis.hget(sale.k.buyers, "alice") is None
    assert (await sale.admit("alice", qty=2))[0] == ACCEPTED  # she may buy again
