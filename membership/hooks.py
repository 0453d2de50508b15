"""What an order's lifecycle does to its buyer's points and spending, and what checkout reads
(`spendable`, `member_price_eligible`, `level_of`).

Each hook runs inside the caller's transaction, after the caller locked the order row, and is
idempotent: a ledger row is unique per (order_id, reason) and an order's spending is counted
once (member_spending), so a second call is a no-op. `spent` moves only when its record was
really written.

A refund takes back exactly the points the order earned, even when they were already spent:
the balance may then go negative, and further redemptions are refused until it is positive
again (nothing is clawed back from the order that used them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from membership.ledger import spendable
from membership.levels import level_of, member_price_eligible
from membership.points import points_for_cash

# What other packages call, all importable from here.
__all__ = ["level_of", "member_price_eligible", "on_cancelled", "on_completed", "on_refunded",
           "spendable"]

COUNT_SPENDING = """
INSERT INTO member_spending (order_id, user_id, amount) VALUES ($1, $2, $3)
ON CONFLICT (order_id) DO NOTHING
RETURNING amount
"""
UNCOUNT_SPENDING = """
UPDATE member_spending SET refunded_at = now()
WHERE order_id = $1 AND refunded_at IS NULL
RETURNING user_id, amount
"""
ADD_SPENT = """
INSERT INTO members AS m (user_id, spent) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET spent = m.spent + excluded.spent, updated_at = now()
"""
SUBTRACT_SPENT = """
UPDATE members SET spent = greatest(spent - $2, 0), updated_at = now() WHERE user_id = $1
"""
EARN = """
INSERT INTO points_ledger (user_id, delta, reason, order_id, actor)
VALUES ($1, $2, 'earn', $3, $4)
ON CONFLICT (order_id, reason) WHERE order_id IS NOT NULL DO NOTHING
RETURNING delta
"""
# The reversal of an order's `original` row, by the same amount and at most once.
REVERSE = """
INSERT INTO points_ledger (user_id, delta, reason, order_id, actor)
SELECT user_id, -delta, $3, order_id, $2 FROM points_ledger
WHERE order_id = $1 AND reason = $4
ON CONFLICT (order_id, reason) WHERE order_id IS NOT NULL DO NOTHING
RETURNING delta
"""


def cash_paid(order: Mapping[str, Any]) -> int:
    paid = order["paid_amount"]
    return int(paid if paid is not None else order["total"])


async def on_completed(conn: asyncpg.Connection, order: Mapping[str, Any], actor: str) -> int:
    """Count the order's cash into `spent` and earn its points. Returns the points earned now
    (0 when the order was already counted, or paid less than one yuan in cash)."""
    cash = cash_paid(order)
    counted = await conn.fetchval(COUNT_SPENDING, order["order_id"], order["user_id"], cash)
    if counted is None:
        return 0
    if cash > 0:
        await conn.execute(ADD_SPENT, order["user_id"], cash)
    points = points_for_cash(cash)
    if points == 0:
        return 0
    earned = await conn.fetchval(EARN, order["user_id"], points, order["order_id"], actor)
    return int(earned or 0)


async def _reverse(conn: asyncpg.Connection, order_id: str, actor: str, original: str) -> int:
    delta = await conn.fetchval(REVERSE, order_id, actor, f"{original}_reversal", original)
    return int(delta or 0)


async def on_refunded(conn: asyncpg.Connection, order: Mapping[str, Any], actor: str) -> None:
    """Take back what the order earned and its spending; give back the points it used."""
    await _reverse(conn, order["order_id"], actor, "earn")
    uncounted = await conn.fetchrow(UNCOUNT_SPENDING, order["order_id"])
    if uncounted is not None and uncounted["amount"] > 0:
        await conn.execute(SUBTRACT_SPENT, uncounted["user_id"], uncounted["amount"])
    await _reverse(conn, order["order_id"], actor, "redeem")


async def on_cancelled(conn: asyncpg.Connection, order: Mapping[str, Any], actor: str) -> None:
    """Give back the points a cancelled order used (nothing was earned before completion)."""
    await _reverse(conn, order["order_id"], actor, "redeem")
