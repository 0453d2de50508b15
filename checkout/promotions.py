"""What promotions take off an order at checkout: member prices, coupons and points.

Everything here is read from PostgreSQL in one snapshot and only proposed: lua/reserve.lua then
reserves the coupons' uses and the points atomically with the stock, so two checkouts racing
for the same coupon or the same points cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from checkout.coupons import PricedLine
from checkout.reservation import PointsSpend
from coupons.redemption import quote
from membership.hooks import member_price_eligible, spendable
from membership.points import POINT_VALUE_FEN, redeemable


@dataclass(frozen=True, slots=True)
class Deductions:
    discount: int = 0  # coupons, fen
    coupons: list[tuple[int, int]] = field(default_factory=list)  # (user coupon id, returned)
    points: PointsSpend | None = None

    @property
    def points_value(self) -> int:
        return self.points.wanted * POINT_VALUE_FEN if self.points else 0


async def is_member(pool: asyncpg.Pool, user_id: str, role: str) -> bool:
    async with pool.acquire() as conn:
        return await member_price_eligible(conn, user_id, role)


async def deductions(pool: asyncpg.Pool, user_id: str, coupon_ids: list[int], points: int,
                     lines: list[PricedLine]) -> Deductions:
    """The coupons' discount and the points to spend; raises ApiError when they do not apply."""
    if not coupon_ids and not points:
        return Deductions()
    subtotal = sum(line.unit_price * line.qty for line in lines)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                       readonly=True):
        discount, holds = 0, []
        if coupon_ids:
            q = await quote(conn, user_id, coupon_ids, lines, datetime.now(UTC))
            discount, holds = min(q.discount, subtotal), list(q.holds)
        spend = None
        if points:
            balance, redeemed = await spendable(conn, user_id)
            wanted = redeemable(balance, subtotal - discount, points)
            spend = PointsSpend(wanted, balance, redeemed)
    return Deductions(discount, holds, spend)
