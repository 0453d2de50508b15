"""lua/ratelimit.lua through mall.ratelimit.hit on real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from mall.errors import ApiError
from mall.ratelimit import Counter, hit, write_counters
from mall.settings import Settings


def counters(settings: Settings, user_limit: int, ip_limit: int,
             user: str | None = None, ip: str | None = None) -> list[Counter]:
    return write_counters(settings.namespace, user or f"u{uuid.uuid4().hex[:8]}",
                          ip or f"10.{uuid.uuid4().int % 250}.0.{uuid.uuid4().int % 250}",
                          user_limit, ip_limit)


async def outcomes(redis: Redis, cs: list[Counter], n: int,
                   window_s: float) -> list[ApiError | None]:
    async def one() -> ApiError | None:
        try:
            await hit(redis, cs, window_s)
        except ApiError as err:
            return err
        return None

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_concurrent_hits_pass_exactly_the_limit(redis: Redis, settings: Settings) -> None:
    cs = counters(settings, user_limit=7, ip_limit=100)
    results = await outcomes(redis, cs, 40, window_s=30)
    refused = [r for r in results if r is not None]
    assert len(refused) == 33
    for err in refused:
        assert (err.status, err.code) == (429, "rate_limited")
        assert err.details is not None and err.details["scope"] == "user"
        assert err.details["limit"] == 7
        assert 1 <= int(err.headers["Retry-After"]) <= 30
    assert int(await redis.get(cs[0].key)) == 7
    assert int(await redis.get(cs[1].key)) == 7  # refused hits count nowhere


async def test_ip_counter_is_shared_by_users(redis: Redis, settings: Settings) -> None:
    ip = f"192.0.2.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    passed = 0
    for n in range(10):
        try:
            await hit(redis, counters(settings, 100, 4, user=f"s{n}", ip=ip), 30)
            passed += 1
        except ApiError as err:
            assert err.details is not None and err.details["scope"] == "ip"
    assert passed == 4


async def test_anonymous_requests_count_the_ip_only(settings: Settings) -> None:
    assert [c.scope for c in write_counters(settings.namespace, None, "::1", 1, 2)] == ["ip"]


async def test_window_ends(redis: Redis, settings: Settings) -> None:
    cs = counters(settings, user_limit=2, ip_limit=100)
    assert [r is None for r in await outcomes(redis, cs, 3, window_s=0.3)] == [True, True, False]
    await asyncio.sleep(0.4)
    assert await outcomes(redis, cs, 1, window_s=0.3) == [None]


@pytest.mark.parametrize("window_s", [0.2, 1.0])
async def test_retry_after_is_a_whole_second_at_least(redis: Redis, settings: Settings,
                                                      window_s: float) -> None:
    cs = counters(settings, user_limit=1, ip_limit=100)
    _, refused = await outcomes(redis, cs, 2, window_s)
    assert refused is not None and refused.headers["Retry-After"] == "1"
