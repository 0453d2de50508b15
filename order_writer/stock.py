"""Stock that comes back: recorded exactly once per order, in the caller's transaction.

Whoever moves an order out of the way of its units (cancel, payment timeout, approved refund)
calls `record_stock_return` inside the transaction that changes the order's status. The row in
`stock_returns` is the once-only guard (its primary key is the order id) and also the outbox
from which the serving processes give the units back to Redis (seckill/returns.py), so a crash
between the commit and Redis loses nothing and repeats nothing.
"""

from __future__ import annotations

import asyncpg

RECORD_RETURN = """
INSERT INTO stock_returns (order_id, sale_id, user_id, reason)
SELECT order_id, sale_id, user_id, $2 FROM orders WHERE order_id = $1
ON CONFLICT (order_id) DO NOTHING
RETURNING sale_id
"""
RECORD_ITEMS = """
INSERT INTO stock_return_items (order_id, sku_id, qty)
SELECT order_id, sku_id, qty FROM order_items WHERE order_id = $1
RETURNING sku_id, qty
"""
RETURN_TO_SALE = "UPDATE flash_sales SET sold = sold - $2 WHERE id = $1"
RETURN_TO_SKU = "UPDATE skus SET sold = sold - $2 WHERE id = $1"


async def record_stock_return(conn: asyncpg.Connection, order_id: str, reason: str) -> bool:
    """Give an order's units back in PostgreSQL and queue them for Redis, once.

    Must run inside the caller's transaction, after the order row was locked (SELECT ... FOR
    UPDATE) and its status changed. Returns False when the order's stock was already returned.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("record_stock_return must run inside a transaction")
    row = await conn.fetchrow(RECORD_RETURN, order_id, reason)
    if row is None:
        return False
    items = await conn.fetch(RECORD_ITEMS, order_id)
    units = sum(i["qty"] for i in items)
    if row["sale_id"] is not None:
        await conn.execute(RETURN_TO_SALE, row["sale_id"], units)
    else:
        for item in sorted(items, key=lambda i: i["sku_id"]):
            await conn.execute(RETURN_TO_SKU, item["sku_id"], item["qty"])
    return True
