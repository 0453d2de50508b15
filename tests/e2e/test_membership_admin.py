"""Staff membership routes over HTTP: the level table, a member's account, adjustments; bad
input answers its documented status and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import call, staff_headers
from tests.stack import auth

LEVELS = "/api/v1/admin/member-levels"


def new_user() -> str:
    return f"ma{uuid.uuid4().hex[:12]}"


def points_path(user: str) -> str:
    return f"/api/v1/admin/members/{user}/points"


async def state(pg: asyncpg.Pool, user: str) -> tuple[Any, ...]:
    balance = await pg.fetchval("SELECT points FROM members WHERE user_id = $1", user)
    rows = await pg.fetchval("SELECT count(*) FROM points_ledger WHERE user_id = $1", user)
    return balance, rows


async def test_adjust_and_read_a_member(client: TestClient, settings: Settings) -> None:
    user = new_user()
    staff = staff_headers(settings)
    _, added = await call(client, "POST", points_path(user), 201,
                          json={"delta": 300, "note": "goodwill"}, headers=staff)
    assert added["balance"] == 300
    assert {k: added["entry"][k] for k in ("delta", "reason", "note", "order_id")} == {
        "delta": 300, "reason": "adjust", "note": "goodwill", "order_id": None}
    _, taken = await call(client, "POST", points_path(user), 201,
                          json={"delta": -120, "note": "correction"}, headers=staff)
    assert taken["balance"] == 180
    _, view = await call(client, "GET", f"/api/v1/admin/members/{user}", 200, headers=staff)
    assert (view["user_id"], view["points"], view["level"], view["spent"]) == (user, 180, 0, 0)
    assert [i["delta"] for i in view["ledger"]["items"]] == [-120, 300]
    _, mine = await call(client, "GET", "/api/v1/me/membership", 200,
                         headers=auth(settings, user))
    assert mine["points"] == 180


async def test_adjust_replays_with_its_idempotency_key(client: TestClient, settings: Settings,
                                                       pg: asyncpg.Pool) -> None:
    user = new_user()
    headers = {**staff_headers(settings), "Idempotency-Key": "adj-1"}
    body = {"delta": 40, "note": "once"}
    _, first = await call(client, "POST", points_path(user), 201, json=body, headers=headers)
    _, replay = await call(client, "POST", points_path(user), 201, json=body, headers=headers)
    assert replay == first
    status, err = await call(client, "POST", points_path(user), json={**body, "delta": 41},
                             headers=headers)
    assert (status, err["error"]["code"]) == (422, "idempotency_key_reused")
    assert await state(pg, user) == (40, 1)


async def test_bad_adjustments_change_nothing(client: TestClient, settings: Settings,
                                              pg: asyncpg.Pool) -> None:
    user = new_user()
    staff = staff_headers(settings)
    await call(client, "POST", points_path(user), 201, json={"delta": 50, "note": "start"},
               headers=staff)
    before = await state(pg, user)
    bad_bodies: list[Any] = [
        {"delta": 0, "note": "zero"}, {"delta": 100_000_001, "note": "huge"},
        {"delta": -100_000_001, "note": "huge"}, {"delta": 1.5, "note": "float"},
        {"delta": "5", "note": "text"}, {"delta": True, "note": "bool"}, {"delta": 5},
        {"delta": 5, "note": ""}, {"delta": 5, "note": "   "}, {"delta": 5, "note": "x" * 201},
        {"delta": 5, "note": "a\nb"}, {"delta": 5, "note": "ok", "reason": "earn"}, [], None,
    ]
    for body in bad_bodies:
        status, err = await call(client, "POST", points_path(user), json=body, headers=staff)
        assert (status, err["error"]["code"]) == (422, "invalid_request"), body
    status, err = await call(client, "POST", points_path(user), data=b"{not json",
                             headers=staff)
    assert status == 422
    status, err = await call(client, "POST", points_path(user),
                             json={"delta": -51, "note": "too much"}, headers=staff)
    assert (status, err["error"]["code"]) == (409, "points_insufficient")
    assert err["error"]["details"]["balance"] == 50
    for path in (points_path("bad.id"), points_path("x" * 65)):
        status, err = await call(client, "POST", path, json={"delta": 5, "note": "n"},
                                 headers=staff)
        assert status == 404
    status, _ = await call(client, "POST", points_path(user), json={"delta": 5, "note": "n"},
                           headers=auth(settings, user))
    assert status == 403
    status, _ = await call(client, "POST", points_path(user), json={"delta": 5, "note": "n"},
                           headers=auth(settings, user, "member"))
    assert status == 403
    status, _ = await call(client, "POST", points_path(user), json={"delta": 5, "note": "n"})
    assert status == 401
    assert await state(pg, user) == before


async def test_member_view_refuses_bad_ids_and_customers(client: TestClient,
                                                         settings: Settings) -> None:
    staff = staff_headers(settings)
    status, _ = await call(client, "GET", "/api/v1/admin/members/a%20b", headers=staff)
    assert status == 404
    status, _ = await call(client, "GET", f"/api/v1/admin/members/{new_user()}",
                           headers=auth(settings, "someone"))
    assert status == 403
    _, view = await call(client, "GET", f"/api/v1/admin/members/{new_user()}", 200,
                         headers=staff)
    assert (view["points"], view["spent"], view["ledger"]["items"]) == (0, 0, [])


async def test_replace_the_level_table(client: TestClient, settings: Settings,
                                       pg: asyncpg.Pool) -> None:
    staff = staff_headers(settings)
    _, original = await call(client, "GET", LEVELS, 200, headers=staff)
    user = new_user()
    await pg.execute("INSERT INTO members (user_id, spent) VALUES ($1, 30000)", user)
    new_table = [{"level": 0, "name": "bronze", "min_spent": 0},
                 {"level": 1, "name": "star", "min_spent": 20_000},
                 {"level": 2, "name": "moon", "min_spent": 90_000}]
    try:
        _, replaced = await call(client, "PUT", LEVELS, 200, json={"levels": new_table},
                                 headers=staff)
        assert replaced == {"levels": new_table}
        _, view = await call(client, "GET", "/api/v1/me/membership", 200,
                             headers=auth(settings, user))
        assert (view["level"], view["name"], view["next_level"]["missing"]) == (1, "star",
                                                                                60_000)
    finally:
        await call(client, "PUT", LEVELS, 200, json=original, headers=staff)
    _, restored = await call(client, "GET", LEVELS, 200, headers=staff)
    assert restored == original


async def test_bad_level_tables_are_refused_and_change_nothing(client: TestClient,
                                                               settings: Settings) -> None:
    staff = staff_headers(settings)
    _, before = await call(client, "GET", LEVELS, 200, headers=staff)

    def lv(level: int, name: str, min_spent: int) -> dict[str, Any]:
        return {"level": level, "name": name, "min_spent": min_spent}

    bad_tables: list[Any] = [
        [],
        [lv(0, "a", 5)],  # level 0 must start at 0
        [lv(1, "a", 0)],  # numbering must start at 0
        [lv(0, "a", 0), lv(2, "b", 10)],  # a gap
        [lv(0, "a", 0), lv(1, "b", 10), lv(2, "c", 10)],  # not strictly increasing
        [lv(0, "a", 0), lv(1, "b", 10), lv(2, "c", 5)],
        [lv(0, "a", 0), lv(1, "a", 10)],  # duplicate name
        [lv(0, "a", 0), lv(1, " ", 10)],
        [lv(0, "a", 0), lv(1, "b", -10)],
        [lv(0, "a", 0), lv(1, "x" * 41, 10)],
        [lv(1, "b", 10), lv(0, "a", 0)],  # out of order
        [lv(i, f"n{i}", i * 10) for i in range(21)],  # too many
        [{"level": 0, "name": "a", "min_spent": 0, "bonus": 2}],
        [{"level": 0, "name": "a"}],
    ]
    for table in bad_tables:
        status, err = await call(client, "PUT", LEVELS, json={"levels": table}, headers=staff)
        assert (status, err["error"]["code"]) == (422, "invalid_request"), table
    status, _ = await call(client, "PUT", LEVELS, json={"levels": before["levels"]},
                           headers=auth(settings, "cust"))
    assert status == 403
    status, _ = await call(client, "GET", LEVELS, headers=auth(settings, "cust", "member"))
    assert status == 403
    _, after = await call(client, "GET", LEVELS, 200, headers=staff)
    assert after == before
