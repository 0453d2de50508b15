"""A bounded burst of purchase requests against a real server, recording every answer."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import asyncpg
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.stack import request_json, token


@dataclass
class Attempt:
    user: str
    key: str | None
    statuses: list[int] = field(default_factory=list)
    order_id: str | None = None


@dataclass
class BurstResult:
    attempts: list[Attempt]

    def accepted(self) -> dict[str, str]:
        """order id -> user, for every 202."""
        return {a.order_id: a.user for a in self.attempts if a.order_id}

    def final_statuses(self) -> Counter[int]:
        return Counter(a.statuses[-1] for a in self.attempts if a.statuses)


async def fire(url: str, settings: Settings, sale_id: int, attempts: list[Attempt],
               concurrency: int, retries: int = 0, deadline_s: float = 120) -> BurstResult:
    """Send every attempt once; with retries, resend on connection errors and 5xx answers."""
    tokens = {a.user: token(settings, a.user) for a in attempts}
    queue: asyncio.Queue[Attempt] = asyncio.Queue()
    for a in attempts:
        queue.put_nowait(a)
    stop_at = time.monotonic() + deadline_s
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty() and time.monotonic() < stop_at:
            attempt = queue.get_nowait()
            headers = {"Authorization": f"Bearer {tokens[attempt.user]}"}
            if attempt.key:
                headers["Idempotency-Key"] = attempt.key
            for _ in range(retries + 1):
                try:
                    status, body = await request_json(
                        session, "POST", f"{url}/api/v1/flash-sales/{sale_id}/orders",
                        json={"qty": 1}, headers=headers,
                    )
                except (aiohttp.ClientError, TimeoutError):
                    attempt.statuses.append(-1)
                    await asyncio.sleep(random.uniform(0.05, 0.3))
                    continue
                attempt.statuses.append(status)
                if status == 202:
                    attempt.order_id = body["order_id"]
                if status < 500:
                    break
                await asyncio.sleep(random.uniform(0.05, 0.3))

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return BurstResult(attempts)


async def settle(pg: asyncpg.Pool, redis: Redis, settings: Settings, sale_id: int,
                 stock: int, timeout_s: float = 60) -> tuple[int, int]:
    """Wait until every accepted unit is persisted. Returns (remaining in Redis, PG rows)."""
    k = Keys(settings.namespace).sale(sale_id)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = int(await redis.get(k.stock))
        rows = int(await pg.fetchval("SELECT count(*) FROM orders WHERE sale_id = $1", sale_id))
        backlog = await redis.xlen(k.outbox)
        if rows == stock - remaining and backlog == 0:
            return remaining, rows
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not settled: remaining={remaining} rows={rows} outbox={backlog} stock={stock}"
            )
        await asyncio.sleep(0.2)


async def assert_persisted_exactly(pg: asyncpg.Pool, sale_id: int, accepted: dict[str, str],
                                   stock: int, remaining: int, limit: int) -> None:
    rows = await pg.fetch(
        "SELECT o.order_id, o.user_id, i.qty FROM orders o JOIN order_items i USING (order_id)"
        " WHERE o.sale_id = $1", sale_id,
    )
    in_pg = {r["order_id"]: r["user_id"] for r in rows}
    missing = set(accepted) - set(in_pg)
    assert not missing, f"{len(missing)} orders answered 202 are not in PostgreSQL"
    for order_id, user in accepted.items():
        assert in_pg[order_id] == user
    units = sum(r["qty"] for r in rows)
    assert units == stock - remaining, "PostgreSQL units and Redis remaining disagree"
    sold = await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale_id)
    assert sold == units <= stock
    per_user = Counter(r["user_id"] for r in rows)
    assert max(per_user.values(), default=0) <= limit, "a user exceeded the per-user limit"
