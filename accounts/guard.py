"""Brute-force protection for log-ins: failure counters per account and per client IP.

Each attempt reserves a failure *before* the password or code is checked (INCR, then EXPIRE NX,
in one MULTI/EXEC), so concurrent attempts can never get past the limit, and a locked account
answers 429 without its password being verified. A success gives the reservation back.
"""

from __future__ import annotations

from redis.asyncio import Redis

from accounts.keys import AccountKeys
from mall.errors import ApiError


def too_many_attempts(retry_after_s: int) -> ApiError:
    return ApiError(
        429, "too_many_attempts", "too many failed log-in attempts; try again later",
        headers={"Retry-After": str(max(retry_after_s, 1))},
    )


class LoginGuard:
    def __init__(self, redis: Redis, keys: AccountKeys, max_per_login: int, max_per_ip: int,
                 window_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._max_per_login = max_per_login
        self._max_per_ip = max_per_ip
        self._window_s = window_s

    async def reserve(self, ip: str, login: str | None = None) -> None:
        """Count one attempt for the IP (and the login); 429 when either is over its limit."""
        counters = [(self._keys.ip_failures(ip), self._max_per_ip)]
        if login is not None:
            counters.append((self._keys.login_failures(login), self._max_per_login))
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, _ in counters:
                pipe.incr(key)
                pipe.expire(key, self._window_s, nx=True)
                pipe.ttl(key)
            results = await pipe.execute()
        over = [results[3 * i + 2] for i, (_, limit) in enumerate(counters)
                if results[3 * i] > limit]
        if over:
            raise too_many_attempts(max(int(ttl) for ttl in over))

    async def succeeded(self, ip: str, login: str) -> None:
        """A successful log-in: the IP gets its attempt back and the account starts afresh."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.decr(self._keys.ip_failures(ip))
            # Should the window have ended meanwhile, DECR made a new key: let it expire too.
            pipe.expire(self._keys.ip_failures(ip), self._window_s, nx=True)
            pipe.delete(self._keys.login_failures(login))
            await pipe.execute()
