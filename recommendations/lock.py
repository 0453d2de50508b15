"""The refresh lock: one process at a time rebuilds the recommendations.

Taken with `SET key token NX PX ttl`. Every write of a refresh goes through `fenced()`, a
MULTI under WATCH of the lock that checks the token and renews the expiry, so a process whose
lock expired (a long pause, a slow database) can no longer write: its next batch fails with
`LockLost` and the counts it had not committed are left to the new holder.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError


class LockLost(Exception):
    """The lock expired or was taken by another process while a refresh held it."""


class RefreshLock:
    def __init__(self, redis: Redis, key: str, ttl_ms: int) -> None:
        self._redis = redis
        self._key = key
        self._ttl_ms = ttl_ms
        self._token = secrets.token_hex(16).encode()

    async def acquire(self) -> bool:
        return bool(await self._redis.set(self._key, self._token, nx=True, px=self._ttl_ms))

    async def fenced(self, queue: Callable[[Pipeline], object]) -> None:
        """Run the commands `queue` adds to a pipeline atomically, only while we hold the lock."""
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self._key)
            if await pipe.get(self._key) != self._token:
                raise LockLost(self._key)
            pipe.multi()
            queue(pipe)
            pipe.pexpire(self._key, self._ttl_ms)
            try:
                await pipe.execute()
            except WatchError:
                raise LockLost(self._key) from None

    async def release(self) -> None:
        """Delete the lock if it is still ours (compare and delete under WATCH)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self._key)
            if await pipe.get(self._key) != self._token:
                await pipe.unwatch()
                return
            pipe.multi()
            pipe.delete(self._key)
            try:
                await pipe.execute()
            except WatchError:
                pass  # someone else's lock now: leave it
