"""Races on one order, forced both ways with row locks and fired for real with gather:
stock comes back once, and an order never ends both paid and cancelled."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mall.errors import ApiError
from order_writer.lifecycle import (
    Cancellation,
    ImmediateRefunder,
    PaymentOutcome,
    cancel_order,
    mark_paid,
    record_payment,
)
from order_writer.timeouts import cancel_overdue, sweep_once
from tests.integration.test_lifecycle_helpers import (
    DAY_S,
    MadeOrder,
    make_order,
    refunds,
    sold,
    status_of,
    steps,
    stock_returns,
)

AGE_ORDER = "UPDATE orders SET created_at = now() - interval '2 days' WHERE order_id = $1"


async def cancel_in_own_tx(pg: asyncpg.Pool, order: MadeOrder) -> Cancellation | ApiError:
    try:
        async with pg.acquire() as conn, conn.transaction():
            return await cancel_order(conn, order.order_id, order.user_id, "customer_cancelled",
                                      owner=order.user_id)
    except ApiError as err:
        return err


async def cancelled_steps(pg: asyncpg.Pool, order_id: str) -> int:
    return sum(1 for s in await steps(pg, order_id) if s[1] == "cancelled")


@pytest.mark.parametrize("start", ["pending_payment", "paid"])
async def test_two_cancels_at_once_return_stock_once(pg: asyncpg.Pool, start: str) -> None:
    order = await make_order(pg, start, qty=3)
    assert await sold(pg, order.sale_id) == 3
    results = await asyncio.gather(cancel_in_own_tx(pg, order), cancel_in_own_tx(pg, order))
    wins = [r for r in results if isinstance(r, Cancellation)]
    losses = [r for r in results if isinstance(r, ApiError)]
    assert len(wins) == 1 and len(losses) == 1
    assert losses[0].status == 409 and losses[0].details is not None
    assert losses[0].details["current_status"] == "cancelled"
    assert wins[0].stock_returned and wins[0].from_status == start
    assert await sold(pg, order.sale_id) == 0
    assert await stock_returns(pg, order.order_id) == 1
    assert await cancelled_steps(pg, order.order_id) == 1
    expected_refunds = [("cancel", order.total, "requested")] if start == "paid" else []
    assert [tuple(r) for r in await refunds(pg, order.order_id)] == expected_refunds


async def test_second_cancel_waits_for_the_first_and_is_refused(pg: asyncpg.Pool) -> None:
    order = await make_order(pg, qty=2)
    async with pg.acquire() as first:
        tx = first.transaction()
        await tx.start()
        await cancel_order(first, order.order_id, order.user_id, "customer_cancelled")
        second = asyncio.create_task(cancel_in_own_tx(pg, order))
        await asyncio.sleep(0.3)
        assert not second.done(), "the second cancel must wait for the order's row lock"
        await tx.commit()
    result = await second
    assert isinstance(result, ApiError) and result.status == 409
    assert await sold(pg, order.sale_id) == 0 and await stock_returns(pg, order.order_id) == 1


async def test_racing_sweepers_cancel_each_overdue_order_once(pg: asyncpg.Pool) -> None:
    sale_orders = [await make_order(pg, qty=1, age_s=2 * DAY_S) for _ in range(3)]
    shared = await make_order(pg, qty=2, age_s=2 * DAY_S)
    shared_too = await make_order(pg, qty=1, age_s=2 * DAY_S, sale=(shared.sale_id, shared.sku_id))
    fresh = await make_order(pg, qty=1, sale=(shared.sale_id, shared.sku_id))
    mine = [*sale_orders, shared, shared_too]
    results = await asyncio.gather(*(sweep_once(pg, DAY_S, limit=2) for _ in range(6)))
    await sweep_once(pg, DAY_S)  # whatever the small batches left
    taken = [oid for batch in results for oid in batch]
    assert len(taken) == len(set(taken)), "two sweepers cancelled the same order"
    for order in mine:
        assert await status_of(pg, order.order_id) == "cancelled"
        assert await stock_returns(pg, order.order_id) == 1
        assert await cancelled_steps(pg, order.order_id) == 1
        assert (await steps(pg, order.order_id))[-1][2:] == ("payment_timeout", "system")
    for order in sale_orders:
        assert await sold(pg, order.sale_id) == 0
    assert await sold(pg, shared.sale_id) == fresh.qty
    assert await status_of(pg, fresh.order_id) == "pending_payment"


async def test_payment_first_then_the_sweeper_skips_and_finds_nothing(
        pg: asyncpg.Pool) -> None:
    # Overdue for this test's sweeps (600 s) but not yet for the app's (900 s by default).
    order = await make_order(pg, qty=2, age_s=700)
    async with pg.acquire() as payer:
        tx = payer.transaction()
        await tx.start()
        paid = await mark_paid(payer, order.order_id, order.total, "alipay", "pay-1", "system")
        assert paid.outcome is PaymentOutcome.PAID
        # The order is overdue and locked: a sweeper passes it by instead of waiting.
        skipped = await asyncio.wait_for(sweep_once(pg, 600), 2)
        assert order.order_id not in skipped
        await tx.commit()
    assert order.order_id not in await sweep_once(pg, 600)
    assert await status_of(pg, order.order_id) == "paid"
    assert await stock_returns(pg, order.order_id) == 0 and await sold(pg, order.sale_id) == 2
    assert await refunds(pg, order.order_id) == []


async def test_sweeper_first_then_the_payment_is_refunded(pg: asyncpg.Pool) -> None:
    order = await make_order(pg, qty=2)
    refunder = ImmediateRefunder(pg)
    async with pg.acquire() as sweeper:
        tx = sweeper.transaction()
        await tx.start()
        await sweeper.execute(AGE_ORDER, order.order_id)
        assert order.order_id in await cancel_overdue(sweeper, DAY_S)
        payment = asyncio.create_task(record_payment(
            pg, refunder, order.order_id, order.total, "alipay", "pay-2", "system"))
        await asyncio.sleep(0.3)
        assert not payment.done(), "the payment must wait for the sweeper's row lock"
        await tx.commit()
    result = await payment
    assert result.outcome is PaymentOutcome.REFUND_NEEDED and result.status == "cancelled"
    assert await status_of(pg, order.order_id) == "cancelled"
    assert await pg.fetchval("SELECT paid_at FROM orders WHERE order_id = $1",
                             order.order_id) is None
    assert [tuple(r) for r in await refunds(pg, order.order_id)] == [
        ("payment:alipay:pay-2", order.total, "completed")]
    assert await stock_returns(pg, order.order_id) == 1 and await sold(pg, order.sale_id) == 0
    # The provider reports the same payment again: still one refund.
    again = await record_payment(pg, refunder, order.order_id, order.total, "alipay", "pay-2",
                                 "system")
    assert again.outcome is PaymentOutcome.REFUND_NEEDED
    assert len(await refunds(pg, order.order_id)) == 1


async def test_payment_racing_the_deadline_ends_paid_or_cancelled_never_both(
        pg: asyncpg.Pool) -> None:
    refunder = ImmediateRefunder(pg)
    outcomes = set()
    for i in range(15):
        order = await make_order(pg, qty=1, age_s=2 * DAY_S)
        await asyncio.gather(
            record_payment(pg, refunder, order.order_id, order.total, "wx", f"r{i}", "system"),
            sweep_once(pg, DAY_S),
        )
        status = await status_of(pg, order.order_id)
        money_back = await refunds(pg, order.order_id)
        returned = await stock_returns(pg, order.order_id)
        if status == "paid":
            assert money_back == [] and returned == 0
        else:
            assert status == "cancelled" and returned == 1
            assert [r["status"] for r in money_back] == ["completed"]
        outcomes.add(status)
    assert outcomes <= {"paid", "cancelled"}


async def test_mark_paid_checks_the_amount_and_is_idempotent(pg: asyncpg.Pool) -> None:
    order = await make_order(pg, qty=2)
    async with pg.acquire() as conn:
        with pytest.raises(ApiError) as caught:
            async with conn.transaction():
                await mark_paid(conn, order.order_id, order.total - 1, "wx", "p1", "system")
        assert caught.value.status == 409 and caught.value.code == "amount_mismatch"
        async with conn.transaction():
            first = await mark_paid(conn, order.order_id, order.total, "wx", "p1", "system")
        async with conn.transaction():
            again = await mark_paid(conn, order.order_id, order.total, "wx", "p1", "system")
        async with conn.transaction():
            other = await mark_paid(conn, order.order_id, order.total, "wx", "p2", "system")
    assert (first.outcome, again.outcome) == (PaymentOutcome.PAID, PaymentOutcome.ALREADY_PAID)
    assert other.outcome is PaymentOutcome.REFUND_NEEDED and other.status == "paid"
    assert [tuple(r) for r in await refunds(pg, order.order_id)] == [
        ("payment:wx:p2", order.total, "requested")]
    assert [s[1] for s in await steps(pg, order.order_id)] == [
        "pending_payment", "paid", "paid"]
