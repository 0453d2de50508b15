"""kill -9 the writer and the serving process (API and relay) in the middle of a burst,
restart them, and check that every 202 ends as exactly one order row."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.e2e.burst import Attempt, assert_persisted_exactly, fire, settle
from tests.e2e.test_concurrency import create_sale_http
from tests.stack import Stack

SIZES = [
    pytest.param(2_000, 2_600, id="burst"),
    pytest.param(20_000, 24_000, id="soak", marks=pytest.mark.soak),
]


async def chaos(stack: Stack, stock: int, stock_left,  # type: ignore[no-untyped-def]
                done: asyncio.Event, log: list[tuple[str, int]]) -> None:
    """kill -9 the writer or the server each time another fifth of the stock has sold."""
    plan = [("server", 0.85), ("writer", 0.7), ("server", 0.5), ("writer", 0.35),
            ("server", 0.2), ("writer", 0.1)]
    for victim, fraction in plan:
        while not done.is_set() and await stock_left() > stock * fraction:  # noqa: ASYNC110
            await asyncio.sleep(random.uniform(0.005, 0.03))
        if done.is_set():
            break
        left = await stock_left()
        if victim == "writer":
            stack.writer.restart()
        else:
            stack.server.restart()
            await stack.wait_ready()
        log.append((victim, left))


@pytest.mark.parametrize("stock,users", SIZES)
async def test_kill_9_mid_burst_loses_and_duplicates_nothing(
    fresh_settings: Settings, pg: asyncpg.Pool, redis: Redis, stock: int, users: int
) -> None:
    stack = Stack.create(fresh_settings, "crash", workers=1)
    try:
        await stack.start()
        sale_id = await create_sale_http(stack.url, fresh_settings, stock, 1)
        # One click per user with an Idempotency-Key; a client whose connection died retries
        # with the same key, as a storefront does.
        attempts = [Attempt(f"k{u}", f"k{u}-click") for u in range(users)]
        done = asyncio.Event()
        killed: list[tuple[str, int]] = []

        async def stock_left() -> int:
            return int(await redis.get(Keys(fresh_settings.namespace).sale(sale_id).stock))

        chaos_task = asyncio.create_task(chaos(stack, stock, stock_left, done, killed))
        # A slow trickle so the kills land in the middle of the burst.
        result = await fire(stack.url, fresh_settings, sale_id, attempts, concurrency=16,
                            retries=40, deadline_s=300)
        done.set()
        await chaos_task
        # Both kinds of process died while there was still stock to sell.
        assert {v for v, left in killed if left > 0} == {"writer", "server"}, killed
        if not stack.writer.alive():
            stack.writer.start()

        accepted = result.accepted()
        assert accepted, "nothing was accepted"
        retried = sum(1 for a in result.attempts if len(a.statuses) > 1)
        print(f"kills={killed} accepted={len(accepted)} retried={retried} "
              f"final={dict(result.final_statuses())}")
        remaining, rows = await settle(pg, redis, fresh_settings, sale_id, stock, timeout_s=90)
        await assert_persisted_exactly(pg, sale_id, accepted, stock, remaining, limit=1)
        # Every user who was answered 202 owns exactly the one row that answer named.
        owners = await pg.fetch("SELECT user_id, count(*) AS n FROM orders WHERE sale_id = $1"
                                " GROUP BY user_id", sale_id)
        assert all(r["n"] == 1 for r in owners)
        assert set(accepted.values()) <= {r["user_id"] for r in owners}
        assert stack.server.restarts >= 1 and stack.writer.restarts >= 1
    finally:
        stack.stop()
