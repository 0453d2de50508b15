"""The payment deadline: orders still unpaid `payment_timeout_s` after acceptance are cancelled.

Every serving process runs a sweeper. Overdue orders are claimed with FOR UPDATE SKIP LOCKED,
so two sweepers never take the same order, and an order a payment or a customer is working on
right now (its row locked) is left for the next pass. Claimed orders are handled in sale order,
so the sale counters that record_stock_return touches are locked in one order across sweepers.

The sweeper also offers refunds still `requested` after `REFUND_RETRY_S` to the Refunder again
(a crash between a commit and the Refunder call leaves one behind).
"""

from __future__ import annotations

import logging

import asyncpg

from mall.background import StoppableLoop
from order_writer.history import SYSTEM_ACTOR
from order_writer.lifecycle import RefundDue, Refunder, cancel_order, settle

log = logging.getLogger(__name__)

PAYMENT_TIMEOUT_REASON = "payment_timeout"
SWEEP_BATCH = 200
REFUND_RETRY_S = 60.0

CLAIM_OVERDUE = """
SELECT order_id FROM orders
WHERE status = 'pending_payment' AND created_at < now() - make_interval(secs => $1)
  -- cash on delivery is paid when the parcel arrives, not within the deadline
  AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = orders.order_id
                  AND p.provider = 'cod' AND p.status = 'created')
ORDER BY created_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
SALE_OF_ORDERS = """
SELECT order_id FROM orders WHERE order_id = ANY($1::text[])
ORDER BY sale_id NULLS LAST, order_id
"""
CLAIM_STALE_REFUNDS = """
UPDATE refunds SET attempts = attempts + 1, last_attempt_at = now()
WHERE id IN (
    SELECT id FROM refunds
    WHERE status = 'requested'
      AND coalesce(last_attempt_at, requested_at) < now() - make_interval(secs => $1)
    ORDER BY id LIMIT $2
    FOR UPDATE SKIP LOCKED)
RETURNING id, order_id, source, amount, currency
"""


async def cancel_overdue(conn: asyncpg.Connection, timeout_s: float,
                         limit: int = SWEEP_BATCH) -> list[str]:
    """Cancel up to `limit` overdue orders in the caller's transaction; their ids."""
    claimed = [r["order_id"] for r in await conn.fetch(CLAIM_OVERDUE, timeout_s, limit)]
    ordered = [r["order_id"] for r in await conn.fetch(SALE_OF_ORDERS, claimed)]
    cancelled = []
    for order_id in ordered:
        try:
            async with conn.transaction():  # a savepoint: one bad order spoils only itself
                await cancel_order(conn, order_id, SYSTEM_ACTOR, PAYMENT_TIMEOUT_REASON,
                                   expected_from="pending_payment")
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
            log.error("order %s is past its payment deadline but cannot be cancelled",
                      order_id, exc_info=True)
            continue
        cancelled.append(order_id)
    return cancelled


async def sweep_once(pool: asyncpg.Pool, timeout_s: float, limit: int = SWEEP_BATCH) -> list[str]:
    async with pool.acquire() as conn, conn.transaction():
        return await cancel_overdue(conn, timeout_s, limit)


async def retry_stale_refunds(pool: asyncpg.Pool, refunder: Refunder,
                              older_than_s: float = REFUND_RETRY_S) -> int:
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(CLAIM_STALE_REFUNDS, older_than_s, SWEEP_BATCH)
    await settle(refunder, [RefundDue.of(r) for r in rows])
    return len(rows)


class PaymentDeadlineSweeper(StoppableLoop):
    """Runs until `stop()`: one pass every `interval_s`, stopping between passes."""

    def __init__(self, pool: asyncpg.Pool, refunder: Refunder, timeout_s: float,
                 interval_s: float) -> None:
        super().__init__()
        self._pool = pool
        self._refunder = refunder
        self._timeout_s = timeout_s
        self.interval_s = interval_s

    async def step(self) -> None:
        await self.sweep()

    async def sweep(self) -> int:
        cancelled = 0
        while not self.stopping:
            batch = await sweep_once(self._pool, self._timeout_s)
            cancelled += len(batch)
            if len(batch) < SWEEP_BATCH:
                break
        if cancelled:
            log.info("cancelled %d orders past their payment deadline", cancelled)
        await retry_stale_refunds(self._pool, self._refunder)
        return cancelled
