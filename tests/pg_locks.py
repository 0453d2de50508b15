"""PostgreSQL locks as test levers: hold one from a connection of the test's own, and wait
until another session is provably stuck behind it (pg_stat_activity says it waits on a Lock)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg

WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'
"""


@contextlib.asynccontextmanager
async def holding(database_url: str, statement: str, *args: object,
                  ) -> AsyncIterator[asyncpg.Connection]:
    """Run the statement in a transaction and keep it open, its locks held, until the block
    ends; then roll back."""
    conn = await asyncpg.connect(database_url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(statement, *args)
        yield conn
        await transaction.rollback()
    finally:
        await conn.close()


async def wait_lock_waiter(pool: asyncpg.Pool, query_part: str, timeout_s: float = 60) -> None:
    """Until a session whose current statement contains `query_part` waits on a lock."""
    deadline = time.monotonic() + timeout_s
    while not await pool.fetchval(WAITING, query_part):
        assert time.monotonic() < deadline, f"no session running {query_part!r} waits on a lock"
        await asyncio.sleep(0.05)
