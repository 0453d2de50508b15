"""The payment-deadline sweeper as a background task: it sweeps, retries refunds a crash or a
failing provider left behind, and stops on its flag without being cancelled."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from order_writer.lifecycle import ImmediateRefunder, RefundDue, cancel_order, settle
from order_writer.timeouts import PaymentDeadlineSweeper, retry_stale_refunds, sweep_once
from tests.integration.test_lifecycle_helpers import (
    DAY_S,
    make_order,
    refunds,
    status_of,
    stock_returns,
)


class FailingRefunder:
    """A provider that is down."""

    def __init__(self) -> None:
        self.calls: list[RefundDue] = []

    async def refund(self, due: RefundDue) -> None:
        self.calls.append(due)
        raise ConnectionError("provider unavailable")


async def test_sweeper_task_cancels_overdue_orders_and_stops_on_its_flag(
        pg: asyncpg.Pool) -> None:
    overdue = await make_order(pg, qty=1, age_s=2 * DAY_S)
    fresh = await make_order(pg, qty=1)
    sweeper = PaymentDeadlineSweeper(pg, ImmediateRefunder(pg), timeout_s=DAY_S, interval_s=0.05)
    task = asyncio.create_task(sweeper.run())
    deadline = time.monotonic() + 10
    while await status_of(pg, overdue.order_id) != "cancelled":
        assert time.monotonic() < deadline, "the sweeper did not cancel the overdue order"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # several more passes
    sweeper.stop()
    await asyncio.wait_for(task, 2)
    assert not task.cancelled()
    assert await stock_returns(pg, overdue.order_id) == 1
    assert await status_of(pg, fresh.order_id) == "pending_payment"


async def test_an_order_that_cannot_be_cancelled_holds_back_no_other(pg: asyncpg.Pool) -> None:
    # Its sale's counter says nothing was sold (inconsistent data): giving its units back
    # would break CHECK (sold >= 0), so that one order cannot be cancelled.
    broken = await make_order(pg, qty=1, age_s=3 * DAY_S)
    await pg.execute("UPDATE flash_sales SET sold = 0 WHERE id = $1", broken.sale_id)
    sound = await make_order(pg, qty=1, age_s=3 * DAY_S)
    try:
        cancelled = await sweep_once(pg, timeout_s=DAY_S)
        assert sound.order_id in cancelled and broken.order_id not in cancelled
        assert await status_of(pg, sound.order_id) == "cancelled"
        assert await status_of(pg, broken.order_id) == "pending_payment"
        assert await stock_returns(pg, broken.order_id) == 0
    finally:  # mended, so no other sweeper keeps tripping over it
        await pg.execute("UPDATE flash_sales SET sold = 1 WHERE id = $1", broken.sale_id)


async def test_a_long_interval_does_not_delay_shutdown(pg: asyncpg.Pool) -> None:
    sweeper = PaymentDeadlineSweeper(pg, ImmediateRefunder(pg), timeout_s=DAY_S,
                                     interval_s=3600)
    task = asyncio.create_task(sweeper.run())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    sweeper.stop()
    await asyncio.wait_for(task, 2)
    assert time.monotonic() - started < 1 and not task.cancelled()


async def test_a_refund_the_provider_failed_is_offered_again(pg: asyncpg.Pool) -> None:
    order = await make_order(pg, "paid", qty=1)
    failing = FailingRefunder()
    async with pg.acquire() as conn, conn.transaction():
        cancelled = await cancel_order(conn, order.order_id, order.user_id, "customer_cancelled")
    await settle(failing, [cancelled.refund])  # logged, not raised
    assert len(failing.calls) == 1
    assert [r["status"] for r in await refunds(pg, order.order_id)] == ["requested"]
    # Not yet stale: left alone.
    await retry_stale_refunds(pg, ImmediateRefunder(pg), older_than_s=3600)
    assert [r["status"] for r in await refunds(pg, order.order_id)] == ["requested"]
    assert await retry_stale_refunds(pg, ImmediateRefunder(pg), older_than_s=0) >= 1
    assert [r["status"] for r in await refunds(pg, order.order_id)] == ["completed"]
    attempts = await pg.fetchval("SELECT attempts FROM refunds WHERE order_id = $1",
                                 order.order_id)
    assert attempts == 1


async def test_cash_on_delivery_orders_wait_for_the_parcel(pg: asyncpg.Pool) -> None:
    """An overdue order paid by cash on delivery is not cancelled; a plain overdue one is."""
    from order_writer.timeouts import sweep_once

    cod = await make_order(pg, "pending_payment", age_s=2 * DAY_S)
    plain = await make_order(pg, "pending_payment", age_s=2 * DAY_S)
    await pg.execute("INSERT INTO payments (id, order_id, user_id, provider, amount)"
                     " VALUES ($1, $2, $3, 'cod', $4)",
                     f"cod-{cod.order_id[-20:]}", cod.order_id, cod.user_id, cod.total)
    await sweep_once(pg, DAY_S, limit=10_000)
    assert await status_of(pg, cod.order_id) == "pending_payment"
    assert await status_of(pg, plain.order_id) == "cancelled"
