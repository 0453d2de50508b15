"""The order hooks on real PostgreSQL: earning, reversals, spending, levels, idempotency."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from membership import (
    level_of,
    member_price_eligible,
    on_cancelled,
    on_completed,
    on_refunded,
    spendable,
)
from tests.integration.test_points_helpers import (
    completed_order,
    grant,
    ledger_mismatches,
    member,
    new_sale,
    new_user,
    redeem,
    rows_of,
    run_hook,
)


@pytest.fixture(scope="module")
async def sale(pg: asyncpg.Pool) -> tuple[int, int]:
    return await new_sale(pg)


async def test_ledger_refuses_update_delete_and_truncate(pg: asyncpg.Pool) -> None:
    user = new_user()
    await grant(pg, user, 50)
    before = await pg.fetch("SELECT * FROM points_ledger WHERE user_id = $1", user)
    for statement in (
        "UPDATE points_ledger SET delta = 5000 WHERE user_id = $1",
        "DELETE FROM points_ledger WHERE user_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pg.execute(statement, user)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg.execute("TRUNCATE points_ledger")
    assert await pg.fetch("SELECT * FROM points_ledger WHERE user_id = $1", user) == before
    assert await member(pg, user) == (50, 0, 0)


async def test_completion_earns_one_point_per_whole_yuan_and_counts_spending(
        pg: asyncpg.Pool, sale: tuple[int, int]) -> None:
    user = new_user()
    order = await completed_order(pg, user, 12_399, sale)
    assert await run_hook(pg, on_completed, order.order_id) == 123
    assert await rows_of(pg, order.order_id) == [("earn", 123)]
    assert await member(pg, user) == (123, 0, 12_399)
    async with pg.acquire() as conn:
        assert await spendable(conn, user) == (123, 0)
        assert await spendable(conn, new_user()) == (0, 0)


async def test_paid_amount_wins_over_total(pg: asyncpg.Pool, sale: tuple[int, int]) -> None:
    user = new_user()
    order = await completed_order(pg, user, 50_000, sale)
    await pg.execute("UPDATE orders SET paid_amount = $2 WHERE order_id = $1",
                     order.order_id, 30_050)
    assert await run_hook(pg, on_completed, order.order_id) == 300
    assert await member(pg, user) == (300, 0, 30_050)


async def test_under_one_yuan_counts_spending_once_without_a_ledger_row(
        pg: asyncpg.Pool, sale: tuple[int, int]) -> None:
    user = new_user()
    order = await completed_order(pg, user, 99, sale)
    assert await run_hook(pg, on_completed, order.order_id) == 0
    assert await run_hook(pg, on_completed, order.order_id) == 0
    assert await rows_of(pg, order.order_id) == []
    assert await member(pg, user) == (0, 0, 99)
    await run_hook(pg, on_refunded, order.order_id)
    await run_hook(pg, on_refunded, order.order_id)
    assert await member(pg, user) == (0, 0, 0)


async def test_earn_then_refund_reverses_exactly(pg: asyncpg.Pool,
                                                 sale: tuple[int, int]) -> None:
    user = new_user()
    kept = await completed_order(pg, user, 20_000, sale)
    refunded = await completed_order(pg, user, 45_678, sale)
    await grant(pg, user, 1_000)
    await redeem(pg, refunded.order_id, user, 700)
    await run_hook(pg, on_completed, kept.order_id)
    await run_hook(pg, on_completed, refunded.order_id)
    assert await member(pg, user) == (1_000 + 200 + 456 - 700, 700, 65_678)

    for _ in range(2):
        await run_hook(pg, on_refunded, refunded.order_id, actor="staff1")
    assert await rows_of(pg, refunded.order_id) == [
        ("redeem", -700), ("earn", 456), ("earn_reversal", -456), ("redeem_reversal", 700)]
    # Only the refunded order's effects are gone; redeemed counts what was ever redeemed.
    assert await member(pg, user) == (1_000 + 200, 700, 20_000)
    actors = await pg.fetch("SELECT DISTINCT actor FROM points_ledger WHERE order_id = $1"
                            " AND reason LIKE '%reversal'", refunded.order_id)
    assert [r["actor"] for r in actors] == ["staff1"]


async def test_refund_of_points_already_spent_leaves_a_negative_balance(
        pg: asyncpg.Pool, sale: tuple[int, int]) -> None:
    user = new_user()
    first = await completed_order(pg, user, 80_000, sale)
    await run_hook(pg, on_completed, first.order_id)
    second = await completed_order(pg, user, 2_000, sale, status="pending_payment")
    await redeem(pg, second.order_id, user, 800)
    assert await member(pg, user) == (0, 800, 80_000)
    await run_hook(pg, on_refunded, first.order_id)
    assert await member(pg, user) == (-800, 800, 0)
    async with pg.acquire() as conn:
        assert await spendable(conn, user) == (-800, 800)


async def test_cancel_gives_back_redeemed_points_once(pg: asyncpg.Pool,
                                                      sale: tuple[int, int]) -> None:
    user = new_user()
    await grant(pg, user, 500)
    order = await completed_order(pg, user, 3_000, sale, status="pending_payment")
    await redeem(pg, order.order_id, user, 300)
    assert await member(pg, user) == (200, 300, 0)
    await asyncio.gather(*(run_hook(pg, on_cancelled, order.order_id, lock=False)
                           for _ in range(3)))
    assert await rows_of(pg, order.order_id) == [("redeem", -300), ("redeem_reversal", 300)]
    assert await member(pg, user) == (500, 300, 0)


async def test_cancel_without_points_writes_nothing(pg: asyncpg.Pool,
                                                    sale: tuple[int, int]) -> None:
    user = new_user()
    order = await completed_order(pg, user, 3_000, sale, status="pending_payment")
    await run_hook(pg, on_cancelled, order.order_id)
    await run_hook(pg, on_refunded, order.order_id)
    assert await rows_of(pg, order.order_id) == []
    assert await member(pg, user) == (0, 0, 0)


@pytest.mark.parametrize("lock", [True, False])
async def test_hooks_are_idempotent_under_concurrent_double_calls(
        pg: asyncpg.Pool, sale: tuple[int, int], lock: bool) -> None:
    user = new_user()
    orders = [await completed_order(pg, user, 10_000 * (i + 1), sale) for i in range(3)]
    earned = await asyncio.gather(*(run_hook(pg, on_completed, o.order_id, lock=lock)
                                    for o in orders for _ in range(2)))
    assert sorted(earned) == [0, 0, 0, 100, 200, 300]
    assert await member(pg, user) == (600, 0, 60_000)
    await asyncio.gather(*(run_hook(pg, on_refunded, orders[0].order_id, lock=lock)
                           for _ in range(2)))
    assert await rows_of(pg, orders[0].order_id) == [("earn", 100), ("earn_reversal", -100)]
    assert await member(pg, user) == (500, 0, 50_000)
    assert await ledger_mismatches(pg) == []


async def test_level_follows_spending_across_thresholds(pg: asyncpg.Pool,
                                                        sale: tuple[int, int]) -> None:
    thresholds = [r["min_spent"] for r in
                  await pg.fetch("SELECT min_spent FROM member_levels ORDER BY level")]
    assert len(thresholds) >= 3, "needs at least levels 0, 1 and 2"
    user = new_user()
    async with pg.acquire() as conn:
        start = await level_of(conn, user)
        assert start["level"] == 0 and start["spent"] == 0
        assert start["next_level"]["missing"] == thresholds[1]
        assert not await member_price_eligible(conn, user, "customer")
        assert await member_price_eligible(conn, user, "member")

    below = await completed_order(pg, user, thresholds[1] - 1, sale)
    await run_hook(pg, on_completed, below.order_id)
    async with pg.acquire() as conn:
        view = await level_of(conn, user)
        assert (view["level"], view["next_level"]["missing"]) == (0, 1)
        assert not await member_price_eligible(conn, user, "customer")

    one_fen = await completed_order(pg, user, 1, sale)
    await run_hook(pg, on_completed, one_fen.order_id)
    async with pg.acquire() as conn:
        view = await level_of(conn, user)
        assert (view["level"], view["spent"]) == (1, thresholds[1])
        assert view["next_level"]["missing"] == thresholds[2] - thresholds[1]
        assert await member_price_eligible(conn, user, "customer")

    big = await completed_order(pg, user, thresholds[-1], sale)
    await run_hook(pg, on_completed, big.order_id)
    async with pg.acquire() as conn:
        view = await level_of(conn, user)
        assert view["level"] == len(thresholds) - 1 and view["next_level"] is None

    await run_hook(pg, on_refunded, big.order_id)
    await run_hook(pg, on_refunded, one_fen.order_id)
    async with pg.acquire() as conn:
        view = await level_of(conn, user)
        assert (view["level"], view["spent"]) == (0, thresholds[1] - 1)
        assert not await member_price_eligible(conn, user, "staff")
