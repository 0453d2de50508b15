"""Many writers at once over separate connections: the balance always equals the ledger's sum,
redeemed the sum of redeem rows, spent the cash of completed, unrefunded orders."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from mall.errors import ApiError
from membership import on_cancelled, on_completed, on_refunded
from membership.checkin import check_in
from membership.ledger import adjust
from tests.integration.test_lifecycle_helpers import MadeOrder
from tests.integration.test_points_helpers import (
    completed_order,
    grant,
    ledger_mismatches,
    member,
    new_sale,
    new_user,
    redeem,
    run_hook,
)

USERS = 6
ORDERS_PER_USER = 4
DAYS = 5
START = date(2024, 3, 1)


@pytest.fixture
async def wide_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=24)
    yield pool
    await pool.close()


async def checkin_or_refused(pool: asyncpg.Pool, user: str, day: date) -> int:
    try:
        async with pool.acquire() as conn, conn.transaction():
            return (await check_in(conn, user, day)).points
    except ApiError as err:
        assert err.code == "already_checked_in"
        return 0


async def adjust_in_tx(pool: asyncpg.Pool, user: str, delta: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await adjust(conn, user, delta, "concurrency", "staff")
    return delta


async def shuffled(calls: list[Awaitable[Any]]) -> list[Any]:
    random.shuffle(calls)
    return await asyncio.gather(*calls)


async def test_balances_equal_the_ledger_under_many_concurrent_writers(
        pg: asyncpg.Pool, wide_pool: asyncpg.Pool) -> None:
    sale = await new_sale(pg)
    users = [new_user("cc") for _ in range(USERS)]
    orders: dict[str, list[MadeOrder]] = {}
    pending: dict[str, MadeOrder] = {}
    for user in users:
        await grant(pg, user, 2_000)
        orders[user] = [await completed_order(pg, user, 10_000 + 1_000 * i + 37, sale)
                        for i in range(ORDERS_PER_USER)]
        await redeem(pg, orders[user][0].order_id, user, 150)  # refunded below
        pending[user] = await completed_order(pg, user, 5_000, sale, "pending_payment")
        await redeem(pg, pending[user].order_id, user, 250)  # cancelled below

    days = [START + timedelta(days=d) for d in range(DAYS)]
    first: list[Awaitable[Any]] = []
    for user in users:
        first += [run_hook(wide_pool, on_completed, o.order_id) for o in orders[user]
                  for _ in range(2)]
        first += [run_hook(wide_pool, on_cancelled, pending[user].order_id) for _ in range(2)]
        first += [checkin_or_refused(wide_pool, user, day) for day in days for _ in range(2)]
        first += [adjust_in_tx(wide_pool, user, d) for d in (30, -20, 45, -5)]
    second: list[Awaitable[Any]] = []
    for user in users:
        second += [run_hook(wide_pool, on_refunded, orders[user][0].order_id)
                   for _ in range(3)]
        second += [run_hook(wide_pool, on_completed, o.order_id) for o in orders[user]]
        second += [checkin_or_refused(wide_pool, user, day) for day in days]
        second += [adjust_in_tx(wide_pool, user, d) for d in (-7, 12)]

    await shuffled(first)
    await shuffled(second)

    assert await ledger_mismatches(pg) == [], "every member's balance equals its ledger"
    for user in users:
        checkins = await pg.fetchrow("SELECT count(*) AS n, sum(points) AS points FROM checkins"
                                     " WHERE user_id = $1", user)
        credited = await pg.fetchval("SELECT sum(delta) FROM points_ledger WHERE user_id = $1"
                                     " AND reason = 'checkin'", user)
        assert checkins["n"] == DAYS and credited == checkins["points"]
        kept = orders[user][1:]
        earned = sum(o.total // 100 for o in kept)
        expected = 2_000 + earned + checkins["points"] + 30 - 20 + 45 - 5 - 7 + 12
        assert await member(pg, user) == (expected, 400, sum(o.total for o in kept))
        reasons = await pg.fetch("SELECT reason, count(*) AS n FROM points_ledger"
                                 " WHERE user_id = $1 GROUP BY reason", user)
        assert {r["reason"]: r["n"] for r in reasons} == {
            "adjust": 7, "checkin": DAYS, "earn": ORDERS_PER_USER, "earn_reversal": 1,
            "redeem": 2, "redeem_reversal": 2}


async def test_concurrent_deductions_never_overdraw(wide_pool: asyncpg.Pool) -> None:
    user = new_user("dd")
    await grant(wide_pool, user, 100)

    async def deduct() -> bool:
        try:
            await adjust_in_tx(wide_pool, user, -30)
            return True
        except ApiError as err:
            assert (err.status, err.code) == (409, "points_insufficient")
            return False

    results = await asyncio.gather(*(deduct() for _ in range(10)))
    assert results.count(True) == 3
    assert await member(wide_pool, user) == (10, 0, 0)
    assert await ledger_mismatches(wide_pool) == []
