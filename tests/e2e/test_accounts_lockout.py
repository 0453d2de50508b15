"""Failed log-ins are limited per account and per client IP, even under concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from accounts.keys import AccountKeys
from mall.settings import Settings
from tests.e2e.accounts_helpers import (
    PASSWORD,
    clear_ip_failures,
    e164,
    login,
    private_client,
    register,
    unique_phone,
)


@pytest.fixture(autouse=True)
async def _fresh_ip(redis: Redis, settings: Settings) -> None:
    await clear_ip_failures(redis, settings)


async def test_concurrent_wrong_passwords_never_pass_the_account_limit(
        client: TestClient, settings: Settings, redis: Redis) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    limit = settings.login_max_failures
    results = await asyncio.gather(*[login(client, phone, "wrong password")
                                     for _ in range(limit * 3)])
    statuses = Counter(status for status, _ in results)
    assert statuses == {401: limit, 429: limit * 2}
    locked = [body for status, body in results if status == 429]
    assert all(b["error"]["code"] == "too_many_attempts" for b in locked)
    # Locked: even the right password is refused, with Retry-After, and is never verified.
    resp = await client.post("/api/v1/auth/login", json={"login": phone, "password": PASSWORD})
    assert resp.status == 429
    assert 0 < int(resp.headers["Retry-After"]) <= settings.login_lockout_s
    # Another account from the same IP is not affected by this account's lock.
    other = unique_phone()
    await register(client, phone=other)
    assert (await login(client, other))[0] == 200
    # Once the window ends the account opens again.
    await redis.delete(AccountKeys(settings.namespace).login_failures(e164(phone)))
    assert (await login(client, phone))[0] == 200


async def test_success_resets_the_account_counter(client: TestClient,
                                                  settings: Settings) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    for _ in range(2):
        for _ in range(settings.login_max_failures - 1):
            assert (await login(client, phone, "wrong password"))[0] == 401
        assert (await login(client, phone))[0] == 200


async def test_other_spellings_of_a_login_share_its_counter(client: TestClient,
                                                             settings: Settings) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    spellings = [phone, e164(phone), "0086" + phone.replace(" ", ""), phone.replace(" ", "-")]
    for i in range(settings.login_max_failures):
        assert (await login(client, spellings[i % len(spellings)], "nope nope"))[0] == 401
    assert (await login(client, e164(phone)))[0] == 429


async def test_per_ip_limit_across_accounts(fresh_settings: Settings) -> None:
    settings = fresh_settings.with_(login_ip_max_failures=7, login_max_failures=100)
    async with private_client(settings) as client:
        victim = unique_phone()
        await register(client, phone=victim)
        strangers = [unique_phone() for _ in range(20)]
        # A forwarded-for header is not believed: every attempt counts against the peer.
        resps = await asyncio.gather(*[
            client.post("/api/v1/auth/login", json={"login": p, "password": "guessing"},
                        headers={"X-Forwarded-For": f"203.0.113.{i}"})
            for i, p in enumerate(strangers)])
        assert Counter(r.status for r in resps) == {401: 7, 429: 13}
        resp = await client.post("/api/v1/auth/login", json={"login": victim,
                                                              "password": PASSWORD})
        assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
        code = await client.post("/api/v1/auth/login/code", json={"login": victim,
                                                                   "code": "000000"})
        assert code.status == 429


async def test_successful_logins_do_not_use_up_the_ip_allowance(fresh_settings: Settings) -> None:
    settings = fresh_settings.with_(login_ip_max_failures=3)
    async with private_client(settings) as client:
        phone = unique_phone()
        await register(client, phone=phone)
        for _ in range(6):
            assert (await login(client, phone))[0] == 200
        for _ in range(3):
            assert (await login(client, phone, "wrong password"))[0] == 401
        assert (await login(client, phone))[0] == 429
