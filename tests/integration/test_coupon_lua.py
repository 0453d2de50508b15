"""lua/coupon_claim.lua and lua/coupon_state.lua on real Redis: every return code."""

from __future__ import annotations

import asyncio
import itertools
import time

from redis.asyncio import Redis

from coupons.keys import CouponKeys
from coupons.state import Gate
from mall.lua import Script
from mall.settings import Settings

_ids = itertools.count(9_000_000)


class Template:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.id = next(_ids)
        self.redis = redis
        self.k = CouponKeys(settings.namespace).template(self.id)
        self.claim_script = Script(redis, "coupon_claim")
        self.state_script = Script(redis, "coupon_state")

    async def load(self, total: int = 3, per_user: int = 1, start_in_s: float = -10,
                   length_s: float = 3600, status: str = "active", mode: str = "create") -> int:
        starts = int((time.time() + start_in_s) * 1000)
        return int(await self.state_script(
            self.k.state(), [mode, starts, starts + int(length_s * 1000), total, per_user,
                             status]))

    async def claim(self, user: str, key: str | None = None,
                    mode: str = "claim") -> tuple[int, int, int]:
        code, seq, remaining = await self.claim_script(
            self.k.claim(user, key), [user, "1" if key else "", 60, mode])
        return int(code), int(seq), int(remaining)

    async def issued(self) -> int:
        return int(await self.redis.get(self.k.issued) or 0)


async def test_issues_seq_per_user_until_limit(redis: Redis, settings: Settings) -> None:
    t = Template(redis, settings)
    await t.load(total=10, per_user=2)
    assert await t.claim("u1") == (Gate.ISSUED, 1, 9)
    assert await t.claim("u1") == (Gate.ISSUED, 2, 8)
    assert await t.claim("u1") == (Gate.LIMIT_REACHED, 0, 8)
    assert await t.claim("u2") == (Gate.ISSUED, 1, 7)
    assert await t.issued() == 3
    assert await redis.hgetall(t.k.holders) == {b"u1": b"2", b"u2": b"1"}


async def test_sold_out_at_total(redis: Redis, settings: Settings) -> None:
    t = Template(redis, settings)
    await t.load(total=2, per_user=5)
    assert (await t.claim("a"))[0] == Gate.ISSUED
    assert (await t.claim("b"))[0] == Gate.ISSUED
    assert await t.claim("c") == (Gate.SOLD_OUT, 0, 0)
    assert await t.issued() == 2


async def test_replay_with_the_same_key_returns_the_same_seq(redis: Redis,
                                                            settings: Settings) -> None:
    t = Template(redis, settings)
    await t.load(total=1, per_user=1)
    assert await t.claim("u", "k1") == (Gate.ISSUED, 1, 0)
    # A replay is answered even though the template is now sold out and the user at the limit.
    assert await t.claim("u", "k1") == (Gate.REPLAY, 1, 0)
    assert await t.claim("u", "k2") == (Gate.SOLD_OUT, 0, 0)
    assert await t.issued() == 1


async def test_window_and_status(redis: Redis, settings: Settings) -> None:
    early = Template(redis, settings)
    await early.load(start_in_s=60)
    assert (await early.claim("u"))[0] == Gate.NOT_STARTED
    # A push ignores the claim window.
    assert (await early.claim("u", mode="push"))[0] == Gate.ISSUED

    late = Template(redis, settings)
    await late.load(start_in_s=-20, length_s=10)
    assert (await late.claim("u"))[0] == Gate.ENDED

    ended = Template(redis, settings)
    await ended.load()
    assert int(await ended.state_script(ended.k.state(), ["end"])) == 0
    assert (await ended.claim("u"))[0] == Gate.ENDED
    assert (await ended.claim("u", mode="push"))[0] == Gate.ENDED
    assert await ended.issued() == 0


async def test_unknown_template(redis: Redis, settings: Settings) -> None:
    t = Template(redis, settings)
    assert await t.claim("u") == (Gate.UNKNOWN, 0, 0)
    assert int(await t.state_script(t.k.state(), ["end"])) == 2
    assert await redis.exists(t.k.meta, t.k.issued) == 0


async def test_patch_refused_once_issued(redis: Redis, settings: Settings) -> None:
    t = Template(redis, settings)
    await t.load(total=5)
    assert await t.load(total=7, mode="patch") == 0
    assert await redis.hget(t.k.meta, "total") == b"7"
    assert (await t.claim("u", mode="push"))[0] == Gate.ISSUED
    assert await t.load(total=1, mode="patch") == 1
    assert await redis.hget(t.k.meta, "total") == b"7"


async def test_rebuild_only_when_missing(redis: Redis, settings: Settings) -> None:
    t = Template(redis, settings)
    starts = int(time.time() * 1000) - 1000
    args = [starts, starts + 60_000, 5, 2, "active"]
    assert int(await t.state_script(t.k.state(), ["rebuild", *args, 3, "a", 2, "b", 1])) == 0
    assert await t.issued() == 3
    assert await t.claim("a") == (Gate.LIMIT_REACHED, 0, 2)
    assert await t.claim("b") == (Gate.ISSUED, 2, 1)
    assert int(await t.state_script(t.k.state(), ["rebuild", *args, 0])) == 2
    assert await t.issued() == 4


async def test_concurrent_calls_never_exceed_total_or_per_user(redis: Redis,
                                                              settings: Settings) -> None:
    t = Template(redis, settings)
    await t.load(total=50, per_user=3)
    users = [f"u{i % 40}" for i in range(400)]
    gate = asyncio.Semaphore(20)  # the shared client's pool is small

    async def claim(user: str) -> tuple[int, int, int]:
        async with gate:
            return await t.claim(user)

    results = await asyncio.gather(*(claim(u) for u in users))
    issued = [(u, seq) for u, (code, seq, _) in zip(users, results, strict=True)
              if code == Gate.ISSUED]
    assert len(issued) == 50 == await t.issued()
    assert len(set(issued)) == 50, "a (user, seq) pair was handed out twice"
    assert max(seq for _, seq in issued) <= 3
