"""Only an admin changes roles, never their own, never to admin; forged tokens get nowhere."""

from __future__ import annotations

import time

import asyncpg
import jwt
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.accounts_helpers import bearer, register, unique_phone
from tests.stack import auth


async def new_user(client: TestClient) -> dict:
    return dict(await register(client, phone=unique_phone()))


async def role_of(pg: asyncpg.Pool, user_id: str) -> str:
    return str(await pg.fetchval("SELECT role FROM users WHERE user_id = $1", user_id))


async def put_role(client: TestClient, user_id: str, role: object,
                   headers: dict[str, str]) -> tuple[int, dict]:
    resp = await client.put(f"/api/v1/admin/users/{user_id}/role", json={"role": role},
                            headers=headers)
    return resp.status, await resp.json()


@pytest.mark.parametrize("role", ["customer", "member", "staff"])
async def test_non_admins_cannot_grant_roles(client: TestClient, settings: Settings,
                                             pg: asyncpg.Pool, role: str) -> None:
    target = (await new_user(client))["user"]["user_id"]
    actor = await new_user(client)
    own_token = bearer(actor["tokens"]["access_token"])  # a real customer's token
    for headers in (own_token, auth(settings, actor["user"]["user_id"], role)):
        for wanted in ("staff", "admin", "member"):
            status, body = await put_role(client, target, wanted, headers)
            assert status == 403 and body["error"]["code"] == "forbidden"
        status, _ = await put_role(client, actor["user"]["user_id"], "staff", headers)
        assert status == 403
    assert await role_of(pg, target) == "customer"
    assert await role_of(pg, actor["user"]["user_id"]) == "customer"


async def test_forged_admin_token_is_401(client: TestClient, pg: asyncpg.Pool) -> None:
    target = (await new_user(client))["user"]["user_id"]
    forged = jwt.encode({"sub": "mallory", "role": "admin", "exp": int(time.time()) + 600},
                        "a-different-secret-that-is-long-enough-32", algorithm="HS256")
    status, body = await put_role(client, target, "staff", bearer(forged))
    assert status == 401 and body["error"]["code"] == "unauthorized"
    resp = await client.get(f"/api/v1/admin/users/{target}", headers=bearer(forged))
    assert resp.status == 401
    assert await role_of(pg, target) == "customer"


async def test_admin_grants_and_revokes_roles(client: TestClient, settings: Settings,
                                              pg: asyncpg.Pool) -> None:
    target = (await new_user(client))["user"]["user_id"]
    admin = auth(settings, "root-admin", "admin")
    for role in ("member", "staff", "customer"):
        status, body = await put_role(client, target, role, admin)
        assert status == 200 and body["role"] == role
        assert await role_of(pg, target) == role


async def test_admin_role_cannot_be_granted_or_changed_through_the_api(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    target = (await new_user(client))["user"]["user_id"]
    admin = auth(settings, "root-admin", "admin")
    status, body = await put_role(client, target, "admin", admin)
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert await role_of(pg, target) == "customer"
    other_admin = (await new_user(client))["user"]["user_id"]
    await pg.execute("UPDATE users SET role = 'admin' WHERE user_id = $1", other_admin)
    status, _ = await put_role(client, other_admin, "customer", admin)
    assert status == 403
    assert await role_of(pg, other_admin) == "admin"


async def test_admin_cannot_change_their_own_role(client: TestClient, settings: Settings,
                                                  pg: asyncpg.Pool) -> None:
    # An admin token (as `mall token` issues) for a user whose row is still a customer.
    me = (await new_user(client))["user"]["user_id"]
    status, body = await put_role(client, me, "staff", auth(settings, me, "admin"))
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert "own role" in body["error"]["message"]
    assert await role_of(pg, me) == "customer"


@pytest.mark.parametrize("role", ["root", "", None, 1, "ADMIN"])
async def test_unknown_roles_are_422(client: TestClient, settings: Settings, pg: asyncpg.Pool,
                                     role: object) -> None:
    target = (await new_user(client))["user"]["user_id"]
    status, _ = await put_role(client, target, role, auth(settings, "root-admin", "admin"))
    assert status == 422
    assert await role_of(pg, target) == "customer"


async def test_unknown_user_is_404(client: TestClient, settings: Settings) -> None:
    admin = auth(settings, "root-admin", "admin")
    for user_id in ("u-does-not-exist", "x" * 65, "bad%20id"):
        status, _ = await put_role(client, user_id, "staff", admin)
        assert status == 404
        resp = await client.get(f"/api/v1/admin/users/{user_id}", headers=admin)
        assert resp.status == 404


async def test_staff_read_users_and_customers_cannot(client: TestClient,
                                                     settings: Settings) -> None:
    target = await new_user(client)
    user_id = target["user"]["user_id"]
    for role, expected in (("staff", 200), ("admin", 200), ("customer", 403), ("member", 403)):
        resp = await client.get(f"/api/v1/admin/users/{user_id}",
                                headers=auth(settings, "reader", role))
        assert resp.status == expected, role
    resp = await client.get(f"/api/v1/admin/users/{user_id}",
                            headers=auth(settings, "staff-1", "staff"))
    body = await resp.json()
    assert body["user_id"] == user_id and "password_hash" not in body
