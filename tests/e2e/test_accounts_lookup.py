"""Staff find a user by e-mail or phone, in every form sign-up accepts, through the same
look-up as log-in (phones by their blind index); customers are refused; malformed logins are
422 and change nothing; nobody matching is 404."""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.accounts_helpers import e164, register, unique_email, unique_phone
from tests.stack import auth

LOOKUP = "/api/v1/admin/users"


async def lookup(client: TestClient, headers: dict[str, str], login: str) -> tuple[int, dict]:
    resp = await client.get(f"{LOOKUP}?login={quote(login)}", headers=headers)
    return resp.status, await resp.json()


async def test_lookup_by_email_in_any_case(client: TestClient, settings: Settings) -> None:
    email = unique_email()
    user = (await register(client, email=email, nickname="小明"))["user"]
    _, by_id = await _by_id(client, settings, user["user_id"])
    for form in (email, email.lower(), email.upper(), f"  {email} "):
        status, found = await lookup(client, auth(settings, "staff-1", "staff"), form)
        assert status == 200, (form, found)
        assert found == by_id and found["email"] == email.lower() and found["phone"] is None


async def test_lookup_by_phone_in_the_forms_sign_up_accepts(client: TestClient,
                                                            settings: Settings) -> None:
    phone = unique_phone()  # "139 1234 5678"
    user = (await register(client, phone=phone))["user"]
    _, by_id = await _by_id(client, settings, user["user_id"])
    digits = phone.replace(" ", "")
    forms = (phone, digits, e164(phone), f"+86 {phone}", f"0086{digits}",
             f"{digits[:3]}-{digits[3:7]}-{digits[7:]}")
    for form in forms:
        status, found = await lookup(client, auth(settings, "admin-1", "admin"), form)
        assert status == 200, (form, found)
        assert found == by_id and found["phone"] == e164(phone)


async def _by_id(client: TestClient, settings: Settings, user_id: str) -> tuple[int, dict]:
    resp = await client.get(f"{LOOKUP}/{user_id}", headers=auth(settings, "staff-1", "staff"))
    assert resp.status == 200
    return resp.status, await resp.json()


async def test_nobody_matching_is_404(client: TestClient, settings: Settings) -> None:
    staff = auth(settings, "staff-1", "staff")
    for login in (unique_email(), unique_phone(), "+8613800000000"):
        status, body = await lookup(client, staff, login)
        assert status == 404 and body["error"]["code"] == "not_found", login


@pytest.mark.parametrize("role", ["customer", "member"])
async def test_customers_are_refused(client: TestClient, settings: Settings, role: str) -> None:
    email = unique_email()
    await register(client, email=email)
    status, body = await lookup(client, auth(settings, "nosy", role), email)
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert "user_id" not in body
    resp = await client.get(f"{LOOKUP}?login={quote(email)}")
    assert resp.status == 401


@pytest.mark.parametrize("query", [
    "", "login=", "login=%20", "login=not-an-email@", "login=@example.com", "login=12345",
    "login=hello", "login=" + "1" * 40, "login=" + "a" * 250 + "%40example.com",
    "login=a%00b%40example.com", "login=a%40example.com&login=b%40example.com",
    "login=a%40example.com&user_id=x",
])
async def test_malformed_logins_are_422_and_change_nothing(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, query: str) -> None:
    users = await pg.fetchval("SELECT count(*) FROM users")
    resp = await client.get(f"{LOOKUP}?{query}", headers=auth(settings, "staff-1", "staff"))
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "invalid_request", (query, body)
    assert await pg.fetchval("SELECT count(*) FROM users") == users
