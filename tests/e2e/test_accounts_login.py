"""Signing in with a password or a one-time code, without revealing which accounts exist."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from accounts.codes import COOLDOWN_S, MAX_ATTEMPTS
from accounts.keys import AccountKeys
from mall.settings import Settings
from tests.e2e.accounts_helpers import (
    PASSWORD,
    bearer,
    clear_ip_failures,
    code_sender,
    e164,
    login,
    private_client,
    register,
    unique_email,
    unique_phone,
)


@pytest.fixture(autouse=True)
async def _fresh_ip(redis: Redis, settings: Settings) -> None:
    await clear_ip_failures(redis, settings)


async def test_password_login_by_phone_in_any_format_and_by_email(client: TestClient) -> None:
    phone = unique_phone()
    user = (await register(client, phone=phone))["user"]
    for variant in (phone, e164(phone), "0086" + phone.replace(" ", "")):
        status, body = await login(client, variant)
        assert status == 200, body
        assert body["user"]["user_id"] == user["user_id"]
        resp = await client.get("/api/v1/me", headers=bearer(body["tokens"]["access_token"]))
        assert (await resp.json())["user_id"] == user["user_id"]
    email = unique_email()
    user = (await register(client, email=email))["user"]
    status, body = await login(client, email.upper())
    assert status == 200 and body["user"]["user_id"] == user["user_id"]


async def test_wrong_password_and_unknown_account_answer_alike(client: TestClient) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    wrong = await login(client, phone, PASSWORD + "x")
    unknown = await login(client, unique_phone(), PASSWORD)
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]
    assert wrong[1]["error"]["code"] == "invalid_credentials"
    assert "tokens" not in wrong[1]


@pytest.mark.parametrize("body", [
    {"login": "not a phone", "password": PASSWORD},
    {"login": "", "password": PASSWORD},
    {"login": "x@", "password": PASSWORD},
    {"login": "13900000000"},
    {"login": "13900000000", "password": ""},
    {"login": 13900000000, "password": PASSWORD},
    {"login": "13900000000", "password": PASSWORD, "remember": True},
])
async def test_malformed_login_is_422(client: TestClient, body: dict) -> None:
    resp = await client.post("/api/v1/auth/login", json=body)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "invalid_request"


async def request_code(client: TestClient, login_: str) -> int:
    resp = await client.post("/api/v1/auth/codes", json={"login": login_})
    return resp.status


async def code_login(client: TestClient, login_: str, code: str) -> tuple[int, dict]:
    resp = await client.post("/api/v1/auth/login/code", json={"login": login_, "code": code})
    return resp.status, await resp.json()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def test_code_login_then_the_code_is_spent(client: TestClient, settings: Settings,
                                                 redis: Redis) -> None:
    phone = unique_phone()
    user = (await register(client, phone=phone))["user"]
    assert await request_code(client, phone) == 202
    code = code_sender(client).last_code(e164(phone))
    assert code is not None and len(code) == 6 and code.isdigit()
    stored = await redis.get(AccountKeys(settings.namespace).code(e164(phone)))
    assert stored is not None and code.encode() not in stored  # kept only as an HMAC
    ttl = await redis.ttl(AccountKeys(settings.namespace).code(e164(phone)))
    assert 0 < ttl <= settings.otp_ttl_s
    status, body = await code_login(client, e164(phone), code)
    assert status == 200, body
    assert body["user"]["user_id"] == user["user_id"]
    status, body = await code_login(client, phone, code)
    assert status == 401 and body["error"]["code"] == "invalid_credentials"


async def test_concurrent_use_of_one_code_signs_in_once(client: TestClient) -> None:
    email = unique_email()
    await register(client, email=email)
    assert await request_code(client, email) == 202
    code = code_sender(client).last_code(email.lower())
    assert code is not None
    # Within the attempt limit (beyond it the code burns and nobody may win).
    results = await asyncio.gather(*[code_login(client, email, code)
                                     for _ in range(MAX_ATTEMPTS)])
    assert sorted(status for status, _ in results) == [200] + [401] * (MAX_ATTEMPTS - 1)


async def test_unknown_account_gets_the_same_answers(client: TestClient) -> None:
    known, unknown = unique_phone(), unique_phone()
    await register(client, phone=known)
    assert await request_code(client, known) == 202
    assert await request_code(client, unknown) == 202
    assert code_sender(client).last_code(e164(unknown)) is None  # nothing sent to a stranger
    code = code_sender(client).last_code(e164(known))
    assert code is not None
    wrong_code = await code_login(client, known, wrong(code))
    no_account = await code_login(client, unknown, code)
    assert wrong_code[0] == no_account[0] == 401
    assert wrong_code[1] == no_account[1]


async def test_one_code_per_minute_per_destination(client: TestClient) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    assert await request_code(client, phone) == 202
    first = code_sender(client).last_code(e164(phone))
    resp = await client.post("/api/v1/auth/codes", json={"login": e164(phone)})
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "code_recently_sent"
    assert 0 < int(resp.headers["Retry-After"]) <= COOLDOWN_S
    assert code_sender(client).last_code(e164(phone)) == first
    # Strangers are throttled the same way, so the 429 reveals nothing either.
    stranger = unique_phone()
    assert await request_code(client, stranger) == 202
    assert await request_code(client, stranger) == 429


async def test_code_burns_after_the_attempt_limit(client: TestClient) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    assert await request_code(client, phone) == 202
    code = code_sender(client).last_code(e164(phone))
    assert code is not None
    for _ in range(MAX_ATTEMPTS):
        status, _ = await code_login(client, phone, wrong(code))
        assert status == 401
    status, _ = await code_login(client, phone, code)  # right, but too late
    assert status == 401


async def test_right_code_within_the_attempt_limit_works(client: TestClient) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    assert await request_code(client, phone) == 202
    code = code_sender(client).last_code(e164(phone))
    assert code is not None
    for _ in range(MAX_ATTEMPTS - 1):
        assert (await code_login(client, phone, wrong(code)))[0] == 401
    assert (await code_login(client, phone, code))[0] == 200


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", 123456, ""])
async def test_malformed_code_is_422(client: TestClient, code: object) -> None:
    resp = await client.post("/api/v1/auth/login/code",
                             json={"login": unique_phone(), "code": code})
    assert resp.status == 422


async def test_expired_code_is_refused(fresh_settings: Settings) -> None:
    async with private_client(fresh_settings.with_(otp_ttl_s=2)) as client:
        control, phone = unique_phone(), unique_phone()
        for p in (control, phone):
            await register(client, phone=p)  # slow (argon2): done before any code is sent
        # Control: a code used at once works on this app (no password hashing in between).
        assert await request_code(client, control) == 202
        code = code_sender(client).last_code(e164(control))
        assert code is not None and (await code_login(client, control, code))[0] == 200
        assert await request_code(client, phone) == 202
        code = code_sender(client).last_code(e164(phone))
        assert code is not None
        await asyncio.sleep(3)
        status, body = await code_login(client, phone, code)
        assert status == 401 and body["error"]["code"] == "invalid_credentials"
