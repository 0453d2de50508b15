"""Persisting accepted orders: one statement per batch, idempotent by order id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec


class AcceptedOrder(msgspec.Struct, frozen=True):
    """An order as admit.lua wrote it to the outbox."""

    order_id: str
    user_id: str
    sale_id: int
    sku_id: int
    qty: int
    price: int
    total: int
    accepted_at_ms: int


_decoder = msgspec.json.Decoder(list[AcceptedOrder])


def decode_orders(body: bytes) -> list[AcceptedOrder]:
    """Raises msgspec.DecodeError / ValidationError for a body that will never be writable."""
    return _decoder.decode(body)


LOCK_SALES = "SELECT 1 FROM flash_sales WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"

# Data-modifying CTEs run as one statement: orders not seen before are inserted, their items
# follow, and each sale's sold counter moves once by the units of the orders actually inserted,
# so a redelivered order changes nothing. CHECK (sold <= stock) is the last line against oversell.
INSERT_ORDERS = """
WITH incoming AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::integer[],
                         $6::bigint[], $7::bigint[], $8::timestamptz[])
        AS t(order_id, user_id, sale_id, sku_id, qty, price, total, created_at)
), inserted AS (
    INSERT INTO orders (order_id, user_id, sale_id, status, total, created_at)
    SELECT order_id, user_id, sale_id, 'pending_payment', total, created_at FROM incoming
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id
), items AS (
    INSERT INTO order_items (order_id, sku_id, qty, price)
    SELECT i.order_id, i.sku_id, i.qty, i.price FROM incoming i JOIN inserted USING (order_id)
), sold AS (
    UPDATE flash_sales f SET sold = f.sold + s.units
    FROM (SELECT i.sale_id, sum(i.qty) AS units
          FROM incoming i JOIN inserted USING (order_id) GROUP BY i.sale_id) s
    WHERE f.id = s.sale_id
)
SELECT order_id FROM inserted
"""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: list[str]
    duplicates: int


async def write_orders(conn: asyncpg.Connection, orders: list[AcceptedOrder]) -> WriteResult:
    """Write one batch in one transaction. The caller owns retries."""
    unique = list({o.order_id: o for o in orders}.values())
    columns: tuple[list[object], ...] = ([], [], [], [], [], [], [], [])
    for o in unique:
        created = datetime.fromtimestamp(o.accepted_at_ms / 1000, tz=UTC)
        for column, value in zip(
            columns,
            (o.order_id, o.user_id, o.sale_id, o.sku_id, o.qty, o.price, o.total, created),
            strict=True,
        ):
            column.append(value)
    sale_ids = sorted({o.sale_id for o in unique})
    async with conn.transaction():
        if len(sale_ids) > 1:
            # Several writers may hold batches of the same sales: lock in one order.
            await conn.execute(LOCK_SALES, sale_ids)
        rows = await conn.fetch(INSERT_ORDERS, *columns)
    inserted = [r["order_id"] for r in rows]
    return WriteResult(inserted=inserted, duplicates=len(orders) - len(inserted))
