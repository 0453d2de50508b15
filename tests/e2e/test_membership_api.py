"""A member's own routes over HTTP: membership summary, ledger pages, daily check-in."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import call, staff_headers
from tests.stack import auth


def new_user() -> str:
    return f"mb{uuid.uuid4().hex[:12]}"


async def ledger_rows(pg: asyncpg.Pool, user: str) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM points_ledger WHERE user_id = $1", user))


async def test_membership_of_a_new_user(client: TestClient, settings: Settings,
                                        pg: asyncpg.Pool) -> None:
    levels = await pg.fetch("SELECT level, name, min_spent FROM member_levels ORDER BY level")
    user = new_user()
    _, view = await call(client, "GET", "/api/v1/me/membership", 200,
                         headers=auth(settings, user))
    assert view == {"user_id": user, "level": 0, "name": levels[0]["name"], "spent": 0,
                    "points": 0, "redeemed": 0,
                    "next_level": {"level": 1, "name": levels[1]["name"],
                                   "min_spent": levels[1]["min_spent"],
                                   "missing": levels[1]["min_spent"]}}
    status, body = await call(client, "GET", "/api/v1/me/membership")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_checkin_once_a_day(client: TestClient, settings: Settings,
                                  pg: asyncpg.Pool) -> None:
    user = new_user()
    headers = auth(settings, user)
    _, done = await call(client, "POST", "/api/v1/me/checkin", 201, headers=headers)
    assert (done["streak"], done["points"], done["balance"]) == (1, 5, 5)
    status, again = await call(client, "POST", "/api/v1/me/checkin", headers=headers)
    assert (status, again["error"]["code"]) == (409, "already_checked_in")
    assert again["error"]["details"]["day"] == done["day"]
    _, page = await call(client, "GET", "/api/v1/me/points", 200, headers=headers)
    assert page["balance"] == 5 and page["next_cursor"] is None
    assert [(i["reason"], i["delta"]) for i in page["items"]] == [("checkin", 5)]
    assert await ledger_rows(pg, user) == 1


async def test_concurrent_checkins_give_points_once(client: TestClient, settings: Settings,
                                                    pg: asyncpg.Pool) -> None:
    user = new_user()
    headers = auth(settings, user)
    results = await asyncio.gather(*(call(client, "POST", "/api/v1/me/checkin", headers=headers)
                                     for _ in range(20)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 19
    assert all(body["error"]["code"] == "already_checked_in"
               for status, body in results if status == 409)
    assert await ledger_rows(pg, user) == 1
    assert await pg.fetchval("SELECT points FROM members WHERE user_id = $1", user) == 5


async def test_checkin_replays_with_its_idempotency_key(client: TestClient,
                                                       settings: Settings,
                                                       pg: asyncpg.Pool) -> None:
    user = new_user()
    headers = {**auth(settings, user), "Idempotency-Key": "checkin-1"}
    _, first = await call(client, "POST", "/api/v1/me/checkin", 201, headers=headers)
    _, replay = await call(client, "POST", "/api/v1/me/checkin", 201, headers=headers)
    assert replay == first
    status, body = await call(client, "POST", "/api/v1/me/checkin",
                              headers={**headers, "Idempotency-Key": "bad key!"})
    assert (status, body["error"]["code"]) == (422, "invalid_idempotency_key")
    assert await ledger_rows(pg, user) == 1


async def test_points_pages_newest_first(client: TestClient, settings: Settings) -> None:
    user = new_user()
    for delta in (10, 20, 30, 40, 50):
        await call(client, "POST", f"/api/v1/admin/members/{user}/points", 201,
                   json={"delta": delta, "note": f"grant {delta}"},
                   headers=staff_headers(settings))
    headers = auth(settings, user)
    seen: list[int] = []
    cursor = None
    for _ in range(4):
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        _, page = await call(client, "GET", "/api/v1/me/points" + query, 200, headers=headers)
        assert page["balance"] == 150
        seen += [item["delta"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [50, 40, 30, 20, 10]
    for bad in ("limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=-1", "cursor=0"):
        status, body = await call(client, "GET", f"/api/v1/me/points?{bad}", headers=headers)
        assert (status, body["error"]["code"]) == (422, "invalid_request"), bad
    # Nobody reads another's ledger: the same page for someone else is empty.
    _, other = await call(client, "GET", "/api/v1/me/points", 200,
                          headers=auth(settings, new_user()))
    assert other == {"balance": 0, "items": [], "next_cursor": None}
