"""Profile and addresses: CRUD, the one-default rule, the limit, and no access to others'."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from accounts.addresses import MAX_ADDRESSES
from mall.ports import ADDRESS_BOOK
from tests.e2e.accounts_helpers import bearer, register, unique_phone

ADDRESS = {"recipient": "王小明", "phone": "139 1234 5678", "province": "浙江省",
           "city": "杭州市", "district": "西湖区", "line": "文三路 100 号 3 单元 501",
           "postal_code": "310012"}


async def new_user(client: TestClient) -> tuple[str, dict[str, str]]:
    body = await register(client, phone=unique_phone())
    return body["user"]["user_id"], bearer(body["tokens"]["access_token"])


async def add(client: TestClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/me/addresses", json={**ADDRESS, **changes},
                             headers=headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def listing(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/me/addresses", headers=headers)
    assert resp.status == 200
    return list((await resp.json())["items"])


def defaults(items: list[dict[str, Any]]) -> list[int]:
    return [a["id"] for a in items if a["is_default"]]


async def test_profile_read_and_patch(client: TestClient) -> None:
    _, headers = await new_user(client)
    resp = await client.patch("/api/v1/me", headers=headers,
                              json={"nickname": "小明", "avatar_url": "https://cdn.example/a.png"})
    assert resp.status == 200
    me = await (await client.get("/api/v1/me", headers=headers)).json()
    assert me["nickname"] == "小明" and me["avatar_url"] == "https://cdn.example/a.png"
    resp = await client.patch("/api/v1/me", headers=headers, json={"avatar_url": None})
    assert resp.status == 200
    me = await (await client.get("/api/v1/me", headers=headers)).json()
    assert me["nickname"] == "小明" and me["avatar_url"] is None


@pytest.mark.parametrize("body", [
    {"nickname": ""}, {"nickname": "x" * 41}, {"nickname": "   "}, {"nickname": 7},
    {"avatar_url": "http://cdn.example/a.png"}, {"avatar_url": "javascript:alert(1)"},
    {"avatar_url": "https://cdn.example/" + "a" * 490}, {"avatar_url": "https://"},
    {"role": "admin"}, {"user_id": "someone-else"},
])
async def test_bad_profile_patch_is_422_and_changes_nothing(client: TestClient,
                                                            body: dict) -> None:
    _, headers = await new_user(client)
    before = await (await client.get("/api/v1/me", headers=headers)).json()
    resp = await client.patch("/api/v1/me", headers=headers, json=body)
    assert resp.status == 422
    assert await (await client.get("/api/v1/me", headers=headers)).json() == before


async def test_profile_needs_a_token(client: TestClient) -> None:
    for method in ("GET", "PATCH"):
        resp = await client.request(method, "/api/v1/me", json={})
        assert resp.status == 401


async def test_address_crud_and_default_rules(client: TestClient) -> None:
    _, headers = await new_user(client)
    first = await add(client, headers)
    assert first["is_default"] and first["phone"] == "+8613912345678"
    second = await add(client, headers, recipient="李雷")
    third = await add(client, headers, recipient="韩梅梅")
    assert not second["is_default"] and not third["is_default"]
    assert defaults(await listing(client, headers)) == [first["id"]]

    resp = await client.post(f"/api/v1/me/addresses/{second['id']}/default", headers=headers)
    assert resp.status == 200 and (await resp.json())["is_default"]
    assert defaults(await listing(client, headers)) == [second["id"]]

    resp = await client.patch(f"/api/v1/me/addresses/{third['id']}", headers=headers,
                              json={"line": "新地址 1 号", "postal_code": None})
    changed = await resp.json()
    assert resp.status == 200 and changed["line"] == "新地址 1 号"
    assert changed["postal_code"] is None and changed["recipient"] == "韩梅梅"
    resp = await client.get(f"/api/v1/me/addresses/{third['id']}", headers=headers)
    assert await resp.json() == changed

    # Deleting the default passes it to the newest remaining address.
    resp = await client.delete(f"/api/v1/me/addresses/{second['id']}", headers=headers)
    assert resp.status == 204
    items = await listing(client, headers)
    assert [a["id"] for a in items] == [third["id"], first["id"]]
    assert defaults(items) == [third["id"]]
    # Adding with is_default moves the default.
    fourth = await add(client, headers, is_default=True)
    assert defaults(await listing(client, headers)) == [fourth["id"]]
    for address in await listing(client, headers):
        resp = await client.delete(f"/api/v1/me/addresses/{address['id']}", headers=headers)
        assert resp.status == 204
        remaining = await listing(client, headers)
        assert len(defaults(remaining)) == (1 if remaining else 0)
    assert await listing(client, headers) == []
    assert (await add(client, headers))["is_default"]  # first again after emptying


async def test_address_limit_holds_under_concurrency(client: TestClient,
                                                     pg: asyncpg.Pool) -> None:
    user_id, headers = await new_user(client)
    resps = await asyncio.gather(*[
        client.post("/api/v1/me/addresses", json=ADDRESS, headers=headers)
        for _ in range(MAX_ADDRESSES + 5)])
    statuses = sorted(r.status for r in resps)
    assert statuses == [201] * MAX_ADDRESSES + [409] * 5
    assert await pg.fetchval("SELECT count(*) FROM addresses WHERE user_id = $1",
                             user_id) == MAX_ADDRESSES
    assert await pg.fetchval("SELECT count(*) FROM addresses WHERE user_id = $1 AND is_default",
                             user_id) == 1


async def test_concurrent_default_changes_leave_exactly_one(client: TestClient) -> None:
    _, headers = await new_user(client)
    ids = [(await add(client, headers))["id"] for _ in range(5)]
    resps = await asyncio.gather(*[
        client.post(f"/api/v1/me/addresses/{i}/default", headers=headers) for i in ids * 3])
    assert all(r.status == 200 for r in resps)
    assert len(defaults(await listing(client, headers))) == 1


async def test_idempotent_address_creation(client: TestClient) -> None:
    _, headers = await new_user(client)
    headers = {**headers, "Idempotency-Key": "addr-1"}
    first = await client.post("/api/v1/me/addresses", json=ADDRESS, headers=headers)
    second = await client.post("/api/v1/me/addresses", json=ADDRESS, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert len(await listing(client, headers)) == 1


@pytest.mark.parametrize("changes", [
    {"phone": "12345"}, {"recipient": ""}, {"recipient": "   "}, {"line": "x" * 201},
    {"postal_code": "<script>"}, {"province": None}, {"is_default": "yes"}, {"extra": 1},
])
async def test_bad_addresses_are_422(client: TestClient, pg: asyncpg.Pool,
                                     changes: dict) -> None:
    user_id, headers = await new_user(client)
    resp = await client.post("/api/v1/me/addresses", json={**ADDRESS, **changes},
                             headers=headers)
    assert resp.status == 422
    assert await pg.fetchval("SELECT count(*) FROM addresses WHERE user_id = $1", user_id) == 0
    resp = await client.post("/api/v1/me/addresses",
                             json={k: v for k, v in ADDRESS.items() if k != "city"},
                             headers=headers)
    assert resp.status == 422


async def test_nobody_reaches_another_users_address(client: TestClient) -> None:
    _, alice = await new_user(client)
    _, bob = await new_user(client)
    mine = await add(client, alice)
    theirs = await add(client, bob)
    before = await listing(client, alice)
    path = f"/api/v1/me/addresses/{mine['id']}"
    attempts = [
        ("GET", path, None),
        ("PATCH", path, {"line": "moved by bob"}),
        ("DELETE", path, None),
        ("POST", f"{path}/default", None),
    ]
    for method, url, body in attempts:
        resp = await client.request(method, url, headers=bob, json=body)
        assert resp.status == 404, method
        assert (await resp.json())["error"]["code"] == "not_found"
    assert await listing(client, alice) == before
    bobs = await listing(client, bob)
    assert [a["id"] for a in bobs] == [theirs["id"]] and bobs[0]["is_default"]
    for path in ("/api/v1/me/addresses/0", "/api/v1/me/addresses/abc",
                 "/api/v1/me/addresses/" + "9" * 30, "/api/v1/me/addresses/99999999999"):
        assert (await client.get(path, headers=alice)).status == 404


async def test_address_book_port_answers_only_the_owner(client: TestClient) -> None:
    alice_id, alice = await new_user(client)
    bob_id, _ = await new_user(client)
    address = await add(client, alice)
    book = client.app[ADDRESS_BOOK]
    assert await book.get(alice_id, address["id"]) == address
    assert await book.get(bob_id, address["id"]) is None
    assert await book.get(alice_id, 10**15) is None
