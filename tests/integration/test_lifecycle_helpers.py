"""Orders in any status for the lifecycle tests, made through the writer's own insert."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import asyncpg

from mall.keys import make_order_id
from order_writer.store import AcceptedOrder, write_orders
from tests.integration.factories import insert_sale

DAY_S = 86_400.0


@dataclass(frozen=True)
class MadeOrder:
    order_id: str
    user_id: str
    sale_id: int
    sku_id: int
    qty: int
    total: int


PAID_STATUSES = {"paid", "shipped", "delivered", "completed"}


async def make_order(pg: asyncpg.Pool, status: str = "pending_payment", qty: int = 2,
                     price: int = 500, age_s: float = 0.0, user: str | None = None,
                     sale: tuple[int, int] | None = None) -> MadeOrder:
    """A persisted order (its sale's sold counter moved as the writer moves it), then put in
    `status` directly: setting up a starting state is the only reason a test writes a status."""
    sale_id, sku_id = sale if sale is not None else await insert_sale(pg, stock=10, price=price)
    user_id = user or f"u{uuid.uuid4().hex[:12]}"
    accepted = AcceptedOrder(
        order_id=make_order_id(sale_id, uuid.uuid4().hex), user_id=user_id, sale_id=sale_id,
        sku_id=sku_id, qty=qty, price=price, total=price * qty,
        accepted_at_ms=int((time.time() - age_s) * 1000),
    )
    async with pg.acquire() as conn:
        await write_orders(conn, [accepted])
        if status != "pending_payment":
            await conn.execute("UPDATE orders SET status = $2 WHERE order_id = $1",
                               accepted.order_id, status)
        if status in PAID_STATUSES:
            # Paid through the sandbox provider, so refunds have a payment to go back through.
            payment_id = f"pay{uuid.uuid4().hex[:20]}"
            await conn.execute(
                "INSERT INTO payments (id, order_id, user_id, provider, amount, status)"
                " VALUES ($1, $2, $3, 'sandbox', $4, 'succeeded')",
                payment_id, accepted.order_id, user_id, price * qty)
            await conn.execute(
                "UPDATE orders SET payment_provider = 'sandbox', payment_ref = $2,"
                " paid_amount = $3, paid_at = now() WHERE order_id = $1",
                accepted.order_id, payment_id, price * qty)
    return MadeOrder(accepted.order_id, user_id, sale_id, sku_id, qty, price * qty)


async def status_of(pg: asyncpg.Pool, order_id: str) -> str:
    return str(await pg.fetchval("SELECT status FROM orders WHERE order_id = $1", order_id))


async def sold(pg: asyncpg.Pool, sale_id: int) -> int:
    return int(await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale_id))


async def steps(pg: asyncpg.Pool, order_id: str) -> list[tuple[str | None, str, str, str]]:
    rows = await pg.fetch("SELECT from_status, to_status, reason, actor FROM order_history"
                          " WHERE order_id = $1 ORDER BY id", order_id)
    return [(r["from_status"], r["to_status"], r["reason"], r["actor"]) for r in rows]


async def stock_returns(pg: asyncpg.Pool, order_id: str) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM stock_returns WHERE order_id = $1",
                                 order_id))


async def refunds(pg: asyncpg.Pool, order_id: str) -> list[asyncpg.Record]:
    return list(await pg.fetch("SELECT source, amount, status FROM refunds WHERE order_id = $1"
                               " ORDER BY id", order_id))
