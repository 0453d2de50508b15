"""The staff report of one flash sale: PostgreSQL's persisted figures beside Redis's live ones.

Definitions:
- `accepted`: units Redis has handed to buyers and not taken back (stock - remaining - units
  given back to the SKU); `sold` is what PostgreSQL has persisted, net of returns; the
  difference is in flight and settles to zero.
- `paid_orders` / `revenue`: orders paid and not refunded or cancelled (paid, shipped,
  delivered, completed), and the sum of their totals.
- `buyers`: distinct users with a persisted order of the sale, whatever its status.
- `units_returned`: units of cancelled, timed-out or refunded orders given back to the sale.
- `sold_out_at`: the first moment the units accepted, minus those returned by then, reached the
  stock; `sell_out_seconds` counts from the start.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import asyncpg
from redis.asyncio import Redis

from mall.errors import not_found
from seckill.shards import ShardedStock

PAID_STATUSES = ["paid", "shipped", "delivered", "completed"]

SALE = """
SELECT id, stock, sold, returned_to_sku, starts_at, least(ends_at, closed_at) AS ends_at,
       closed_at
FROM flash_sales WHERE id = $1
"""
ORDER_FIGURES = """
SELECT count(*) FILTER (WHERE status = ANY($2::text[])) AS paid_orders,
       coalesce(sum(total) FILTER (WHERE status = ANY($2::text[])), 0)::bigint AS revenue,
       count(DISTINCT user_id) AS buyers,
       count(*) AS orders
FROM orders WHERE sale_id = $1
"""
BY_STATUS = "SELECT status, count(*) AS n FROM orders WHERE sale_id = $1 GROUP BY status"
UNITS_RETURNED = """
SELECT coalesce(sum(i.qty), 0)::bigint
FROM stock_returns r JOIN stock_return_items i USING (order_id)
WHERE r.sale_id = $1
"""
# Accepted units count up at each order's acceptance, returned units down when recorded.
SOLD_OUT_AT = """
WITH moves AS (
    SELECT o.created_at AS at, 0 AS rank, i.qty AS units, o.order_id
    FROM orders o JOIN order_items i USING (order_id) WHERE o.sale_id = $1
    UNION ALL
    SELECT r.recorded_at, 1, -i.qty, r.order_id
    FROM stock_returns r JOIN stock_return_items i USING (order_id) WHERE r.sale_id = $1
), running AS (
    SELECT at, sum(units) OVER (ORDER BY at, rank, order_id) AS held FROM moves
)
SELECT min(at) FROM running WHERE held >= $2
"""


async def sale_report(pool: asyncpg.Pool, redis: Redis, shards: ShardedStock,
                      sale_id: int) -> dict[str, Any]:
    sale = await pool.fetchrow(SALE, sale_id)
    if sale is None:
        raise not_found("flash sale")
    async with pool.acquire() as conn:
        figures = await conn.fetchrow(ORDER_FIGURES, sale_id, PAID_STATUSES)
        by_status = {r["status"]: r["n"] for r in await conn.fetch(BY_STATUS, sale_id)}
        returned = await conn.fetchval(UNITS_RETURNED, sale_id)
        sold_out_at = await conn.fetchval(SOLD_OUT_AT, sale_id, sale["stock"])
    shard_keys = await shards.shard_keys(sale_id)
    meta_stock = await redis.hget(shard_keys[0].meta, "stock")
    to_sku = 0
    for k in shard_keys:
        to_sku += int(await redis.hget(k.meta, "to_sku") or 0)
    remaining = await shards.remaining(sale_id)
    accepted = None
    if meta_stock is not None:
        accepted = int(meta_stock) - int(remaining or 0) - to_sku
    return {
        "id": sale_id,
        "stock": sale["stock"],
        "sold": sale["sold"],
        "accepted": accepted,
        "in_flight": None if accepted is None else accepted - sale["sold"],
        "remaining": None if meta_stock is None else int(remaining or 0),
        "returned_to_sku": sale["returned_to_sku"],
        "paid_orders": figures["paid_orders"],
        "revenue": figures["revenue"],
        "currency": "CNY",
        "buyers": figures["buyers"],
        "orders": figures["orders"],
        "units_returned": returned,
        "sold_out": sold_out_at is not None,
        "sold_out_at": sold_out_at.astimezone(UTC).isoformat() if sold_out_at else None,
        "sell_out_seconds": ((sold_out_at - sale["starts_at"]).total_seconds()
                             if sold_out_at else None),
        "orders_by_status": by_status,
        "starts_at": sale["starts_at"].astimezone(UTC).isoformat(),
        "ends_at": sale["ends_at"].astimezone(UTC).isoformat(),
        "closed": sale["closed_at"] is not None,
    }
