"""Rows the integration tests need, inserted straight into PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from mall.keys import make_order_id
from order_writer.store import AcceptedOrder


async def insert_sale(pg: asyncpg.Pool, stock: int = 10, price: int = 500) -> tuple[int, int]:
    """A product, a SKU and a live flash sale of `stock` units. Returns (sale id, sku id)."""
    async with pg.acquire() as conn, conn.transaction():
        product = await conn.fetchval("INSERT INTO products (name) VALUES ('p') RETURNING id")
        sku = await conn.fetchval(
            "INSERT INTO skus (product_id, price, stock) VALUES ($1, $2, 0) RETURNING id",
            product, price,
        )
        now = datetime.now(UTC)
        sale = await conn.fetchval(
            "INSERT INTO flash_sales (sku_id, price, stock, per_user_limit, starts_at, ends_at,"
            " created_by) VALUES ($1, $2, $3, 1, $4, $5, 'test') RETURNING id",
            sku, price, stock, now - timedelta(minutes=1), now + timedelta(hours=1),
        )
    return int(sale), int(sku)


def order(sale_id: int, sku_id: int, user: str, qty: int = 1, price: int = 500) -> AcceptedOrder:
    return AcceptedOrder(
        order_id=make_order_id(sale_id, uuid.uuid4().hex), user_id=user, sale_id=sale_id,
        sku_id=sku_id, qty=qty, price=price, total=price * qty,
        accepted_at_ms=int(time.time() * 1000),
    )
