"""Price lists in PostgreSQL: create, read, change before the start, end early.

A price list lowers the price of some SKUs from `starts_at` until `ends_at` (or until staff end
it early). What a buyer pays is read by `catalog_api.availability.sellable_skus`; this module
only keeps the lists. Every write returns the products whose prices it may change, so the
caller can invalidate their cached details once the transaction has committed.

Lock order: the price list row, then SKU rows in id order (shared: their prices cannot change
while a list is checked against them), as elsewhere in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from msgspec import UNSET

from mall.errors import ApiError, not_found
from pricing.models import NewPriceList, PriceListEdit, check_items, check_window, clean_list_name

MAX_SHOWN = 50  # offending SKUs listed in an error's details

STATE = """CASE WHEN l.status = 'ended' OR l.ends_at <= now() THEN 'ended'
            WHEN l.starts_at > now() THEN 'upcoming' ELSE 'live' END AS state"""
LIST_COLUMNS = f"""l.id, l.name, l.starts_at, l.ends_at, l.status, l.created_by, l.created_at,
       l.ended_at, {STATE},
       (SELECT count(*) FROM price_list_items i WHERE i.price_list_id = l.id) AS item_count"""
SELECT_LIST = f"SELECT {LIST_COLUMNS} FROM price_lists l WHERE l.id = $1"
SELECT_PAGE = f"""
SELECT {LIST_COLUMNS} FROM price_lists l
WHERE ($1::bigint IS NULL OR l.id < $1)
ORDER BY l.id DESC
LIMIT $2
"""
SELECT_LIST_FOR_UPDATE = """
SELECT id, name, starts_at, ends_at, status, starts_at <= now() AS started
FROM price_lists WHERE id = $1 FOR UPDATE
"""
SELECT_ITEMS = """
SELECT i.sku_id, s.product_id, i.price, s.price AS list_price
FROM price_list_items i JOIN skus s ON s.id = i.sku_id
WHERE i.price_list_id = $1
ORDER BY i.sku_id
"""
SKUS_FOR_SHARE = """
SELECT id, product_id, price FROM skus WHERE id = ANY($1::bigint[]) ORDER BY id FOR SHARE
"""
PRODUCTS_OF_LIST = """
SELECT DISTINCT s.product_id
FROM price_list_items i JOIN skus s ON s.id = i.sku_id
WHERE i.price_list_id = $1
"""
INSERT_LIST = """
INSERT INTO price_lists (name, starts_at, ends_at, created_by) VALUES ($1, $2, $3, $4)
RETURNING id
"""
INSERT_ITEMS = """
INSERT INTO price_list_items (price_list_id, sku_id, price)
SELECT $1, sku_id, price FROM unnest($2::bigint[], $3::bigint[]) AS t(sku_id, price)
"""
DELETE_ITEMS = "DELETE FROM price_list_items WHERE price_list_id = $1"
UPDATE_LIST = "UPDATE price_lists SET name = $2, starts_at = $3, ends_at = $4 WHERE id = $1"
END_LIST = """
UPDATE price_lists SET status = 'ended', ended_at = now() WHERE id = $1 AND status = 'active'
RETURNING id
"""
NOW = "SELECT now()"


@dataclass(frozen=True, slots=True)
class Written:
    """A price list after a write, and the products whose prices the write may change."""

    view: dict[str, Any]
    product_ids: list[int]


def list_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"], "name": row["name"], "starts_at": row["starts_at"].isoformat(),
        "ends_at": row["ends_at"].isoformat(), "status": row["status"], "state": row["state"],
        "created_by": row["created_by"], "created_at": row["created_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
        "item_count": row["item_count"],
    }


async def _full_view(conn: asyncpg.Connection, list_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(SELECT_LIST, list_id)
    if row is None:
        raise not_found("price list")
    items = [dict(r) for r in await conn.fetch(SELECT_ITEMS, list_id)]
    return {**list_view(row), "items": items}


async def _check_skus(conn: asyncpg.Connection, prices: dict[int, int]) -> list[int]:
    """Lock the SKUs and check each list price is below the SKU's price; their products."""
    rows = await conn.fetch(SKUS_FOR_SHARE, sorted(prices))
    found = {r["id"]: r for r in rows}
    missing = sorted(set(prices) - set(found))
    if missing:
        raise ApiError(404, "not_found", f"{len(missing)} SKU(s) not found",
                       details={"sku_ids": missing[:MAX_SHOWN]})
    too_high = [{"sku_id": s, "price": p, "list_price": found[s]["price"]}
                for s, p in sorted(prices.items()) if p >= found[s]["price"]]
    if too_high:
        raise ApiError(422, "price_not_lower",
                       f"{len(too_high)} item(s) are not below their SKU's price",
                       details={"items": too_high[:MAX_SHOWN]})
    return sorted({r["product_id"] for r in rows})


async def _insert_items(conn: asyncpg.Connection, list_id: int, prices: dict[int, int]) -> None:
    skus = sorted(prices)
    await conn.execute(INSERT_ITEMS, list_id, skus, [prices[s] for s in skus])


async def create(pool: asyncpg.Pool, new: NewPriceList, actor: str) -> Written:
    name = clean_list_name(new.name)
    prices = check_items(new.items)
    async with pool.acquire() as conn, conn.transaction():
        check_window(new.starts_at, new.ends_at, await conn.fetchval(NOW))
        product_ids = await _check_skus(conn, prices)
        list_id = await conn.fetchval(INSERT_LIST, name, new.starts_at, new.ends_at, actor)
        await _insert_items(conn, list_id, prices)
        view = await _full_view(conn, list_id)
    return Written(view, product_ids)


async def get(pool: asyncpg.Pool, list_id: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        return await _full_view(conn, list_id)


async def page(pool: asyncpg.Pool, before: int | None, limit: int
               ) -> tuple[list[dict[str, Any]], str | None]:
    rows = await pool.fetch(SELECT_PAGE, before, limit + 1)
    items = [list_view(r) for r in rows[:limit]]
    return items, (str(items[-1]["id"]) if len(rows) > limit else None)


async def _editable(conn: asyncpg.Connection, list_id: int) -> asyncpg.Record:
    current = await conn.fetchrow(SELECT_LIST_FOR_UPDATE, list_id)
    if current is None:
        raise not_found("price list")
    if current["status"] == "ended":
        raise ApiError(409, "price_list_ended", "the price list was ended")
    if current["started"]:
        raise ApiError(409, "price_list_started",
                       "the price list has started; it can only be ended now",
                       details={"starts_at": current["starts_at"].isoformat()})
    return current


async def edit(pool: asyncpg.Pool, list_id: int, change: PriceListEdit) -> Written:
    """Change a price list that has not started yet."""
    async with pool.acquire() as conn, conn.transaction():
        current = await _editable(conn, list_id)
        name = current["name"] if change.name is UNSET else clean_list_name(change.name)
        starts_at: datetime = (current["starts_at"] if change.starts_at is UNSET
                               else change.starts_at)
        ends_at: datetime = current["ends_at"] if change.ends_at is UNSET else change.ends_at
        check_window(starts_at, ends_at, await conn.fetchval(NOW))
        product_ids = {r["product_id"] for r in await conn.fetch(PRODUCTS_OF_LIST, list_id)}
        if change.items is not UNSET:
            prices = check_items(change.items)
            product_ids.update(await _check_skus(conn, prices))
            await conn.execute(DELETE_ITEMS, list_id)
            await _insert_items(conn, list_id, prices)
        await conn.execute(UPDATE_LIST, list_id, name, starts_at, ends_at)
        view = await _full_view(conn, list_id)
    return Written(view, sorted(product_ids))


async def end(pool: asyncpg.Pool, list_id: int) -> tuple[Written, bool]:
    """End a price list now. True when it had not been ended before."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchrow(SELECT_LIST_FOR_UPDATE, list_id) is None:
            raise not_found("price list")
        changed = await conn.fetchval(END_LIST, list_id) is not None
        product_ids = [r["product_id"] for r in await conn.fetch(PRODUCTS_OF_LIST, list_id)]
        view = await _full_view(conn, list_id)
    return Written(view, sorted(product_ids)), changed
