"""Creating flash sales and reading their public state."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from redis.asyncio import Redis

from mall.errors import ApiError, invalid, not_found
from mall.keys import RELAY_GROUP, Keys
from mall.lua import Script
from mall.stock_mirror import StockMirror
from seckill.shards import MAX_SHARDS, ShardedStock, split

log = logging.getLogger(__name__)

MAX_PRICE = 10_000_000_000
MAX_SALE_STOCK = 10_000_000
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class NewFlashSale(msgspec.Struct, forbid_unknown_fields=True):
    sku_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    price: Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE)]
    stock: Annotated[int, msgspec.Meta(ge=1, le=MAX_SALE_STOCK)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    # Buyers must bring a single-use admission token (POST .../admission-token) to buy.
    requires_token: bool = False
    # Stock shards (hash tags) for a sale hotter than one Redis shard can serve; see
    # seckill/shards.py. Each shard starts with an equal part of the stock.
    shards: Annotated[int, msgspec.Meta(ge=1, le=MAX_SHARDS)] = 1

    def check(self) -> None:
        if self.ends_at <= self.starts_at:
            raise invalid("ends_at must be after starts_at")
        if self.shards > self.stock:
            raise invalid("shards must not exceed stock: every shard starts with a unit")


RESERVE_SKU_STOCK = """
UPDATE skus s SET stock = s.stock - $2 FROM products p
WHERE s.id = $1 AND p.id = s.product_id AND p.published AND s.stock - s.sold >= $2
RETURNING s.id
"""
SKU_AVAILABLE = """
SELECT s.stock - s.sold AS available, p.published
FROM skus s JOIN products p ON p.id = s.product_id WHERE s.id = $1
"""
RELEASE_SKU_STOCK = "UPDATE skus SET stock = stock + $2 WHERE id = $1"
INSERT_SALE = """
INSERT INTO flash_sales (sku_id, price, stock, per_user_limit, starts_at, ends_at, created_by,
                         warmed_at, requires_token, shards)
VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9)
RETURNING id
"""
DELETE_SALE = "DELETE FROM flash_sales WHERE id = $1"
PRODUCT_OF_SKU = """
SELECT p.id, p.name FROM skus s JOIN products p ON p.id = s.product_id WHERE s.id = $1
"""
# A sale's page is polled: the product's id and name are read at most this often per SKU.
PRODUCT_CACHE_S = 30.0
# A closed sale ended when it was closed, if that came first; its unsold units left with it.
SELECT_SALE = """
SELECT id, sku_id, price, stock, sold, returned_to_sku, per_user_limit, requires_token, shards,
       least(starts_at, closed_at) AS starts_at, least(ends_at, closed_at) AS ends_at
FROM flash_sales WHERE id = $1
"""


async def why_not_reserved(conn: asyncpg.Connection, sku_id: int) -> ApiError:
    """Why RESERVE_SKU_STOCK reserved nothing: no such SKU, unpublished, or too few units."""
    row = await conn.fetchrow(SKU_AVAILABLE, sku_id)
    if row is None:
        return not_found("SKU")
    if not row["published"]:
        return ApiError(409, "not_published", "the SKU's product is not published")
    return ApiError(
        409, "insufficient_stock",
        f"the SKU has {row['available']} units available, fewer than the sale's stock",
    )


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class Campaigns:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, keys: Keys,
                 shards: ShardedStock | None = None) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._shards = shards or ShardedStock(redis, keys)
        self._init = Script(redis, "init_sale")
        self._products: dict[int, tuple[float, int | None, str | None]] = {}
        self.sku_mirror = StockMirror(redis, keys)

    async def create(self, sale: NewFlashSale, created_by: str) -> int:
        """Reserve the units out of the SKU, record the sale, then make it sellable in Redis.

        If Redis cannot take the sale, the PostgreSQL rows are undone: no order can exist for a
        sale that never reached Redis.
        """
        sale.check()
        async with self._pool.acquire() as conn, conn.transaction():
            reserved = await conn.fetchval(RESERVE_SKU_STOCK, sale.sku_id, sale.stock)
            if reserved is None:
                raise await why_not_reserved(conn, sale.sku_id)
            taken = await self.sku_mirror.take(sale.sku_id, sale.stock)
            try:
                sale_id = await conn.fetchval(
                    INSERT_SALE, sale.sku_id, sale.price, sale.stock, sale.per_user_limit,
                    sale.starts_at, sale.ends_at, created_by, sale.requires_token, sale.shards,
                )
            except BaseException:
                if taken:
                    await self.sku_mirror.untake(sale.sku_id, sale.stock)
                raise
        try:
            await self.load_into_redis(sale_id, sale.sku_id, sale.price, sale.stock,
                                       sale.per_user_limit, sale.starts_at, sale.ends_at,
                                       sale.requires_token, sale.shards)
        except Exception:
            log.exception("could not make flash sale %s sellable in Redis; undoing it", sale_id)
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(DELETE_SALE, sale_id)
                await conn.execute(RELEASE_SKU_STOCK, sale.sku_id, sale.stock)
                await self.sku_mirror.hold(sale.sku_id, sale.stock)
            await self.sku_mirror.apply(sale.sku_id, sale.stock)
            raise ApiError(503, "unavailable", "the sale could not be created; try again") from None
        return int(sale_id)

    async def load_into_redis(
        self, sale_id: int, sku_id: int, price: int, remaining: int, per_user_limit: int,
        starts_at: datetime, ends_at: datetime, requires_token: bool = False, shards: int = 1,
    ) -> None:
        """Every shard gets its part of the stock; shard 0 (which records K) goes last, so a
        process that finds K there finds every shard ready."""
        parts = split(remaining, shards)
        for k in reversed(range(shards)):
            keys = self._keys.sale(sale_id, k)
            await self._redis.sadd(self._keys.outbox_registry, keys.outbox)
            await self._init(
                keys.init(),
                [sale_id, sku_id, price, to_ms(starts_at), to_ms(ends_at), per_user_limit,
                 parts[k], RELAY_GROUP, int(requires_token), shards, remaining],
            )
        self._shards.remember(sale_id, shards)

    async def window(self, sale_id: int) -> tuple[int, int] | None:
        """(starts_at_ms, ends_at_ms) of a sale, from Redis, else PostgreSQL; None if unknown."""
        starts, ends = await self._redis.hmget(self._keys.sale(sale_id).meta,
                                               "starts_at_ms", "ends_at_ms")
        if starts is not None and ends is not None:
            return int(starts), int(ends)
        row = await self._pool.fetchrow(SELECT_SALE, sale_id)
        if row is None:
            return None
        return to_ms(row["starts_at"]), to_ms(row["ends_at"])

    async def _product_of(self, sku_id: int) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._products.get(sku_id)
        if cached is None or now - cached[0] > PRODUCT_CACHE_S:
            row = await self._pool.fetchrow(PRODUCT_OF_SKU, sku_id)
            cached = (now, row["id"], row["name"]) if row else (now, None, None)
            self._products[sku_id] = cached
        return {"product_id": cached[1], "product_name": cached[2]}

    async def view(self, sale_id: int) -> dict[str, Any]:
        """The public view of a sale: terms and remaining stock from Redis (PostgreSQL for a
        sale Redis does not hold), with its product's id and name."""
        view = await self._terms(sale_id)
        return {**view, **await self._product_of(view["sku_id"])}

    async def _terms(self, sale_id: int) -> dict[str, Any]:
        meta = await self._redis.hgetall(self._keys.sale(sale_id).meta)
        stock = await self._shards.remaining(sale_id) if meta else None
        if meta:
            m = {k.decode(): int(v) for k, v in meta.items()}
            return sale_view(
                sale_id, m["sku_id"], m["price"], m["stock"], int(stock or 0),
                m["per_user_limit"], m["starts_at_ms"], m["ends_at_ms"],
                requires_token=m.get("requires_token") == 1, shards=m.get("shards", 1),
            )
        row = await self._pool.fetchrow(SELECT_SALE, sale_id)
        if row is None:
            raise not_found("flash sale")
        return sale_view(
            sale_id, row["sku_id"], row["price"], row["stock"],
            row["stock"] - row["sold"] - row["returned_to_sku"],
            row["per_user_limit"], to_ms(row["starts_at"]), to_ms(row["ends_at"]),
            requires_token=row["requires_token"], shards=row["shards"],
        )


def sale_view(
    sale_id: int, sku_id: int, price: int, stock: int, remaining: int, per_user_limit: int,
    starts_at_ms: int, ends_at_ms: int, now_ms: int | None = None, requires_token: bool = False,
    shards: int = 1,
) -> dict[str, Any]:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if now_ms >= ends_at_ms:
        state = "ended"
    elif now_ms < starts_at_ms:
        state = "upcoming"
    elif remaining <= 0:
        state = "sold_out"
    else:
        state = "live"
    return {
        "id": sale_id,
        "sku_id": sku_id,
        "price": price,
        "currency": "CNY",
        "stock": stock,
        "remaining": max(remaining, 0),
        "per_user_limit": per_user_limit,
        "starts_at": _iso(starts_at_ms),
        "ends_at": _iso(ends_at_ms),
        "state": state,
        "requires_token": requires_token,
        "shards": shards,
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()
