"""Orders and ledger reads for the points tests; hooks run as the lifecycle runs them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from tests.integration.factories import insert_sale
from tests.integration.test_lifecycle_helpers import MadeOrder, make_order

Hook = Callable[[asyncpg.Connection, Mapping[str, Any], str], Awaitable[Any]]

LOCK_ORDER = """
SELECT order_id, user_id, total, paid_amount, points_used FROM orders
WHERE order_id = $1 FOR UPDATE
"""
# Every member whose balance or redeemed total differs from its ledger (none, ever).
LEDGER_MISMATCHES = """
SELECT coalesce(m.user_id, l.user_id) AS user_id, m.points, l.total, m.redeemed, l.redeemed
FROM members m
FULL JOIN (SELECT user_id, sum(delta) AS total,
                  coalesce(sum(-delta) FILTER (WHERE reason = 'redeem'), 0) AS redeemed
           FROM points_ledger GROUP BY user_id) l USING (user_id)
WHERE m.points IS DISTINCT FROM coalesce(l.total, 0)
   OR m.redeemed IS DISTINCT FROM coalesce(l.redeemed, 0)
"""


def new_user(prefix: str = "pt") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def new_sale(pg: asyncpg.Pool) -> tuple[int, int]:
    return await insert_sale(pg, stock=10_000, price=100)


async def completed_order(pg: asyncpg.Pool, user: str, total: int, sale: tuple[int, int],
                          status: str = "completed") -> MadeOrder:
    """A paid order of `total` fen in `status`, with its payment recorded."""
    return await make_order(pg, status, qty=1, price=total, user=user, sale=sale)


async def redeem(pg: asyncpg.Pool, order_id: str, user: str, points: int) -> None:
    """What checkout writes when an order uses points: the redeem row and points_used."""
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE orders SET points_used = $2 WHERE order_id = $1",
                           order_id, points)
        await conn.execute(
            "INSERT INTO points_ledger (user_id, delta, reason, order_id, actor)"
            " VALUES ($1, $2, 'redeem', $3, 'checkout')", user, -points, order_id)


async def grant(pg: asyncpg.Pool, user: str, points: int) -> None:
    await pg.execute("INSERT INTO points_ledger (user_id, delta, reason, note, actor)"
                     " VALUES ($1, $2, 'adjust', 'grant', 'test')", user, points)


async def run_hook(pg: asyncpg.Pool, hook: Hook, order_id: str, actor: str = "lifecycle",
                   lock: bool = True) -> Any:
    """`hook` in its own transaction after the order row is read (and locked, by default)."""
    query = LOCK_ORDER if lock else LOCK_ORDER.replace(" FOR UPDATE", "")
    async with pg.acquire() as conn, conn.transaction():
        order = await conn.fetchrow(query, order_id)
        assert order is not None
        return await hook(conn, order, actor)


async def member(pg: asyncpg.Pool, user: str) -> tuple[int, int, int]:
    """(points, redeemed, spent); zeros without a row."""
    row = await pg.fetchrow("SELECT points, redeemed, spent FROM members WHERE user_id = $1",
                            user)
    return (row["points"], row["redeemed"], row["spent"]) if row else (0, 0, 0)


async def rows_of(pg: asyncpg.Pool, order_id: str) -> list[tuple[str, int]]:
    rows = await pg.fetch("SELECT reason, delta FROM points_ledger WHERE order_id = $1"
                          " ORDER BY id", order_id)
    return [(r["reason"], r["delta"]) for r in rows]


async def ledger_mismatches(pg: asyncpg.Pool) -> list[asyncpg.Record]:
    return list(await pg.fetch(LEDGER_MISMATCHES))
