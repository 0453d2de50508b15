"""Every log-in attempt is audited, success and failure, with the identifier masked and no
secret stored."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.settings import Settings
from tests.e2e.accounts_helpers import (
    PASSWORD,
    clear_ip_failures,
    code_sender,
    e164,
    register,
    unique_email,
    unique_phone,
)

LOGIN = "/api/v1/auth/login"


async def logins_since(pg: asyncpg.Pool, mark: int) -> list[dict[str, Any]]:
    rows = await pg.fetch("SELECT * FROM audit_log WHERE id > $1 AND kind = 'login' ORDER BY id",
                          mark)
    return [{**dict(r), "details": orjson.loads(r["details"])} for r in rows]


async def mark(pg: asyncpg.Pool) -> int:
    return int(await pg.fetchval("SELECT coalesce(max(id), 0) FROM audit_log"))


async def secrets_stored(pg: asyncpg.Pool, *secrets: str) -> int:
    """Rows whose text holds any of the secrets, anywhere."""
    return int(await pg.fetchval(
        "SELECT count(*) FROM audit_log a WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) s"
        " WHERE a::text LIKE '%' || s || '%')", list(secrets)))


async def test_password_logins_success_wrong_password_unknown_user(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis) -> None:
    await clear_ip_failures(redis, settings)
    phone = unique_phone()
    password = "s3cret-Audit-" + phone[-4:]
    user = (await register(client, password=password, phone=phone))["user"]
    start = await mark(pg)
    resp = await client.post(LOGIN, json={"login": phone, "password": password})
    assert resp.status == 200
    resp = await client.post(LOGIN, json={"login": phone, "password": password + "x"})
    assert resp.status == 401
    ghost = unique_email()
    resp = await client.post(LOGIN, json={"login": ghost, "password": password})
    assert resp.status == 401
    ok, wrong, unknown = await logins_since(pg, start)

    digits = e164(phone)
    assert (ok["actor"], ok["actor_role"], ok["status"]) == (user["user_id"], "customer", 200)
    assert ok["details"]["login"] == f"{digits[:6]}****{digits[-4:]}"
    assert ok["details"]["login_method"] == "password"
    assert ok["details"]["reason"] == "success" and ok["outcome"] == "success"
    assert str(ok["ip"]) == "127.0.0.1" and ok["route"] == LOGIN
    assert (wrong["actor"], wrong["status"], wrong["outcome"]) == (None, 401,
                                                                    "invalid_credentials")
    assert wrong["details"]["reason"] == "invalid_credentials"
    assert wrong["details"]["login"] == ok["details"]["login"]
    assert unknown["details"]["login"] == f"{ghost[0]}***@example.com"
    assert unknown["outcome"] == "invalid_credentials"
    assert await secrets_stored(pg, password, digits, digits[3:], ghost.lower()) == 0


async def test_locked_out_attempts_are_recorded(client: TestClient, settings: Settings,
                                                pg: asyncpg.Pool, redis: Redis) -> None:
    await clear_ip_failures(redis, settings)
    email = unique_email()
    await register(client, email=email)
    start = await mark(pg)
    statuses = []
    for _ in range(settings.login_max_failures + 1):
        resp = await client.post(LOGIN, json={"login": email, "password": "wrong-password"})
        statuses.append(resp.status)
    resp = await client.post(LOGIN, json={"login": email, "password": PASSWORD})
    statuses.append(resp.status)
    assert statuses[-2:] == [429, 429]
    rows = await logins_since(pg, start)
    assert [r["status"] for r in rows] == statuses
    assert [r["details"]["reason"] for r in rows[-2:]] == ["too_many_attempts"] * 2
    assert all(r["details"]["login"] == f"{email[0]}***@example.com" for r in rows)
    assert await secrets_stored(pg, PASSWORD, "wrong-password") == 0
    await clear_ip_failures(redis, settings)


async def test_code_logins_are_recorded_without_the_code(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis) -> None:
    await clear_ip_failures(redis, settings)
    phone = unique_phone()
    user = (await register(client, phone=phone))["user"]
    resp = await client.post("/api/v1/auth/codes", json={"login": phone})
    assert resp.status == 202
    code = code_sender(client).last_code(e164(phone))
    assert code is not None
    start = await mark(pg)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    resp = await client.post("/api/v1/auth/login/code", json={"login": phone, "code": wrong})
    assert resp.status == 401
    resp = await client.post("/api/v1/auth/login/code", json={"login": phone, "code": code})
    assert resp.status == 200
    failed, ok = await logins_since(pg, start)
    assert failed["details"]["login_method"] == ok["details"]["login_method"] == "code"
    assert (failed["actor"], failed["outcome"]) == (None, "invalid_credentials")
    assert (ok["actor"], ok["status"], ok["outcome"]) == (user["user_id"], 200, "success")
    assert ok["route"] == "/api/v1/auth/login/code"
    assert await secrets_stored(pg, f'"{code}"', f'"{wrong}"') == 0


async def test_refresh_and_refresh_token_reuse_are_recorded(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    session = await register(client)
    first = session["tokens"]["refresh_token"]
    start = await mark(pg)
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert resp.status == 200
    second = (await resp.json())["tokens"]
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert resp.status == 401  # reuse: the whole family is revoked
    rotated, reused = await logins_since(pg, start)
    assert rotated["details"]["login_method"] == "refresh"
    assert (rotated["actor"], rotated["outcome"]) == (session["user"]["user_id"], "success")
    assert (reused["status"], reused["outcome"]) == (401, "invalid_refresh_token")
    assert await secrets_stored(pg, first, second["refresh_token"],
                                second["access_token"]) == 0
