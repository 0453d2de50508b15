"""One-time codes and log-in failure counters, run directly on real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from accounts.codes import COOLDOWN_S, MAX_ATTEMPTS, CodeStore, LoggingCodeSender, mask
from accounts.guard import LoginGuard
from accounts.keys import AccountKeys
from mall.errors import ApiError
from mall.settings import Settings


@pytest.fixture
def keys(settings: Settings) -> AccountKeys:
    return AccountKeys(settings.namespace)


@pytest.fixture
def codes(redis: Redis, keys: AccountKeys, settings: Settings) -> CodeStore:
    return CodeStore(redis, keys, settings.jwt_secret, ttl_s=120)


def destination() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


async def test_code_is_stored_as_an_hmac_with_the_ttl(codes: CodeStore, keys: AccountKeys,
                                                      redis: Redis) -> None:
    dest = destination()
    code = await codes.issue(dest)
    stored = await redis.get(keys.code(dest))
    assert stored is not None and len(stored) == 64 and code.encode() not in stored
    assert 0 < await redis.ttl(keys.code(dest)) <= 120
    assert dest not in keys.code(dest) and keys.code(dest).startswith(keys._base)


async def test_only_one_of_many_concurrent_right_answers_wins(codes: CodeStore) -> None:
    dest = destination()
    code = await codes.issue(dest)
    results = await asyncio.gather(*[codes.verify(dest, code) for _ in range(MAX_ATTEMPTS)])
    assert results.count(True) == 1


async def test_attempts_are_counted_atomically(codes: CodeStore) -> None:
    dest = destination()
    code = await codes.issue(dest)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    results = await asyncio.gather(*[codes.verify(dest, wrong) for _ in range(20)],
                                   codes.verify(dest, code))
    # The right code only wins when it came within the first MAX_ATTEMPTS attempts.
    assert results[:-1] == [False] * 20
    assert await codes.verify(dest, code) is False


async def test_a_new_code_replaces_the_old_one_and_its_attempts(codes: CodeStore) -> None:
    dest = destination()
    old = await codes.issue(dest)
    for _ in range(MAX_ATTEMPTS):
        assert await codes.verify(dest, f"{(int(old) + 1) % 10**6:06d}") is False
    new = await codes.issue(dest)
    if new != old:
        assert await codes.verify(dest, old) is False
    assert await codes.verify(dest, new) is True


async def test_cooldown(codes: CodeStore, keys: AccountKeys, redis: Redis) -> None:
    dest = destination()
    assert await codes.start_cooldown(dest) is None
    waiting = await codes.start_cooldown(dest)
    assert waiting is not None and 0 < waiting.retry_after_s <= COOLDOWN_S
    await redis.delete(keys.code_cooldown(dest))
    assert await codes.start_cooldown(dest) is None


async def test_logging_sender_masks_the_destination(caplog: pytest.LogCaptureFixture) -> None:
    sender = LoggingCodeSender(keep=2)
    with caplog.at_level("INFO"):
        await sender.send("+8613912345678", "123456")
    assert "+8613912345678" not in caplog.text and "5678" in caplog.text
    assert "123456" not in caplog.text
    assert mask("+8613912345678") == "**********5678"
    await sender.send("a@example.com", "1")
    await sender.send("b@example.com", "2")
    assert sender.last_code("+8613912345678") is None  # only the newest `keep` are kept
    assert sender.last_code("b@example.com") == "2"


async def test_guard_admits_exactly_the_limit_under_concurrency(redis: Redis,
                                                                keys: AccountKeys) -> None:
    guard = LoginGuard(redis, keys, max_per_login=4, max_per_ip=1000, window_s=60)
    login = destination()

    async def attempt() -> str:
        try:
            await guard.reserve("10.0.0.1", login)
        except ApiError as err:
            assert err.status == 429 and 0 < int(err.headers["Retry-After"]) <= 60
            return "locked"
        return "admitted"

    results = await asyncio.gather(*[attempt() for _ in range(30)])
    assert results.count("admitted") == 4
    assert 0 < await redis.ttl(keys.login_failures(login)) <= 60
    await guard.succeeded("10.0.0.1", login)
    assert await redis.exists(keys.login_failures(login)) == 0


async def test_guard_gives_a_success_back_to_the_ip(redis: Redis, keys: AccountKeys) -> None:
    ip = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    guard = LoginGuard(redis, keys, max_per_login=100, max_per_ip=2, window_s=60)
    for _ in range(5):
        await guard.reserve(ip, destination())
        await guard.succeeded(ip, "whoever")
    await guard.reserve(ip, destination())
    await guard.reserve(ip, destination())
    with pytest.raises(ApiError):
        await guard.reserve(ip, destination())
    assert 0 < await redis.ttl(keys.ip_failures(ip)) <= 60


async def test_decrement_after_the_window_cannot_leave_an_immortal_key(
        redis: Redis, keys: AccountKeys) -> None:
    guard = LoginGuard(redis, keys, max_per_login=5, max_per_ip=5, window_s=60)
    ip = "10.1.2.3-" + uuid.uuid4().hex[:6]
    await guard.succeeded(ip, "someone")  # the reservation's key had already expired
    assert 0 < await redis.ttl(keys.ip_failures(ip)) <= 60
