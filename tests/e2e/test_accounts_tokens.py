"""Refresh tokens rotate; a reused one revokes the family; log-out revokes; roles follow."""

from __future__ import annotations

import asyncio

import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from accounts.tokens import token_hash
from mall.settings import Settings
from tests.e2e.accounts_helpers import (
    bearer,
    clear_ip_failures,
    login,
    register,
    unique_email,
    unique_phone,
)
from tests.stack import auth


@pytest.fixture(autouse=True)
async def _fresh_ip(redis: Redis, settings: Settings) -> None:
    await clear_ip_failures(redis, settings)


async def refresh(client: TestClient, token: str) -> tuple[int, dict]:
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    return resp.status, await resp.json()


def claims(settings: Settings, access_token: str) -> dict:
    return jwt.decode(access_token, settings.jwt_secret, algorithms=["HS256"])


async def live_tokens(pg: asyncpg.Pool, user_id: str) -> int:
    return int(await pg.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL", user_id))


async def test_refresh_rotates_the_pair(client: TestClient, settings: Settings,
                                        pg: asyncpg.Pool) -> None:
    body = await register(client, phone=unique_phone())
    user_id, first = body["user"]["user_id"], body["tokens"]
    status, answer = await refresh(client, first["refresh_token"])
    assert status == 200, answer
    second = answer["tokens"]
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(settings, second["access_token"])["sub"] == user_id
    assert claims(settings, second["access_token"])["exp"] - \
        claims(settings, second["access_token"])["iat"] == settings.access_token_ttl_s
    old = await pg.fetchrow("SELECT revoked_at, revoked_reason FROM refresh_tokens "
                            "WHERE token_hash = $1", token_hash(first["refresh_token"]))
    assert old["revoked_at"] is not None and old["revoked_reason"] == "rotated"
    assert await live_tokens(pg, user_id) == 1
    status, answer = await refresh(client, second["refresh_token"])
    assert status == 200


async def test_reusing_a_rotated_token_revokes_the_family(client: TestClient,
                                                          pg: asyncpg.Pool) -> None:
    phone = unique_phone()
    body = await register(client, phone=phone)
    user_id, stolen = body["user"]["user_id"], body["tokens"]["refresh_token"]
    other_device = (await login(client, phone))[1]["tokens"]["refresh_token"]
    status, answer = await refresh(client, stolen)
    assert status == 200
    current = answer["tokens"]["refresh_token"]
    assert await live_tokens(pg, user_id) == 2
    status, answer = await refresh(client, stolen)  # the thief (or the owner) replays it
    assert status == 401 and answer["error"]["code"] == "invalid_refresh_token"
    assert await live_tokens(pg, user_id) == 0
    for token in (current, other_device):
        assert (await refresh(client, token))[0] == 401


async def test_concurrent_refresh_of_one_token_issues_at_most_one_pair(
        client: TestClient, pg: asyncpg.Pool) -> None:
    body = await register(client, email=unique_email())
    token = body["tokens"]["refresh_token"]
    results = await asyncio.gather(*[refresh(client, token) for _ in range(5)])
    assert sorted(s for s, _ in results) == [200, 401, 401, 401, 401]
    # The losers presented a revoked token: the whole family is gone, the winner's pair too.
    assert await live_tokens(pg, body["user"]["user_id"]) == 0


async def test_logout_revokes_the_refresh_token(client: TestClient, pg: asyncpg.Pool) -> None:
    body = await register(client, phone=unique_phone())
    token = body["tokens"]["refresh_token"]
    resp = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
    assert resp.status == 204
    assert await live_tokens(pg, body["user"]["user_id"]) == 0
    assert (await refresh(client, token))[0] == 401
    resp = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
    assert resp.status == 204  # idempotent


@pytest.mark.parametrize("token", ["nope", "x" * 128, "A" * 43])
async def test_unknown_refresh_token_is_401(client: TestClient, token: str) -> None:
    status, body = await refresh(client, token)
    assert status == 401 and body["error"]["code"] == "invalid_refresh_token"


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": 5},
                                  {"refresh_token": "x" * 129}, {"refresh_token": "a", "b": 1}])
async def test_malformed_refresh_body_is_422(client: TestClient, body: dict) -> None:
    for path in ("/api/v1/auth/refresh", "/api/v1/auth/logout"):
        resp = await client.post(path, json=body)
        assert resp.status == 422


async def test_expired_refresh_token_is_401(client: TestClient, pg: asyncpg.Pool) -> None:
    body = await register(client, phone=unique_phone())
    token = body["tokens"]["refresh_token"]
    await pg.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                     "WHERE token_hash = $1", token_hash(token))
    assert (await refresh(client, token))[0] == 401


async def test_refresh_reads_the_role_from_the_database(client: TestClient, settings: Settings,
                                                        pg: asyncpg.Pool) -> None:
    body = await register(client, phone=unique_phone())
    user_id = body["user"]["user_id"]
    await pg.execute("UPDATE users SET role = 'member' WHERE user_id = $1", user_id)
    assert claims(settings, body["tokens"]["access_token"])["role"] == "customer"
    status, answer = await refresh(client, body["tokens"]["refresh_token"])
    assert status == 200
    assert claims(settings, answer["tokens"]["access_token"])["role"] == "member"


async def test_role_change_ends_sessions_and_the_next_sign_in_carries_it(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    phone = unique_phone()
    body = await register(client, phone=phone)
    user_id, refresh_token = body["user"]["user_id"], body["tokens"]["refresh_token"]
    resp = await client.put(f"/api/v1/admin/users/{user_id}/role", json={"role": "staff"},
                            headers=auth(settings, "boss", "admin"))
    assert resp.status == 200 and (await resp.json())["role"] == "staff"
    assert await live_tokens(pg, user_id) == 0
    revoked = await pg.fetchval("SELECT revoked_reason FROM refresh_tokens WHERE token_hash = $1",
                                token_hash(refresh_token))
    assert revoked == "role_changed"
    # The old access token still says customer until it expires: the staff route refuses it.
    resp = await client.get(f"/api/v1/admin/users/{user_id}",
                            headers=bearer(body["tokens"]["access_token"]))
    assert resp.status == 403
    assert (await refresh(client, refresh_token))[0] == 401
    status, answer = await login(client, phone)
    assert status == 200
    access = answer["tokens"]["access_token"]
    assert claims(settings, access)["role"] == "staff"
    resp = await client.get(f"/api/v1/admin/users/{user_id}", headers=bearer(access))
    assert resp.status == 200
    status, answer = await refresh(client, answer["tokens"]["refresh_token"])
    assert status == 200 and claims(settings, answer["tokens"]["access_token"])["role"] == "staff"
