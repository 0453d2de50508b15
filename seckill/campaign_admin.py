"""Staff management of flash-sale campaigns: lists, edits before the start, ending a sale, and
loading it into Redis ahead of its start.

Closing a sale (ending it early, or settling one whose time is up) gives the units it did not
sell back to the SKU. Orders already accepted and still on their way to PostgreSQL keep their
units, and so do orders cancelled later until their units are back in Redis:

- lua/sale_close.lua moves the sale's remaining Redis stock into the meta counter `to_sku`, a
  total that only grows, and deletes the stock key. Units that come back later (cancel, refund)
  reappear in the stock key through lua/release.lua and are moved by the next run.
- PostgreSQL follows that counter by its difference: `returned_to_sku` grows to `to_sku` and the
  SKU's stock grows by the same units, in one transaction under the sale's row lock, so a
  repeated or concurrent run moves nothing twice.
- `flash_sales.stock` keeps the units the sale was given. Units in flight are still counted in
  Redis as accepted, so `sold + returned_to_sku <= stock` holds at every moment (a migration
  constraint checks it) and the writer's `sold <= stock` never refuses a late order. Once every
  order is persisted and every return applied, `sold + returned_to_sku = stock` exactly.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType
from redis.asyncio import Redis

from mall.background import StoppableLoop
from mall.errors import ApiError, invalid, not_found
from mall.keys import RELAY_GROUP, Keys
from mall.lua import Script
from mall.params import query_id_cursor, query_limit
from mall.stock_mirror import StockMirror
from seckill.campaigns import (
    MAX_PRICE,
    MAX_SALE_STOCK,
    RESERVE_SKU_STOCK,
    AwareDatetime,
    to_ms,
    why_not_reserved,
)
from seckill.shards import ShardedStock, split

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
STATES = ("scheduled", "running", "ended")


class SaleEdit(msgspec.Struct, forbid_unknown_fields=True):
    """Any of a sale's terms; only before its start."""

    price: Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE)] | UnsetType = UNSET
    stock: Annotated[int, msgspec.Meta(ge=1, le=MAX_SALE_STOCK)] | UnsetType = UNSET
    per_user_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | UnsetType = UNSET
    starts_at: AwareDatetime | UnsetType = UNSET
    ends_at: AwareDatetime | UnsetType = UNSET
    requires_token: bool | UnsetType = UNSET


EDITABLE = ("price", "stock", "per_user_limit", "starts_at", "ends_at", "requires_token")


def sale_started() -> ApiError:
    return ApiError(409, "sale_started", "the sale has started; its terms can no longer change")


def sale_ended() -> ApiError:
    return ApiError(409, "sale_ended", "the sale has ended")


STATE_EXPR = """CASE WHEN f.closed_at IS NOT NULL OR f.ends_at <= now() THEN 'ended'
     WHEN f.starts_at > now() THEN 'scheduled' ELSE 'running' END"""
SALE_COLUMNS = f"""
f.id, f.sku_id, s.product_id, p.name AS product_name, f.price, f.stock, f.sold, f.returned_to_sku,
f.per_user_limit, f.starts_at, f.ends_at, f.closed_at, f.warmed_at, f.created_by,
f.created_at, f.requires_token, f.shards, {STATE_EXPR} AS state"""
LIST_SALES = f"""
SELECT {SALE_COLUMNS}
FROM flash_sales f JOIN skus s ON s.id = f.sku_id JOIN products p ON p.id = s.product_id
WHERE ($1::text IS NULL OR {STATE_EXPR} = $1) AND ($2::bigint IS NULL OR f.id < $2)
ORDER BY f.id DESC
LIMIT $3
"""
PUBLIC_SALES = f"""
SELECT {SALE_COLUMNS}
FROM flash_sales f JOIN skus s ON s.id = f.sku_id JOIN products p ON p.id = s.product_id
WHERE f.closed_at IS NULL AND f.ends_at > now() AND p.published
  AND ($1::timestamptz IS NULL OR (f.starts_at, f.id) > ($1, $2::bigint))
ORDER BY f.starts_at, f.id
LIMIT $3
"""
SALE_FOR_UPDATE = f"""
SELECT {SALE_COLUMNS}, f.starts_at <= now() AS started
FROM flash_sales f JOIN skus s ON s.id = f.sku_id JOIN products p ON p.id = s.product_id
WHERE f.id = $1
FOR UPDATE OF f
"""
SELECT_ONE = f"""
SELECT {SALE_COLUMNS}
FROM flash_sales f JOIN skus s ON s.id = f.sku_id JOIN products p ON p.id = s.product_id
WHERE f.id = $1
"""
GIVE_BACK_TO_SKU = "UPDATE skus SET stock = stock + $2 WHERE id = $1"
UPDATE_TERMS = """
UPDATE flash_sales
SET price = $2, stock = $3, per_user_limit = $4, starts_at = $5, ends_at = $6,
    requires_token = $7, updated_at = now(), warmed_at = NULL
WHERE id = $1
"""
MARK_CLOSED = """
UPDATE flash_sales SET closed_at = coalesce(closed_at, now()), updated_at = now()
WHERE id = $1
RETURNING closed_at
"""
RETURNED_FOR_UPDATE = "SELECT sku_id, returned_to_sku FROM flash_sales WHERE id = $1 FOR UPDATE"
SET_RETURNED = "UPDATE flash_sales SET returned_to_sku = $2 WHERE id = $1"
MARK_WARMED = "UPDATE flash_sales SET warmed_at = now() WHERE id = $1"


def parse_limit(raw: str | None) -> int:
    return query_limit(raw, DEFAULT_LIMIT, MAX_LIMIT)


def parse_state(raw: str | None) -> str | None:
    if raw is not None and raw not in STATES:
        raise invalid(f"state must be one of {', '.join(STATES)}")
    return raw


def parse_id_cursor(raw: str | None) -> int | None:
    return query_id_cursor(raw)


def encode_start_cursor(starts_at: datetime, sale_id: int) -> str:
    raw = msgspec.json.encode([starts_at.isoformat(), sale_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_start_cursor(token: str | None) -> tuple[datetime | None, int]:
    if token is None:
        return None, 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        starts, sale_id = msgspec.json.decode(raw, type=tuple[AwareDatetime, int])
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise invalid("cursor is not valid") from None
    return starts, sale_id


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat() if dt is not None else None


def admin_view(row: asyncpg.Record) -> dict[str, Any]:
    ends_at = row["ends_at"] if row["closed_at"] is None else min(row["ends_at"],
                                                                 row["closed_at"])
    return {
        "id": row["id"], "sku_id": row["sku_id"], "product_id": row["product_id"],
        "product_name": row["product_name"],
        "price": row["price"], "currency": "CNY", "stock": row["stock"], "sold": row["sold"],
        "returned_to_sku": row["returned_to_sku"], "per_user_limit": row["per_user_limit"],
        "starts_at": _iso(row["starts_at"]), "ends_at": _iso(ends_at),
        "scheduled_ends_at": _iso(row["ends_at"]), "closed_at": _iso(row["closed_at"]),
        "warmed_at": _iso(row["warmed_at"]), "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]), "state": row["state"],
        "requires_token": row["requires_token"], "shards": row["shards"],
    }


def _new_terms(row: asyncpg.Record | None, changes: dict[str, Any]) -> dict[str, Any]:
    if row is None:
        raise not_found("flash sale")
    if row["closed_at"] is not None:
        raise sale_ended()
    if row["started"]:
        raise sale_started()
    if row["shards"] > 1 and changes.get("stock", row["stock"]) != row["stock"]:
        raise invalid("the stock of a sale split into shards cannot be changed; end it and "
                      "create another")
    new = {f: changes.get(f, row[f]) for f in EDITABLE}
    if new["ends_at"] <= new["starts_at"]:
        raise invalid("ends_at must be after starts_at")
    if new["ends_at"] <= datetime.now(UTC):
        raise invalid("ends_at must be in the future")
    return new


class CampaignAdmin:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, keys: Keys,
                 mirror: StockMirror, shards: ShardedStock | None = None) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._mirror = mirror
        self.shards = shards or ShardedStock(redis, keys)
        self._update = Script(redis, "sale_update")
        self._close = Script(redis, "sale_close")
        self._warm = Script(redis, "sale_warm")

    # ---- lists

    async def list_admin(self, state: str | None, cursor: int | None,
                         limit: int) -> dict[str, Any]:
        rows = await self._pool.fetch(LIST_SALES, state, cursor, limit + 1)
        page = rows[:limit]
        next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
        return {"items": [admin_view(r) for r in page], "next_cursor": next_cursor}

    async def list_public(self, cursor: str | None, limit: int) -> dict[str, Any]:
        after_start, after_id = decode_start_cursor(cursor)
        rows = await self._pool.fetch(PUBLIC_SALES, after_start, after_id, limit + 1)
        page = rows[:limit]
        remaining = await self._remaining([r["id"] for r in page]) if page else []
        items = []
        for row, left in zip(page, remaining, strict=True):
            units = row["stock"] - row["sold"] if left is None else left
            items.append({
                "id": row["id"], "sku_id": row["sku_id"], "product_id": row["product_id"],
                "product_name": row["product_name"],
                "price": row["price"], "currency": "CNY", "per_user_limit": row["per_user_limit"],
                "requires_token": row["requires_token"],
                "starts_at": _iso(row["starts_at"]), "ends_at": _iso(row["ends_at"]),
                "remaining": max(units, 0),
                "state": "upcoming" if row["state"] == "scheduled"
                else ("sold_out" if units <= 0 else "live"),
            })
        next_cursor = (encode_start_cursor(page[-1]["starts_at"], page[-1]["id"])
                       if len(rows) > limit else None)
        return {"items": items, "next_cursor": next_cursor}

    async def _remaining(self, sale_ids: list[int]) -> list[int | None]:
        return [await self.shards.remaining(s) for s in sale_ids]

    async def get(self, sale_id: int) -> dict[str, Any]:
        row = await self._pool.fetchrow(SELECT_ONE, sale_id)
        if row is None:
            raise not_found("flash sale")
        return admin_view(row)

    # ---- editing before the start

    async def edit(self, sale_id: int, edit: SaleEdit) -> dict[str, Any]:
        changes = {f: getattr(edit, f) for f in EDITABLE if getattr(edit, f) is not UNSET}
        if not changes:
            raise invalid("nothing to change: send at least one of " + ", ".join(EDITABLE))
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(SALE_FOR_UPDATE, sale_id)
            new = _new_terms(row, changes)
            sku_id, delta = row["sku_id"], new["stock"] - row["stock"]
            taken = await self._move_sku_stock(conn, sku_id, delta)
            try:
                await conn.execute(UPDATE_TERMS, sale_id, new["price"], new["stock"],
                                   new["per_user_limit"], new["starts_at"], new["ends_at"],
                                   new["requires_token"])
                await self._apply_terms(sale_id, sku_id, new, row["starts_at"], row["shards"])
            except BaseException:
                if taken:
                    await self._mirror.untake(sku_id, delta)
                if delta < 0:
                    await self._mirror.drop(sku_id, -delta)
                raise
        if delta < 0:
            await self._mirror.apply(sku_id, -delta)
        return await self.get(sale_id)

    async def _move_sku_stock(self, conn: asyncpg.Connection, sku_id: int, delta: int) -> bool:
        """More units come out of the SKU by the rules of creation (True when Redis held them);
        fewer go back to it, held in Redis until the commit (lua/stock_give.lua)."""
        if delta > 0:
            if await conn.fetchval(RESERVE_SKU_STOCK, sku_id, delta) is None:
                raise await why_not_reserved(conn, sku_id)
            return await self._mirror.take(sku_id, delta)
        if delta < 0:
            await conn.execute(GIVE_BACK_TO_SKU, sku_id, -delta)
            await self._mirror.hold(sku_id, -delta)
        return False

    async def _apply_terms(self, sale_id: int, sku_id: int, new: dict[str, Any],
                           old_starts_at: datetime, shards: int) -> None:
        """Replace the terms in Redis while the row is locked; the commit follows.

        The Redis clock decides whether the sale has started, the one admit.lua reads, so an
        edit that loses the race against the start is refused and PostgreSQL rolls back.
        A sale in shards is edited shard by shard, shard 0 first: a refusal there changes
        nothing; a refusal on a later shard (the start passed between two calls, within
        milliseconds) is answered as started, and the upkeep's warm-up is not needed because
        the refused shard kept its old terms only for a sale that has already begun.
        """
        parts = split(new["stock"], shards)
        for k in range(shards):
            keys = self._keys.sale(sale_id, k)
            await self._redis.sadd(self._keys.outbox_registry, keys.outbox)
            code, _ = await self._update(keys.init(), [
                sale_id, sku_id, new["price"], to_ms(new["starts_at"]), to_ms(new["ends_at"]),
                new["per_user_limit"], new["stock"], RELAY_GROUP, to_ms(old_starts_at),
                int(new["requires_token"]), parts[k], shards,
            ])
            if int(code) == 1:
                raise sale_started()
            if int(code) == 2:
                raise sale_ended()

    # ---- closing

    async def close(self, sale_id: int) -> dict[str, Any]:
        """End the sale now (a sale already over is only settled) and return its unsold units.

        The intent is committed first, so the upkeep loop finishes the job after a crash.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(MARK_CLOSED, sale_id) is None:
                raise not_found("flash sale")
        await self.settle(sale_id)
        return await self.get(sale_id)

    async def settle(self, sale_id: int) -> int:
        """Take what the closed sale has left in Redis and give it to the SKU. Returns units.

        A sale in shards closes every shard (so none admits any more), finishes the stock
        transfers cut short, and sums what the shards hold."""
        shard_keys = await self.shards.shard_keys(sale_id)
        total, found = 0, False
        for keys in shard_keys:
            code, to_sku, _ = await self._close(keys.init()[:2], [])
            if int(code) != 2:
                found, total = True, total + int(to_sku)
        if len(shard_keys) > 1 and await self.shards.finish_transfers(sale_id):
            total = 0
            for keys in shard_keys:  # the finished transfers added stock: take it too
                code, to_sku, _ = await self._close(keys.init()[:2], [])
                total += int(to_sku) if int(code) != 2 else 0
        if not found:
            log.warning("closed flash sale %s has no state in Redis; nothing to settle", sale_id)
            return 0
        return await self.sync_returned(sale_id, total)

    async def sync_returned(self, sale_id: int, to_sku: int) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(RETURNED_FOR_UPDATE, sale_id)
            delta = to_sku - row["returned_to_sku"]
            if delta <= 0:
                return 0
            await conn.execute(SET_RETURNED, sale_id, to_sku)
            await conn.execute(GIVE_BACK_TO_SKU, row["sku_id"], delta)
            await self._mirror.hold(row["sku_id"], delta)
        await self._mirror.apply(row["sku_id"], delta)
        log.info("flash sale %s gave %d unsold unit(s) back to SKU %s", sale_id, delta,
                 row["sku_id"])
        return delta

    # ---- warm-up

    async def warm_up(self, sale_id: int) -> int:
        """Load the sale into Redis from PostgreSQL; returns the remaining stock there.

        Runs under the sale's row lock, so it never interleaves with an edit. Stock already in
        Redis is never reset, so warming a running sale changes nothing.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(SALE_FOR_UPDATE, sale_id)
            if row is None:
                raise not_found("flash sale")
            if row["state"] == "ended":
                raise sale_ended()
            shards = row["shards"]
            parts = split(row["stock"] - row["sold"], shards)
            remaining = 0
            for k in reversed(range(shards)):  # shard 0, which records K, last
                keys = self._keys.sale(sale_id, k)
                await self._redis.sadd(self._keys.outbox_registry, keys.outbox)
                code, left = await self._warm(keys.init(), [
                    sale_id, row["sku_id"], row["price"], to_ms(row["starts_at"]),
                    to_ms(row["ends_at"]), row["per_user_limit"], row["stock"],
                    parts[k], RELAY_GROUP, int(row["requires_token"]), shards,
                ])
                if int(code) == 1:
                    raise sale_ended()
                remaining += int(left)
            self.shards.remember(sale_id, shards)
            await conn.execute(MARK_WARMED, sale_id)
        return remaining


# Sales starting within this many seconds are loaded into Redis by the upkeep loop. Far longer
# than MALL_SOLDOUT_REFRESH_S, so every process's sold-out flags have caught up by the start.
WARM_UP_AHEAD_S = 60
UPKEEP_INTERVAL_S = 1.0
# Closed sales still collect units from refunds for a while; older ones are left alone.
SETTLE_WITHIN_DAYS = 90
UPKEEP_BATCH = 200

SALES_TO_WARM = """
SELECT id FROM flash_sales
WHERE closed_at IS NULL AND warmed_at IS NULL AND ends_at > now()
  AND starts_at <= now() + make_interval(secs => $1)
ORDER BY starts_at, id
LIMIT $2
"""
RUNNING_SHARDED_SALES = """
SELECT id FROM flash_sales
WHERE shards > 1 AND closed_at IS NULL AND warmed_at IS NOT NULL AND ends_at > now()
"""
CLOSED_SALES = """
SELECT id, returned_to_sku, shards FROM flash_sales
WHERE closed_at > now() - make_interval(days => $1)
ORDER BY id
"""


class SaleUpkeep(StoppableLoop):
    """Every serving process runs one; a Redis lock with expiry lets one of them act per pass.

    A pass warms sales about to start and settles closed sales: it finishes a close cut short
    by a crash and gives the SKU the units that cancellations brought back since.
    """

    interval_s = UPKEEP_INTERVAL_S

    def __init__(self, admin: CampaignAdmin, pool: asyncpg.Pool, redis: Redis,
                 keys: Keys, on_warmed: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self._admin = admin
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._token = os.urandom(8).hex()
        self._on_warmed = on_warmed

    async def step(self) -> None:
        lock_ms = int(self.interval_s * 1000)
        if not await self._redis.set(self._keys.campaign_upkeep_lock, self._token, nx=True,
                                     px=lock_ms):
            return
        try:
            await self.warm_upcoming()
            await self.finish_transfers()
        finally:  # a sale that cannot be warmed up must not hold back the settling
            await self.settle_closed()

    async def finish_transfers(self) -> int:
        """Finish the stock transfers between shards that a crash cut short."""
        finished = 0
        for row in await self._pool.fetch(RUNNING_SHARDED_SALES):
            try:
                finished += await self._admin.shards.finish_transfers(row["id"])
            except Exception:  # one sale's failure must not hold back the others
                log.warning("flash sale %s: transfers not finished; retrying", row["id"],
                            exc_info=True)
        return finished

    async def warm_upcoming(self) -> int:
        rows = await self._pool.fetch(SALES_TO_WARM, WARM_UP_AHEAD_S, UPKEEP_BATCH)
        warmed = 0
        for row in rows:
            try:
                await self._admin.warm_up(row["id"])
                warmed += 1
            except ApiError as err:  # closed or ended meanwhile
                log.info("flash sale %s not warmed up: %s", row["id"], err.code)
            except Exception:  # one sale's failure must not hold back the others
                log.warning("flash sale %s not warmed up; retrying", row["id"], exc_info=True)
        if warmed and self._on_warmed is not None:
            await self._on_warmed()
        return warmed

    async def settle_closed(self) -> int:
        rows = await self._pool.fetch(CLOSED_SALES, SETTLE_WITHIN_DAYS)
        if not rows:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                keys = self._keys.sale(row["id"])
                pipe.hmget(keys.meta, "starts_at_ms", "closed", "to_sku")
                pipe.exists(keys.stock)
            replies = await pipe.execute()
        moved = 0
        for i, row in enumerate(rows):
            (loaded, closed, to_sku), stock_exists = replies[2 * i], replies[2 * i + 1]
            try:
                if row["shards"] > 1:  # each shard may hold units: settling reads them all
                    moved += await self._admin.settle(row["id"])
                elif loaded is not None and (closed is None or stock_exists):
                    moved += await self._admin.settle(row["id"])
                elif to_sku is not None and int(to_sku) > row["returned_to_sku"]:
                    moved += await self._admin.sync_returned(row["id"], int(to_sku))
            except Exception:  # one sale's failure must not hold back the others
                log.warning("flash sale %s not settled; retrying", row["id"], exc_info=True)
        return moved
