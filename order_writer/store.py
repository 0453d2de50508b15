"""Persisting accepted orders: one statement per batch, idempotent by order id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import orjson


class OrderItem(msgspec.Struct, frozen=True):
    sku_id: int
    qty: int
    price: int


class AcceptedOrder(msgspec.Struct, frozen=True):
    """An order as the admission scripts wrote it to an outbox.

    A flash-sale order (lua/admit.lua) names its one SKU inline; a checkout order
    (lua/reserve.lua) lists its items and carries delivery, address and discounts.
    """

    order_id: str
    user_id: str
    total: int
    accepted_at_ms: int
    sale_id: int | None = None
    sku_id: int | None = None
    qty: int | None = None
    price: int | None = None
    items: list[OrderItem] | None = None
    shipping_fee: int = 0
    discount: int = 0
    delivery: str | None = None
    address: dict[str, Any] | None = None
    coupon_ids: list[int] = msgspec.field(default_factory=list)
    points_used: int = 0

    def __post_init__(self) -> None:
        if not self.items and (self.sku_id is None or self.qty is None or self.price is None):
            raise ValueError("an order needs items, or sku_id, qty and price")

    def lines(self) -> list[OrderItem]:
        if self.items:
            return self.items
        assert self.sku_id is not None and self.qty is not None and self.price is not None
        return [OrderItem(self.sku_id, self.qty, self.price)]


_decoder = msgspec.json.Decoder(list[AcceptedOrder])


def decode_orders(body: bytes) -> list[AcceptedOrder]:
    """Raises msgspec.DecodeError / ValidationError for a body that will never be writable."""
    return _decoder.decode(body)


LOCK_SALES = "SELECT 1 FROM flash_sales WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"
LOCK_SKUS = "SELECT 1 FROM skus WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"

# Data-modifying CTEs run as one statement: orders not seen before are inserted, their items
# follow, and the sold counters (per flash sale, or per SKU for checkout orders) move once by
# the units of the orders actually inserted, so a redelivered order changes nothing.
# CHECK (sold <= stock) on both tables is the last line against oversell.
INSERT_ORDERS = """
WITH incoming AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::bigint[], $7::text[], $8::jsonb[], $9::text[], $10::bigint[],
                         $11::timestamptz[])
        AS t(order_id, user_id, sale_id, total, shipping_fee, discount, delivery, address,
             coupon_ids, points_used, created_at)
), lines AS (
    SELECT * FROM unnest($12::text[], $13::bigint[], $14::integer[], $15::bigint[])
        AS l(order_id, sku_id, qty, price)
), inserted AS (
    INSERT INTO orders (order_id, user_id, sale_id, status, total, shipping_fee, discount,
                        delivery, address, coupon_ids, points_used, created_at)
    SELECT order_id, user_id, sale_id, 'pending_payment', total, shipping_fee, discount,
           delivery, address, coupon_ids::bigint[], points_used, created_at
    FROM incoming
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id, sale_id, user_id, coupon_ids, points_used
), coupons_used AS (
    -- checkout reserved these uses atomically with the stock (lua/reserve.lua)
    UPDATE user_coupons u SET state = 'used', order_id = c.order_id, used_at = now()
    FROM (SELECT order_id, unnest(coupon_ids) AS coupon_id FROM inserted) c
    WHERE u.id = c.coupon_id
), points_redeemed AS (
    INSERT INTO points_ledger (user_id, delta, reason, order_id, actor)
    SELECT user_id, -points_used, 'redeem', order_id, 'checkout' FROM inserted
    WHERE points_used > 0
), items AS (
    INSERT INTO order_items (order_id, sku_id, qty, price)
    SELECT l.order_id, l.sku_id, l.qty, l.price FROM lines l JOIN inserted USING (order_id)
), sale_sold AS (
    UPDATE flash_sales f SET sold = f.sold + s.units
    FROM (SELECT i.sale_id, sum(l.qty) AS units FROM inserted i JOIN lines l USING (order_id)
          WHERE i.sale_id IS NOT NULL GROUP BY i.sale_id) s
    WHERE f.id = s.sale_id
), sku_sold AS (
    UPDATE skus k SET sold = k.sold + s.units
    FROM (SELECT l.sku_id, sum(l.qty) AS units FROM inserted i JOIN lines l USING (order_id)
          WHERE i.sale_id IS NULL GROUP BY l.sku_id) s
    WHERE k.id = s.sku_id
)
SELECT order_id FROM inserted
"""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: list[str]
    duplicates: int


def _columns(orders: list[AcceptedOrder]) -> list[list[Any]]:
    """The 15 array parameters of INSERT_ORDERS: eleven order columns, then four line columns."""
    order_rows = []
    line_rows = []
    for o in orders:
        address = orjson.dumps(o.address).decode() if o.address is not None else None
        order_rows.append((o.order_id, o.user_id, o.sale_id, o.total, o.shipping_fee, o.discount,
                           o.delivery, address,
                           "{" + ",".join(map(str, o.coupon_ids)) + "}", o.points_used,
                           datetime.fromtimestamp(o.accepted_at_ms / 1000, tz=UTC)))
        line_rows += [(o.order_id, line.sku_id, line.qty, line.price) for line in o.lines()]
    return [list(column) for column in zip(*order_rows, strict=True)] + \
        [list(column) for column in zip(*line_rows, strict=True)]


async def write_orders(conn: asyncpg.Connection, orders: list[AcceptedOrder]) -> WriteResult:
    """Write one batch in one transaction. The caller owns retries."""
    unique = list({o.order_id: o for o in orders}.values())
    sale_ids = sorted({o.sale_id for o in unique if o.sale_id is not None})
    sku_ids = sorted({line.sku_id for o in unique if o.sale_id is None for line in o.lines()})
    async with conn.transaction():
        # Several writers may hold batches of the same sales and SKUs: lock in one order.
        if len(sale_ids) > 1:
            await conn.execute(LOCK_SALES, sale_ids)
        if sku_ids:
            await conn.execute(LOCK_SKUS, sku_ids)
        rows = await conn.fetch(INSERT_ORDERS, *_columns(unique))
    inserted = [r["order_id"] for r in rows]
    return WriteResult(inserted=inserted, duplicates=len(orders) - len(inserted))
