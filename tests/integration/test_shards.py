"""Hot-SKU sharding on real Redis: a sale's stock split across K hash tags, buyers always in
their home shard, stock moved between shards by two-step transfers. The invariants: never more
units accepted than the stock, the per-user limit exact, sold out only when every shard is
empty, and a transfer cut short between its steps neither loses nor doubles units."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from mall.autopipe import ScriptPipe
from mall.keys import Keys, parse_sale_order_id
from mall.lua import Script, read_script
from mall.resources import make_redis
from mall.settings import Settings
from seckill.admission import AdmissionService, Outcome, PurchaseRequest
from seckill.campaigns import Campaigns
from seckill.shards import ShardedStock, home_shard, split
from seckill.soldout import SoldOutFlags

_next_sale = iter(range(5_000_000, 6_000_000))


class Harness:
    def __init__(self, redis: Redis, pg: asyncpg.Pool, settings: Settings) -> None:
        self.redis = redis
        self.keys = Keys(settings.namespace)
        self.shards = ShardedStock(redis, self.keys)
        self.campaigns = Campaigns(pg, redis, self.keys, self.shards)
        self.pipe = ScriptPipe(settings.redis_url, read_script("admit"))
        self.flags = SoldOutFlags(redis, self.keys, self.shards)
        self.service = AdmissionService(self.pipe, self.keys, self.flags, settings, self.shards)

    async def sale(self, stock: int, shards: int, per_user_limit: int = 1) -> int:
        sale_id = next(_next_sale)
        now = datetime.now(UTC)
        await self.campaigns.load_into_redis(sale_id, 1, 100, stock, per_user_limit,
                                             now - timedelta(minutes=1), now + timedelta(hours=1),
                                             shards=shards)
        return sale_id

    async def buy(self, sale_id: int, user: str, qty: int = 1, idem: str | None = None):
        return await self.service.admit(PurchaseRequest(sale_id, user, qty, idem))

    async def shard_stocks(self, sale_id: int, shards: int) -> list[int]:
        values = await self.redis.mget([k.stock for k in self.keys.sale_shards(sale_id, shards)])
        return [int(v or 0) for v in values]

    async def buyers(self, sale_id: int, shards: int) -> list[dict[str, int]]:
        found = []
        for k in self.keys.sale_shards(sale_id, shards):
            raw = await self.redis.hgetall(k.buyers)
            found.append({u.decode(): int(n) for u, n in raw.items()})
        return found

    async def outbox_orders(self, sale_id: int, shards: int) -> list[tuple[int, dict]]:
        orders = []
        for k in self.keys.sale_shards(sale_id, shards):
            for _, fields in await self.redis.xrange(k.outbox):
                orders.append((k.shard, orjson.loads(fields[b"o"])))
        return orders


@pytest.fixture
async def h(pg: asyncpg.Pool, settings: Settings) -> AsyncIterator[Harness]:
    redis = make_redis(settings)  # the serving processes' client (a blocking pool)
    harness = Harness(redis, pg, settings)
    yield harness
    await harness.flags.aclose()
    await harness.pipe.aclose()
    await redis.aclose()


def test_split_gives_every_unit_to_one_shard() -> None:
    assert split(10, 4) == [3, 3, 2, 2]
    assert split(4, 4) == [1, 1, 1, 1]
    assert sum(split(9_999_999, 16)) == 9_999_999
    users = [f"u{i}" for i in range(4000)]
    homes = Counter(home_shard(u, 4) for u in users)
    assert set(homes) == {0, 1, 2, 3} and min(homes.values()) > 800  # spread, not skewed
    assert all(home_shard(u, 1) == 0 for u in users[:50])


@pytest.mark.parametrize("shards", [2, 4, 7])
async def test_a_crowd_never_oversells_nor_passes_the_limit(h: Harness, shards: int) -> None:
    """600 buyers, limit 2 each, every one sending three racing requests of 1 or 2 units, for
    80 units in K shards. Exactly 80 units go, nobody holds more than 2, every buyer is counted
    in their home shard only, and the outboxes hold exactly the accepted orders."""
    stock, limit = 80, 2
    sale_id = await h.sale(stock, shards, per_user_limit=limit)
    rng = random.Random(shards)
    users = [f"crowd{shards}-{i}" for i in range(600)]
    asks = [(u, rng.choice((1, 2))) for u in users for _ in range(3)]
    rng.shuffle(asks)
    results = await asyncio.gather(*(h.buy(sale_id, u, q) for u, q in asks))
    accepted = [(u, q, r) for (u, q), r in zip(asks, results, strict=True)
                if r.outcome is Outcome.ACCEPTED]
    outcomes = Counter(r.outcome for r in results)
    assert set(outcomes) <= {Outcome.ACCEPTED, Outcome.SOLD_OUT, Outcome.LIMIT_REACHED}
    assert sum(q for _, q, _ in accepted) == stock
    held: dict[str, int] = defaultdict(int)
    for user, qty, result in accepted:
        held[user] += qty
        parsed = parse_sale_order_id(result.order_id)
        assert parsed == (sale_id, home_shard(user, shards))
    assert max(held.values()) <= limit
    assert await h.shard_stocks(sale_id, shards) == [0] * shards
    assert await h.shards.pending(sale_id, shards) == []
    assert await h.shards.remaining(sale_id) == 0
    per_shard = await h.buyers(sale_id, shards)
    for k, shard_buyers in enumerate(per_shard):
        assert all(home_shard(u, shards) == k for u in shard_buyers)
    assert {u: n for b in per_shard for u, n in b.items()} == dict(held)
    outbox = await h.outbox_orders(sale_id, shards)
    assert sorted(o["order_id"] for _, o in outbox) == sorted(r.order_id for *_, r in accepted)
    assert all(home_shard(o["user_id"], shards) == k for k, o in outbox)


async def test_a_buyer_whose_home_shard_is_empty_gets_a_siblings_unit(h: Harness) -> None:
    """Stock 4 in 4 shards: the buyers of one shard empty it; the next buyer of that shard is
    served by a transfer, and only when every shard is empty is the sale sold out."""
    shards = 4
    sale_id = await h.sale(4, shards)
    by_home: dict[int, list[str]] = defaultdict(list)
    for i in range(400):
        user = f"home-{uuid.uuid4().hex[:8]}-{i}"
        by_home[home_shard(user, shards)].append(user)
    first, second = by_home[0][:2]
    assert (await h.buy(sale_id, first)).outcome is Outcome.ACCEPTED
    assert (await h.shard_stocks(sale_id, shards))[0] == 0
    borrowed = await h.buy(sale_id, second)
    assert borrowed.outcome is Outcome.ACCEPTED
    assert sum(await h.shard_stocks(sale_id, shards)) == 2
    assert await h.shards.pending(sale_id, shards) == []
    # The last two units go to buyers of shard 0 as well; then everyone is refused.
    for user in by_home[0][2:4]:
        assert (await h.buy(sale_id, user)).outcome is Outcome.ACCEPTED
    for k in range(shards):
        assert (await h.buy(sale_id, by_home[k][10])).outcome is Outcome.SOLD_OUT
    assert await h.shards.remaining(sale_id) == 0


async def test_replays_of_an_idempotency_key_stay_in_the_home_shard(h: Harness) -> None:
    shards = 3
    sale_id = await h.sale(3, shards, per_user_limit=3)
    user = "replayer"
    first = await h.buy(sale_id, user, 2, idem="k-1")
    assert first.outcome is Outcome.ACCEPTED  # needs a transfer: each shard holds one unit
    again = await asyncio.gather(*(h.buy(sale_id, user, 2, idem="k-1") for _ in range(20)))
    assert {(a.outcome, a.order_id) for a in again} == {(Outcome.REPLAY, first.order_id)}
    assert await h.shards.remaining(sale_id) == 1


async def test_a_transfer_cut_between_its_steps_is_counted_and_finished_once(
        h: Harness) -> None:
    """The giver's step alone (a crash before the taker's): the units are in transfer, still
    part of the remaining stock; finishing it twice at once adds them once."""
    shards = 2
    sale_id = await h.sale(10, shards)
    giver, taker = h.keys.sale(sale_id, 1), h.keys.sale(sale_id, 0)
    give = Script(h.redis, "shard_give")
    units, left = await give([giver.stock, giver.transfers_out, giver.meta], ["cut-1", 0, 3, 1])
    assert (int(units), int(left)) == (3, 2)
    assert await h.shard_stocks(sale_id, shards) == [5, 2]
    assert await h.shards.remaining(sale_id) == 10  # the 3 units in transfer still count
    finished = await asyncio.gather(h.shards.finish_transfers(sale_id),
                                    h.shards.finish_transfers(sale_id))
    assert sum(finished) >= 1
    assert await h.shard_stocks(sale_id, shards) == [8, 2]
    assert await h.shards.pending(sale_id, shards) == []
    assert await h.shards.remaining(sale_id) == 10
    # Taken but not yet deleted by the giver (a crash after the second step): not counted
    # twice, and finishing it changes no stock.
    units, _ = await give([giver.stock, giver.transfers_out, giver.meta], ["cut-2", 0, 1, 1])
    take = Script(h.redis, "shard_take")
    await take([taker.stock, taker.transfers_in, taker.meta], ["cut-2", 1])
    assert await h.shards.remaining(sale_id) == 10
    await h.shards.finish_transfers(sale_id)
    assert await h.shard_stocks(sale_id, shards) == [9, 1]


async def test_a_return_goes_back_to_the_shard_that_sold(h: Harness) -> None:
    shards = 4
    sale_id = await h.sale(8, shards)
    result = await h.buy(sale_id, "returner")
    home = home_shard("returner", shards)
    release = Script(h.redis, "release")
    await release(h.keys.release_of(sale_id, result.order_id), ["returner", 1, 60])
    stocks = await h.shard_stocks(sale_id, shards)
    assert stocks[home] == split(8, shards)[home] and sum(stocks) == 8
    assert (await h.buyers(sale_id, shards))[home] == {}
    assert (await h.buy(sale_id, "returner")).outcome is Outcome.ACCEPTED


async def test_a_sale_loaded_before_shards_existed_sells_as_one_shard(h: Harness) -> None:
    sale_id = await h.sale(2, 1)
    await h.redis.hdel(h.keys.sale(sale_id).meta, "shards")  # as older code loaded it
    fresh = ShardedStock(h.redis, h.keys)
    assert await fresh.count(sale_id) == 1
    await h.redis.hset(h.keys.sale(sale_id).meta, "shards", 3)
    assert await fresh.count(sale_id) == 1  # read once: a sale's K never changes
    assert await fresh.count(next(_next_sale)) == 1  # unknown sale: one shard, not remembered
    service = AdmissionService(h.pipe, h.keys, h.flags, Settings.from_env().with_(
        namespace=h.keys.namespace), fresh)
    await h.redis.hdel(h.keys.sale(sale_id).meta, "shards")
    results = [await service.admit(PurchaseRequest(sale_id, f"old{i}", 1, None))
               for i in range(3)]
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED,
                                            Outcome.SOLD_OUT]
