"""A flash sale split into four stock shards on a three-master Redis Cluster, bought through
the admission service itself (the cluster script pipe, transfers between shards on different
masters): never oversold, the per-user limit exact, sold out only when every shard is empty."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis.asyncio.cluster import RedisCluster

from mall.cluster_pipe import ClusterScriptPipe
from mall.keys import Keys, parse_sale_order_id
from mall.lua import read_script
from mall.settings import Settings
from seckill.admission import AdmissionService, Outcome, PurchaseRequest
from seckill.campaigns import Campaigns
from seckill.shards import ShardedStock, home_shard
from seckill.soldout import SoldOutFlags
from tests.cluster.conftest import IN_FLIGHT
from tests.stack import unique_namespace

SHARDS = 4
STOCK = 100
LIMIT = 2
USERS = 400


def spread_sale(keys: Keys, cluster: RedisCluster) -> int:
    """A sale id whose four shards sit on all three masters."""
    for sale_id in range(1, 10_000):
        nodes = {cluster.get_node_from_key(k.meta).name
                 for k in keys.sale_shards(sale_id, SHARDS)}
        if len(nodes) == 3:
            return sale_id
    raise AssertionError("no sale id spreads over the three masters")


async def test_a_sharded_sale_on_the_cluster(cluster: RedisCluster,
                                            cluster_ports: list[int]) -> None:
    url = f"redis://127.0.0.1:{cluster_ports[0]}/0"
    settings = Settings.from_env().with_(namespace=unique_namespace("cs"), redis_url=url,
                                         rate_limit_user=1_000_000, rate_limit_ip=1_000_000)
    keys = Keys(settings.namespace)
    shards = ShardedStock(cluster, keys)
    pipe = ClusterScriptPipe(url, read_script("admit"))
    flags = SoldOutFlags(cluster, keys, shards)
    service = AdmissionService(pipe, keys, flags, settings, shards)
    campaigns = Campaigns(None, cluster, keys, shards)  # type: ignore[arg-type]
    sale_id = spread_sale(keys, cluster)
    now = datetime.now(UTC)
    await campaigns.load_into_redis(sale_id, 5, 100, STOCK, LIMIT, now - timedelta(seconds=5),
                                    now + timedelta(hours=1), shards=SHARDS)
    try:
        rng = random.Random(3)
        clicks = [(f"cu{u}", rng.choice((1, 2))) for u in range(USERS) for _ in range(3)]
        rng.shuffle(clicks)
        gate = asyncio.Semaphore(IN_FLIGHT // 2)

        async def click(user: str, qty: int) -> Any:
            async with gate:
                return await service.admit(PurchaseRequest(sale_id, user, qty, None))

        results = await asyncio.gather(*(click(u, q) for u, q in clicks))
        assert set(pipe.nodes()) == {f"127.0.0.1:{p}" for p in cluster_ports}
        outcomes = Counter(r.outcome for r in results)
        assert set(outcomes) <= {Outcome.ACCEPTED, Outcome.SOLD_OUT, Outcome.LIMIT_REACHED}
        held: dict[str, int] = defaultdict(int)
        accepted = []
        for (user, qty), r in zip(clicks, results, strict=True):
            if r.outcome is Outcome.ACCEPTED:
                held[user] += qty
                accepted.append(r.order_id)
                assert parse_sale_order_id(r.order_id) == (sale_id, home_shard(user, SHARDS))
        assert sum(held.values()) == STOCK, "oversold or undersold"
        assert max(held.values()) <= LIMIT
        for k in keys.sale_shards(sale_id, SHARDS):
            assert int(await cluster.get(k.stock) or 0) == 0
            assert await cluster.hgetall(k.transfers_out) == {}
        assert await shards.remaining(sale_id) == 0
        queued = []
        buyers: dict[str, int] = {}
        for k in keys.sale_shards(sale_id, SHARDS):
            entries = await cluster.xrange(k.outbox)
            queued += [orjson.loads(f[b"o"])["order_id"] for _, f in entries]
            shard_buyers = await cluster.hgetall(k.buyers)
            buyers.update({u.decode(): int(n) for u, n in shard_buyers.items()})
        assert sorted(queued) == sorted(accepted)
        assert buyers == dict(held)
        # Sold out everywhere: a newcomer of every home shard is refused.
        newcomers = {home_shard(f"late{i}", SHARDS): f"late{i}" for i in range(200)}
        for user in newcomers.values():
            late = await service.admit(PurchaseRequest(sale_id, user, 1, None))
            assert late.outcome is Outcome.SOLD_OUT
    finally:
        await flags.aclose()
        await pipe.aclose()
