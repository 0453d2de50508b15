"""Signing up: phone or e-mail, normalised; duplicates refused; bad input creates nothing."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.crypto import USERS_PHONE, data_cipher
from mall.settings import Settings
from tests.e2e.accounts_helpers import (
    PASSWORD,
    bearer,
    e164,
    register,
    unique_email,
    unique_phone,
)


async def accounts_with_phone(pg: asyncpg.Pool, settings: Settings, phone: str) -> int:
    """Phones are stored sealed: count by their blind index."""
    index = data_cipher(settings).blind_index(e164(phone), USERS_PHONE)
    return int(await pg.fetchval("SELECT count(*) FROM users WHERE phone_hash = $1", index))

async def test_register_by_phone_returns_user_and_working_tokens(
        client: TestClient, pg: asyncpg.Pool) -> None:
    phone = unique_phone()
    body = await register(client, phone=phone)
    user, tokens = body["user"], body["tokens"]
    assert re.fullmatch(r"u[0-9a-f]{24}", user["user_id"])
    assert user["phone"] == e164(phone) and user["email"] is None
    assert user["role"] == "customer"
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    resp = await client.get("/api/v1/me", headers=bearer(tokens["access_token"]))
    assert resp.status == 200
    assert (await resp.json())["user_id"] == user["user_id"]
    row = await pg.fetchrow("SELECT password_hash FROM users WHERE user_id = $1",
                            user["user_id"])
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    stored = await pg.fetchval("SELECT count(*) FROM refresh_tokens WHERE user_id = $1",
                               user["user_id"])
    assert stored == 1
    assert await pg.fetchval("SELECT count(*) FROM refresh_tokens WHERE token_hash = $1",
                             tokens["refresh_token"].encode()) == 0  # only a hash is kept


async def test_register_by_email_normalises_case(client: TestClient) -> None:
    email = unique_email()
    body = await register(client, email=email)
    assert body["user"]["email"] == email.lower()
    assert body["user"]["phone"] is None


@pytest.mark.parametrize("variant", [
    lambda p: e164(p),
    lambda p: "+86 " + p.replace(" ", "-"),
    lambda p: "0086" + p.replace(" ", ""),
    lambda p: p.replace(" ", ""),
])
async def test_same_phone_in_another_format_is_409(client: TestClient, pg: asyncpg.Pool,
                                                   settings: Settings, variant) -> None:
    phone = unique_phone()
    await register(client, phone=phone)
    resp = await client.post("/api/v1/auth/register",
                             json={"phone": variant(phone), "password": PASSWORD})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "account_exists"
    assert await accounts_with_phone(pg, settings, phone) == 1


async def test_same_email_in_another_case_is_409(client: TestClient, pg: asyncpg.Pool) -> None:
    email = unique_email()
    await register(client, email=email)
    resp = await client.post("/api/v1/auth/register",
                             json={"email": email.upper(), "password": PASSWORD})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "account_exists"
    assert await pg.fetchval("SELECT count(*) FROM users WHERE email = $1", email.lower()) == 1


async def test_concurrent_sign_ups_of_one_email_create_one_account(
        client: TestClient, pg: asyncpg.Pool) -> None:
    email = unique_email()
    resps = await asyncio.gather(*[
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        for _ in range(5)])
    assert sorted(r.status for r in resps) == [201, 409, 409, 409, 409]
    assert await pg.fetchval("SELECT count(*) FROM users WHERE email = $1", email.lower()) == 1


BAD_BODIES = [
    {"phone": "12345", "password": PASSWORD},
    {"phone": "139 0000", "password": PASSWORD},
    {"phone": "not a phone", "password": PASSWORD},
    {"email": "no-at-sign.example.com", "password": PASSWORD},
    {"email": "two@@example.com", "password": PASSWORD},
    {"email": "a@b", "password": PASSWORD},
    {"PHONE": "PLACEHOLDER", "password": "short1"},
    {"PHONE": "PLACEHOLDER", "password": "x" * 129},
    {"PHONE": "PLACEHOLDER", "password": 12345678},
    {"PHONE": "PLACEHOLDER", "password": PASSWORD, "role": "admin"},
    {"PHONE": "PLACEHOLDER", "password": PASSWORD, "nickname": ""},
    {"PHONE": "PLACEHOLDER"},
    {"password": PASSWORD},
    {"PHONE": "PLACEHOLDER", "email": "both@example.com", "password": PASSWORD},
    {"phone": 13900000000, "password": PASSWORD},
    {"phone": None, "email": None, "password": PASSWORD},
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_sign_ups_are_422_and_create_nothing(client: TestClient, pg: asyncpg.Pool,
                                                       settings: Settings, body: dict) -> None:
    phone = unique_phone()
    body = {("phone" if k == "PHONE" else k): (phone if v == "PLACEHOLDER" else v)
            for k, v in body.items()}
    before = await pg.fetchval("SELECT count(*) FROM users")
    resp = await client.post("/api/v1/auth/register", json=body)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_request" and error["message"]
    assert await pg.fetchval("SELECT count(*) FROM users") == before
    assert await accounts_with_phone(pg, settings, phone) == 0


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[]", b'"x"'])
async def test_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    resp = await client.post("/api/v1/auth/register", data=raw)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "invalid_request"


async def test_password_length_bounds_are_inclusive(client: TestClient) -> None:
    await register(client, password="x" * 8, phone=unique_phone())
    await register(client, password="x" * 128, phone=unique_phone())


async def test_idempotent_sign_up_replays_the_first_answer(client: TestClient,
                                                           pg: asyncpg.Pool) -> None:
    email = unique_email()
    headers = {"Idempotency-Key": "signup-1"}
    body = {"email": email, "password": PASSWORD}
    first = await client.post("/api/v1/auth/register", json=body, headers=headers)
    second = await client.post("/api/v1/auth/register", json=body, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    other = await client.post("/api/v1/auth/register", headers=headers,
                              json={"email": email, "password": PASSWORD + "!"})
    assert other.status == 422
    assert (await other.json())["error"]["code"] == "idempotency_key_reused"
    assert await pg.fetchval("SELECT count(*) FROM users WHERE email = $1", email.lower()) == 1
