"""Offline evaluation of the recommendations: hit rate at 10 against a popularity baseline.

    python -m bench.recs_eval --users 2000 --orders 20000 --seed 11

Generates an order history with structure (a seeded RNG): categories of products whose
popularity falls off with rank, users who prefer a few categories, and bundles of products
bought together. Each user's last order is held out; the rest is written to a throwaway
database and namespace and run through the same incremental builder and the same user
recommendation code that serve the API. A held-out order is a hit when at least one of its
products is among the user's top 10. The baseline recommends the overall best sellers to
everyone. The database and the namespace's Redis keys are removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from mall.migrate import drop_database, migrate
from mall.settings import Settings
from recommendations import serve
from recommendations.build import RecsBuilder
from recommendations.keys import RecsKeys

INSERT_CATEGORIES = """
INSERT INTO categories (name)
SELECT name FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) ORDER BY n
RETURNING id, name
"""
INSERT_PRODUCTS = """
INSERT INTO products (name, category_id, published)
SELECT name, category_id, published
FROM unnest($1::text[], $2::bigint[], $3::bool[]) AS t(name, category_id, published)
RETURNING id, name
"""
INSERT_SKUS = """
INSERT INTO skus (product_id, price, stock)
SELECT product_id, price, 1000000
FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS t(product_id, price, n)
ORDER BY n
RETURNING id, product_id
"""
SKUS_PER_PRODUCT = 2  # an order may hold two SKUs of one product: it still counts once
PRICE = 1_000


@dataclass(frozen=True, slots=True)
class GeneratedOrder:
    user: int
    at: datetime
    products: tuple[int, ...]  # indexes into History.categories_of


@dataclass(slots=True)
class History:
    categories: int
    categories_of: list[int]  # product index -> category index
    orders: list[GeneratedOrder] = field(default_factory=list)

    def split_last(self) -> tuple[list[GeneratedOrder], dict[int, GeneratedOrder]]:
        """Every user's last order held out (users with at least two orders) and the rest."""
        by_user: dict[int, list[GeneratedOrder]] = {}
        for order in self.orders:
            by_user.setdefault(order.user, []).append(order)
        held_out: dict[int, GeneratedOrder] = {}
        train: list[GeneratedOrder] = []
        for user, orders in by_user.items():
            orders.sort(key=lambda o: o.at)
            if len(orders) >= 2:
                held_out[user] = orders[-1]
                orders = orders[:-1]
            train.extend(orders)
        train.sort(key=lambda o: o.at)
        return train, held_out


def _weighted(rng: random.Random, items: Sequence[int], weights: Sequence[float]) -> int:
    return rng.choices(items, weights)[0]


def generate(seed: int, users: int, orders: int, categories: int = 20,
             per_category: int = 50, bundles: int = 200, days: int = 28) -> History:
    rng = random.Random(seed)
    products = categories * per_category
    history = History(categories, [p // per_category for p in range(products)])
    in_category = [list(range(c * per_category, (c + 1) * per_category))
                   for c in range(categories)]
    rank_weight = [1 / (r + 1) ** 0.8 for r in range(per_category)]
    all_bundles: list[tuple[int, ...]] = []
    bundles_in: list[list[int]] = [[] for _ in range(categories)]
    for b in range(bundles):
        home = rng.randrange(categories)
        size = rng.choice((2, 3, 3, 4))
        members = set(rng.sample(in_category[home], size))
        if rng.random() < 0.3:  # some bundles cross into another category
            members.add(rng.choice(in_category[rng.randrange(categories)]))
        all_bundles.append(tuple(sorted(members)))
        bundles_in[home].append(b)
    likes = [rng.sample(range(categories), 2) for _ in range(users)]
    favourite_bundles = [
        rng.sample([b for c in likes[u] for b in bundles_in[c]] or [0], k=1) for u in range(users)
    ]
    start = datetime.now(UTC) - timedelta(days=days)
    for _ in range(orders):
        user = rng.randrange(users)
        picked: set[int] = set()
        if rng.random() < 0.45:
            bundle = all_bundles[rng.choice(favourite_bundles[user]) if rng.random() < 0.6
                                 else rng.choice([b for c in likes[user] for b in bundles_in[c]]
                                                 or [0])]
            picked.update(p for p in bundle if rng.random() < 0.75)
            if len(picked) < 2:
                picked.update(rng.sample(bundle, 2))
        for _ in range(rng.choice((0, 1, 1, 2)) if picked else rng.choice((1, 1, 2, 3))):
            category = rng.choice(likes[user]) if rng.random() < 0.85 \
                else rng.randrange(categories)
            picked.add(_weighted(rng, in_category[category], rank_weight))
        at = start + timedelta(seconds=rng.uniform(0, days * 86_400))
        history.orders.append(GeneratedOrder(user, at, tuple(sorted(picked))))
    return history


@dataclass(slots=True)
class Loaded:
    """Database ids of a history loaded by `load`."""

    tag: str
    product_ids: list[int]
    category_ids: list[int]
    skus_of: dict[int, list[int]]  # product id -> its SKU ids
    order_ids: list[str] = field(default_factory=list)

    def user_id(self, user: int) -> str:
        return f"{self.tag}u{user}"


async def load_catalog(conn: asyncpg.Connection, history: History, tag: str,
                       unpublished: frozenset[int] = frozenset()) -> Loaded:
    """Categories, products (indexes in `unpublished` not published) and their SKUs."""
    rows = await conn.fetch(INSERT_CATEGORIES, [f"{tag} c{c}" for c in range(history.categories)])
    category_id = {r["name"]: r["id"] for r in rows}
    categories = [category_id[f"{tag} c{c}"] for c in range(history.categories)]
    count = len(history.categories_of)
    rows = await conn.fetch(INSERT_PRODUCTS, [f"{tag} p{p}" for p in range(count)],
                            [categories[c] for c in history.categories_of],
                            [p not in unpublished for p in range(count)])
    product_id = {r["name"]: r["id"] for r in rows}
    products = [product_id[f"{tag} p{p}"] for p in range(count)]
    rows = await conn.fetch(INSERT_SKUS, [p for p in products for _ in range(SKUS_PER_PRODUCT)],
                            [PRICE] * (count * SKUS_PER_PRODUCT))
    skus_of: dict[int, list[int]] = {}
    for r in rows:
        skus_of.setdefault(r["product_id"], []).append(r["id"])
    return Loaded(tag, products, categories, skus_of)


async def load_orders(conn: asyncpg.Connection, loaded: Loaded, orders: Sequence[GeneratedOrder],
                      rng: random.Random, status: str = "paid") -> list[str]:
    """Write orders (COPY); a product sometimes appears as both its SKUs. Their ids."""
    order_rows, item_rows, ids = [], [], []
    for order in orders:
        order_id = f"{loaded.tag}-{uuid.uuid4().hex}"
        lines = []
        for p in order.products:
            skus = loaded.skus_of[loaded.product_ids[p]]
            lines.extend(skus if rng.random() < 0.1 else skus[:1])
        order_rows.append((order_id, loaded.user_id(order.user), status, PRICE * len(lines),
                           order.at))
        item_rows.extend((order_id, sku, 1, PRICE) for sku in lines)
        ids.append(order_id)
    async with conn.transaction():
        await conn.copy_records_to_table(
            "orders", records=order_rows,
            columns=["order_id", "user_id", "status", "total", "created_at"])
        await conn.copy_records_to_table(
            "order_items", records=item_rows, columns=["order_id", "sku_id", "qty", "price"])
    loaded.order_ids.extend(ids)
    return ids


@dataclass(frozen=True, slots=True)
class Outcome:
    users: int
    recs_hits: int
    popular_hits: int
    refresh_s: list[float]
    recs_request_ms: float
    repeat_only: int  # held-out orders made only of products the user had bought before


async def evaluate(pool: asyncpg.Pool, redis: Redis, keys: RecsKeys, history: History,
                   loaded: Loaded, held_out: dict[int, GeneratedOrder],
                   concurrency: int = 8) -> tuple[int, int, float]:
    """(hits of the recommender, hits of the popularity baseline, mean ms per user)."""
    baseline = {item["id"] for item in await serve.popular(pool, redis, keys, 10)}
    hits = popular_hits = 0
    gate = asyncio.Semaphore(concurrency)

    async def one(user: int, order: GeneratedOrder) -> tuple[bool, bool]:
        wanted = {loaded.product_ids[p] for p in order.products}
        async with gate:
            items = await serve.for_user(pool, redis, keys, f"{keys.namespace}:nocart",
                                         loaded.user_id(user), 10)
        return bool(wanted & {i["id"] for i in items}), bool(wanted & baseline)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(u, o) for u, o in held_out.items()))
    elapsed = time.perf_counter() - started
    for hit, popular_hit in results:
        hits += hit
        popular_hits += popular_hit
    return hits, popular_hits, elapsed * 1000 * concurrency / max(1, len(held_out))


async def drop_keys(redis: Redis, namespace: str) -> None:
    async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
        await redis.delete(key)


async def run(args: argparse.Namespace) -> Outcome:
    base = Settings.from_env()
    tag = uuid.uuid4().hex[:8]
    url = base.database_url.rsplit("/", 1)[0] + f"/mall_recs_eval_{tag}"
    namespace = f"recseval_{tag}"
    history = generate(args.seed, args.users, args.orders)
    train, held_out = history.split_last()
    redis = Redis.from_url(base.redis_url)
    try:
        await migrate(url)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=8)
        try:
            keys = RecsKeys(namespace)
            builder = RecsBuilder(pool, redis, keys, settle_s=0)
            rng = random.Random(args.seed)
            async with pool.acquire() as conn:
                loaded = await load_catalog(conn, history, "ev")
            half = len(train) // 2
            timings = []
            for part in (train[:half], train[half:]):  # two incremental refreshes
                async with pool.acquire() as conn:
                    await load_orders(conn, loaded, part, rng)
                started = time.perf_counter()
                if await builder.refresh() is None:
                    raise RuntimeError("the refresh lock of a fresh namespace was taken")
                timings.append(time.perf_counter() - started)
            hits, popular_hits, ms = await evaluate(pool, redis, keys, history, loaded, held_out)
        finally:
            await pool.close()
    finally:
        await drop_keys(redis, namespace)
        await redis.aclose()
        await drop_database(url)
    bought: dict[int, set[int]] = {}
    for order in train:
        bought.setdefault(order.user, set()).update(order.products)
    repeat_only = sum(1 for u, o in held_out.items() if set(o.products) <= bought.get(u, set()))
    return Outcome(len(held_out), hits, popular_hits, timings, ms, repeat_only)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.perf_counter()
    outcome = asyncio.run(run(args))
    share = 100 / max(1, outcome.users)
    print(f"users evaluated   {outcome.users} (each one's last order held out)")
    print(f"hit rate@10       recommender {outcome.recs_hits * share:.1f}% "
          f"({outcome.recs_hits}), popularity baseline {outcome.popular_hits * share:.1f}% "
          f"({outcome.popular_hits})")
    print(f"repeat-only       {outcome.repeat_only} held-out orders hold only products the "
          "user bought before (recommendations leave those out)")
    print("refresh seconds   " + ", ".join(f"{s:.2f}" for s in outcome.refresh_s)
          + " (first half of the training orders, then the second)")
    print(f"per user          {outcome.recs_request_ms:.1f} ms (8 at a time)")
    print(f"total             {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
