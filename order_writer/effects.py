"""What an order's status change does to promotions, in the transaction that changes it.

- cancelled before payment: its coupons come back to the wallet (a paid order's do not);
- cancelled (at any point): the points it spent come back;
- completed: the customer earns points and their spending counts towards their level;
- refunded: the points earned are taken back and the points spent come back.
Each step is recorded once per order (membership's ledger and the coupons' order link are the
guards), so a repeated call changes nothing.
"""

from __future__ import annotations

import asyncpg

from coupons.redemption import release_for_order
from membership.hooks import on_cancelled, on_completed, on_refunded


async def apply(conn: asyncpg.Connection, order: asyncpg.Record, from_status: str, to: str,
                actor: str) -> None:
    if to == "cancelled":
        if from_status == "pending_payment":
            await release_for_order(conn, order["order_id"])
        await on_cancelled(conn, order, actor)
    elif to == "completed":
        await on_completed(conn, order, actor)
    elif to == "refunded":
        await on_refunded(conn, order, actor)
