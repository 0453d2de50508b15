"""Answering recommendation requests from Redis, with two small indexed PostgreSQL reads.

Product page: products bought together with this one, then popular ones in its category.
A user: co-purchase neighbours of what they recently viewed, have in the cart and bought, and
popular products in those categories, without what they already bought or hold in the cart;
the mall's overall best sellers fill what is left. Every answer is filtered to published
products at request time, so an unpublished product disappears at once, not at the next
refresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from redis.asyncio import Redis

from recommendations.keys import RecsKeys

NEIGHBOURS = 50  # read per seed product and per category list
RECENT_VIEWS = 30
RECENT_ORDERS = 50
MAX_SEEDS = 30
MAX_CATEGORIES = 10
WEIGHT_CART = 3.0
WEIGHT_VIEW = 1.5
WEIGHT_BOUGHT = 1.0
CATEGORY_FACTOR = 0.5

BOUGHT_TOGETHER = "bought_together"
POPULAR_IN_CATEGORY = "popular_in_category"
POPULAR = "popular"

LISTED_PRODUCT = "SELECT id, category_id FROM products WHERE id = $1 AND published"
LISTED = """
SELECT id, name, min_price FROM products WHERE id = ANY($1::bigint[]) AND published
"""
USER_SEEDS = """
WITH viewed AS (
    SELECT product_id, row_number() OVER (ORDER BY max(at) DESC) AS recency
    FROM (SELECT product_id, at FROM events
          WHERE user_id = $1 AND kind = 'view' AND product_id IS NOT NULL
          ORDER BY at DESC LIMIT $3) v
    GROUP BY product_id
), bought AS (
    SELECT DISTINCT s.product_id
    FROM (SELECT order_id FROM orders WHERE user_id = $1 AND status <> 'cancelled'
          ORDER BY created_at DESC LIMIT $4) o
    JOIN order_items i ON i.order_id = o.order_id
    JOIN skus s ON s.id = i.sku_id
), carted AS (
    SELECT DISTINCT product_id FROM skus WHERE id = ANY($2::bigint[])
)
SELECT p.id, p.category_id,
       EXISTS (SELECT 1 FROM bought b WHERE b.product_id = p.id) AS bought,
       EXISTS (SELECT 1 FROM carted c WHERE c.product_id = p.id) AS carted,
       (SELECT recency FROM viewed v WHERE v.product_id = p.id) AS view_recency
FROM products p
WHERE p.id IN (SELECT product_id FROM viewed UNION SELECT product_id FROM bought
               UNION SELECT product_id FROM carted)
"""


@dataclass(slots=True)
class Ranking:
    """Candidate scores with the source that contributed most to each."""

    scores: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    best: dict[int, tuple[float, str]] = field(default_factory=dict)

    def add(self, product_id: int, score: float, reason: str) -> None:
        self.scores[product_id] += score
        if score > self.best.get(product_id, (0.0, ""))[0]:
            self.best[product_id] = (score, reason)

    def ranked(self, exclude: set[int]) -> list[tuple[int, str]]:
        order = sorted((p for p in self.scores if p not in exclude),
                       key=lambda p: (-self.scores[p], p))
        return [(p, self.best[p][1]) for p in order]


def _pairs(raw: list[tuple[bytes, float]]) -> list[tuple[int, float]]:
    return [(int(member), float(score)) for member, score in raw if score > 0]


def _spread(raw: list[tuple[bytes, float]]) -> list[tuple[int, float]]:
    """Members with their share of the list's total score."""
    pairs = _pairs(raw)
    total = sum(score for _, score in pairs) or 1.0
    return [(member, score / total) for member, score in pairs]


async def _listed(pool: asyncpg.Pool, ranked: list[tuple[int, str]],
                  limit: int) -> list[dict[str, Any]]:
    """The first `limit` published products of `ranked`, in order, as answer items."""
    seen: set[int] = set()
    unique = [(p, r) for p, r in ranked if not (p in seen or seen.add(p))]
    rows = await pool.fetch(LISTED, [p for p, _ in unique[: limit * 4 + 20]])
    found = {r["id"]: r for r in rows}
    items = []
    for product_id, reason in unique:
        row = found.get(product_id)
        if row is None:
            continue
        items.append({"id": product_id, "name": row["name"], "price_from": row["min_price"],
                      "currency": "CNY", "reason": reason})
        if len(items) == limit:
            break
    return items


async def for_product(pool: asyncpg.Pool, redis: Redis, keys: RecsKeys, product_id: int,
                      limit: int) -> list[dict[str, Any]] | None:
    """Recommendations next to a product; None when the product is unknown or unpublished."""
    product = await pool.fetchrow(LISTED_PRODUCT, product_id)
    if product is None:
        return None
    sources = [(keys.bought_with(product_id), BOUGHT_TOGETHER)]
    if product["category_id"] is not None:
        sources.append((keys.popular_in(product["category_id"]), POPULAR_IN_CATEGORY))
    sources.append((keys.popular, POPULAR))
    async with redis.pipeline(transaction=False) as pipe:
        for key, _ in sources:
            pipe.zrevrange(key, 0, NEIGHBOURS - 1, withscores=True)
        lists = await pipe.execute()
    ranked = [(member, reason) for raw, (_, reason) in zip(lists, sources, strict=True)
              for member, _ in sorted(_pairs(raw), key=lambda m: (-m[1], m[0]))
              if member != product_id]
    return await _listed(pool, ranked, limit)


@dataclass(frozen=True, slots=True)
class Seed:
    product_id: int
    category_id: int | None
    weight: float


def _seeds(rows: Iterable[asyncpg.Record]) -> tuple[list[Seed], set[int]]:
    """Weighted seed products and the products to leave out (bought or in the cart)."""
    seeds, exclude = [], set()
    for r in rows:
        weight = 0.0
        if r["carted"]:
            weight += WEIGHT_CART
        if r["bought"]:
            weight += WEIGHT_BOUGHT
        if r["view_recency"] is not None:
            weight += WEIGHT_VIEW / (1 + 0.2 * (r["view_recency"] - 1))
        if r["bought"] or r["carted"]:
            exclude.add(r["id"])
        seeds.append(Seed(r["id"], r["category_id"], weight))
    seeds.sort(key=lambda s: (-s.weight, s.product_id))
    return seeds[:MAX_SEEDS], exclude


async def for_user(pool: asyncpg.Pool, redis: Redis, keys: RecsKeys, cart_key: str,
                   user_id: str, limit: int) -> list[dict[str, Any]]:
    cart_skus = [int(s) for s in await redis.hkeys(cart_key)]
    rows = await pool.fetch(USER_SEEDS, user_id, cart_skus, RECENT_VIEWS, RECENT_ORDERS)
    seeds, exclude = _seeds(rows)
    category_weight: dict[int, float] = defaultdict(float)
    for seed in seeds:
        if seed.category_id is not None:
            category_weight[seed.category_id] += seed.weight
    categories = sorted(category_weight, key=lambda c: -category_weight[c])[:MAX_CATEGORIES]
    async with redis.pipeline(transaction=False) as pipe:
        for seed in seeds:
            pipe.zrevrange(keys.bought_with(seed.product_id), 0, NEIGHBOURS - 1, withscores=True)
        for category_id in categories:
            pipe.zrevrange(keys.popular_in(category_id), 0, NEIGHBOURS - 1, withscores=True)
        pipe.zrevrange(keys.popular, 0, NEIGHBOURS - 1, withscores=True)
        lists = await pipe.execute()
    ranking = Ranking()
    for seed, raw in zip(seeds, lists, strict=False):
        for member, share in _spread(raw):
            ranking.add(member, seed.weight * share, BOUGHT_TOGETHER)
    for category_id, raw in zip(categories, lists[len(seeds):], strict=False):
        for member, share in _spread(raw):
            ranking.add(member, CATEGORY_FACTOR * category_weight[category_id] * share,
                        POPULAR_IN_CATEGORY)
    fill = [(member, POPULAR) for member, _ in _pairs(lists[-1]) if member not in exclude]
    return await _listed(pool, ranking.ranked(exclude) + fill, limit)


async def popular(pool: asyncpg.Pool, redis: Redis, keys: RecsKeys,
                  limit: int) -> list[dict[str, Any]]:
    """The mall's best sellers, published only (the baseline the evaluation compares with)."""
    raw = await redis.zrevrange(keys.popular, 0, NEIGHBOURS - 1, withscores=True)
    return await _listed(pool, [(m, POPULAR) for m, _ in _pairs(raw)], limit)
