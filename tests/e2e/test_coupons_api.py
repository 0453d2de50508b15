"""The coupon routes through the real app: templates, claims, pushes, the wallet, bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from coupons.keys import CouponKeys
from mall.settings import Settings
from tests.e2e.catalog_helpers import call, new_category, new_product, staff_headers
from tests.stack import auth, iso, now

ADMIN = "/api/v1/admin/coupons"


def _user() -> str:
    return f"w{uuid.uuid4().hex[:12]}"


def template_body(**changes: Any) -> dict[str, Any]:
    start = now()
    body: dict[str, Any] = {
        "name": "满100减20", "kind": "threshold", "threshold": 10000, "amount": 2000,
        "claim_starts_at": iso(start - timedelta(seconds=5)),
        "claim_ends_at": iso(start + timedelta(hours=1)),
        "valid_from": iso(start - timedelta(seconds=5)),
        "valid_until": iso(start + timedelta(days=7)),
        "total": 5, "per_user": 2,
    }
    body.update(changes)
    return body


async def create(client: TestClient, settings: Settings, **changes: Any) -> dict[str, Any]:
    _, data = await call(client, "POST", ADMIN, 201, json=template_body(**changes),
                         headers=staff_headers(settings))
    return dict(data)


async def claim(client: TestClient, settings: Settings, template_id: int, user: str,
                key: str | None = None) -> tuple[int, Any]:
    headers = auth(settings, user)
    if key:
        headers["Idempotency-Key"] = key
    return await call(client, "POST", f"/api/v1/coupons/{template_id}/claim", headers=headers)


async def test_create_then_read_with_counts(client: TestClient, settings: Settings) -> None:
    t = await create(client, settings)
    assert t["status"] == "active" and t["kind"] == "threshold" and t["scope_ids"] == []
    _, one = await call(client, "GET", f"{ADMIN}/{t['id']}", 200,
                        headers=staff_headers(settings))
    assert one["counts"] == {"issued": 0, "used": 0, "available": 0, "returned": 0}
    assert one["claim_state"] == {"issued": 0, "remaining": 5}
    await call(client, "GET", f"{ADMIN}/{2**61}", 404, headers=staff_headers(settings))
    await call(client, "GET", f"{ADMIN}/abc", 404, headers=staff_headers(settings))
    await call(client, "GET", f"{ADMIN}/{t['id']}", 403, headers=auth(settings, "cust"))
    await call(client, "GET", f"{ADMIN}/{t['id']}", 401)


async def test_create_is_idempotent(client: TestClient, settings: Settings, pg: asyncpg.Pool,
                                    ) -> None:
    headers = {**staff_headers(settings), "Idempotency-Key": uuid.uuid4().hex}
    body = template_body(name=f"idem {uuid.uuid4().hex[:6]}")
    _, first = await call(client, "POST", ADMIN, 201, json=body, headers=headers)
    _, again = await call(client, "POST", ADMIN, 201, json=body, headers=headers)
    assert first == again
    assert await pg.fetchval("SELECT count(*) FROM coupon_templates WHERE name = $1",
                             body["name"]) == 1
    await call(client, "POST", ADMIN, 422, json={**body, "total": 6}, headers=headers)


async def test_list_pages_newest_first(client: TestClient, settings: Settings) -> None:
    ids = [(await create(client, settings))["id"] for _ in range(3)]
    _, page = await call(client, "GET", f"{ADMIN}?limit=2", 200, headers=staff_headers(settings))
    assert len(page["items"]) == 2 and page["items"][0]["id"] > page["items"][1]["id"]
    seen = [t["id"] for t in page["items"]]
    cursor = page["next_cursor"]
    while cursor and not set(ids) <= set(seen):
        _, page = await call(client, "GET", f"{ADMIN}?limit=2&cursor={cursor}", 200,
                             headers=staff_headers(settings))
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert set(ids) <= set(seen) and seen == sorted(seen, reverse=True)
    for query in ("limit=0", "limit=x", "cursor=%%%", "status=gone"):
        await call(client, "GET", f"{ADMIN}?{query}", 422, headers=staff_headers(settings))


async def test_claim_replay_limit_and_sold_out(client: TestClient, settings: Settings,
                                               pg: asyncpg.Pool, redis: Redis) -> None:
    t = await create(client, settings, total=3, per_user=2)
    alice, bob = _user(), _user()
    status, first = await claim(client, settings, t["id"], alice, "k1")
    assert status == 201 and first["seq"] == 1 and first["state"] == "available"
    assert first["rules"]["amount"] == 2000 and first["remaining"] == 2
    status, replay = await claim(client, settings, t["id"], alice, "k1")
    assert status == 201 and replay["id"] == first["id"]
    assert (await claim(client, settings, t["id"], alice))[1]["seq"] == 2
    status, err = await claim(client, settings, t["id"], alice)
    assert (status, err["error"]["code"]) == (409, "limit_reached")
    assert (await claim(client, settings, t["id"], bob))[0] == 201
    status, err = await claim(client, settings, t["id"], _user())
    assert (status, err["error"]["code"]) == (409, "sold_out")
    rows = await pg.fetchval("SELECT count(*) FROM user_coupons WHERE template_id = $1", t["id"])
    issued = await redis.get(CouponKeys(settings.namespace).template(t["id"]).issued)
    assert rows == int(issued) == 3
    _, listed = await call(client, "GET", "/api/v1/coupons?limit=100", 200)
    assert any(i["id"] == t["id"] and i["remaining"] == 0
                                     for i in listed["items"])


async def test_claim_refusals(client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    start = now()
    later = await create(client, settings, claim_starts_at=iso(start + timedelta(hours=1)),
                         claim_ends_at=iso(start + timedelta(hours=2)))
    status, err = await claim(client, settings, later["id"], _user())
    assert (status, err["error"]["code"]) == (403, "not_started")
    ended = await create(client, settings)
    _, done = await call(client, "POST", f"{ADMIN}/{ended['id']}/end", 200,
                         headers=staff_headers(settings))
    assert done["status"] == "ended" and done["changed"] is True
    status, err = await claim(client, settings, ended["id"], _user())
    assert (status, err["error"]["code"]) == (403, "ended")
    assert (await claim(client, settings, 2**61, _user()))[0] == 404
    assert (await call(client, "POST", f"/api/v1/coupons/{ended['id']}/claim"))[0] == 401
    status, _ = await claim(client, settings, ended["id"], _user(), "bad key!")
    assert status == 422
    assert await pg.fetchval("SELECT count(*) FROM user_coupons WHERE template_id = ANY($1)",
                             [later["id"], ended["id"]]) == 0
    _, listed = await call(client, "GET", "/api/v1/coupons?limit=100", 200)
    assert not {later["id"], ended["id"]} & {i["id"] for i in listed["items"]}


async def test_end_keeps_held_coupons_usable(client: TestClient, settings: Settings) -> None:
    t = await create(client, settings)
    user = _user()
    assert (await claim(client, settings, t["id"], user))[0] == 201
    await call(client, "POST", f"{ADMIN}/{t['id']}/end", 200, headers=staff_headers(settings))
    _, again = await call(client, "POST", f"{ADMIN}/{t['id']}/end", 200,
                          headers=staff_headers(settings))
    assert again["changed"] is False
    _, wallet = await call(client, "GET", "/api/v1/me/coupons?state=available", 200,
                           headers=auth(settings, user))
    assert [c["template_id"] for c in wallet["items"]] == [t["id"]]


async def test_claim_rebuilds_lost_redis_state(client: TestClient, settings: Settings,
                                               redis: Redis) -> None:
    t = await create(client, settings, total=2, per_user=1)
    first = _user()
    assert (await claim(client, settings, t["id"], first))[0] == 201
    keys = CouponKeys(settings.namespace).template(t["id"])
    await redis.delete(*keys.state())
    assert (await claim(client, settings, t["id"], first))[1]["error"]["code"] == "limit_reached"
    assert (await claim(client, settings, t["id"], _user()))[0] == 201
    assert (await claim(client, settings, t["id"], _user()))[1]["error"]["code"] == "sold_out"


async def test_wallet_filters(client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    user = _user()
    a = await create(client, settings)
    b = await create(client, settings)
    c = await create(client, settings)
    ids = {}
    for t in (a, b, c):
        ids[t["id"]] = (await claim(client, settings, t["id"], user))[1]["id"]
    await pg.execute("UPDATE user_coupons SET state = 'used', order_id = 'co-w', used_at = now()"
                     " WHERE id = $1", ids[b["id"]])
    await pg.execute("UPDATE coupon_templates SET valid_from = now() - interval '2 days',"
                     " valid_until = now() - interval '1 day' WHERE id = $1", c["id"])
    headers = auth(settings, user)
    for state, expected in (("available", a), ("used", b), ("expired", c)):
        _, page = await call(client, "GET", f"/api/v1/me/coupons?state={state}", 200,
                             headers=headers)
        assert [x["template_id"] for x in page["items"]] == [expected["id"]], state
        assert page["items"][0]["state"] == state
    _, everything = await call(client, "GET", "/api/v1/me/coupons?limit=2", 200, headers=headers)
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    _, rest = await call(client, "GET", f"/api/v1/me/coupons?cursor={everything['next_cursor']}",
                         200, headers=headers)
    assert len(rest["items"]) == 1
    await call(client, "GET", "/api/v1/me/coupons?state=lost", 422, headers=headers)
    _, other = await call(client, "GET", "/api/v1/me/coupons", 200,
                          headers=auth(settings, _user()))
    assert other["items"] == []


async def test_patch_only_before_the_claim_window(client: TestClient, settings: Settings,
                                                  redis: Redis) -> None:
    start = now()
    t = await create(client, settings, claim_starts_at=iso(start + timedelta(hours=1)),
                     claim_ends_at=iso(start + timedelta(hours=2)))
    _, patched = await call(client, "PATCH", f"{ADMIN}/{t['id']}", 200,
                            json={"total": 9, "name": "新名字"}, headers=staff_headers(settings))
    assert (patched["total"], patched["name"]) == (9, "新名字")
    keys = CouponKeys(settings.namespace).template(t["id"])
    assert await redis.hget(keys.meta, "total") == b"9"
    await call(client, "PATCH", f"{ADMIN}/{t['id']}", 422, json={"per_user": 10, "total": 3},
               headers=staff_headers(settings))
    await call(client, "PATCH", f"{ADMIN}/{t['id']}", 422, json={"kind": "percent"},
               headers=staff_headers(settings))
    await call(client, "PATCH", f"{ADMIN}/{t['id']}", 422, json={"colour": "red"},
               headers=staff_headers(settings))
    open_now = await create(client, settings)
    status, err = await call(client, "PATCH", f"{ADMIN}/{open_now['id']}", json={"total": 9},
                             headers=staff_headers(settings))
    assert (status, err["error"]["code"]) == (409, "claim_started")
    assert await redis.hget(CouponKeys(settings.namespace).template(open_now["id"]).meta,
                            "total") == b"5"
    await call(client, "PATCH", f"{ADMIN}/{2**61}", 404, json={"total": 9},
               headers=staff_headers(settings))
    # A push before the window counts; after it the rules are fixed.
    await call(client, "POST", f"{ADMIN}/{t['id']}/push", 200, json={"user_ids": [_user()]},
               headers=staff_headers(settings))
    status, err = await call(client, "PATCH", f"{ADMIN}/{t['id']}", json={"total": 20},
                             headers=staff_headers(settings))
    assert (status, err["error"]["code"]) == (409, "already_issued")


async def test_scope_ids_must_exist(client: TestClient, settings: Settings,
                                    pg: asyncpg.Pool) -> None:
    category = await new_category(client, settings)
    product = await new_product(client, settings, category_id=category["id"])
    t = await create(client, settings, scope="categories", scope_ids=[category["id"]])
    assert t["scope_ids"] == [category["id"]]
    await create(client, settings, scope="products", scope_ids=[product["id"]])
    before = await pg.fetchval("SELECT count(*) FROM coupon_templates")
    for scope, ids in (("categories", [category["id"], 2**61]), ("products", [2**61])):
        status, err = await call(client, "POST", ADMIN, json=template_body(
            scope=scope, scope_ids=ids), headers=staff_headers(settings))
        assert (status, err["error"]["code"]) == (422, "unknown_scope_ids")
        assert err["error"]["details"]["missing"] == [2**61]
    assert await pg.fetchval("SELECT count(*) FROM coupon_templates") == before


async def test_bad_template_bodies_change_nothing(client: TestClient, settings: Settings,
                                                  pg: asyncpg.Pool) -> None:
    start = now()
    bad: list[Any] = [
        b"{not json", b"[]", b"",
        {**template_body(), "colour": "red"},
        template_body(total="5"), template_body(total=0), template_body(per_user=6, total=5),
        template_body(kind="bogo"), template_body(amount=-1), template_body(stackable="yes"),
        template_body(claim_starts_at="tomorrow"),
        template_body(claim_starts_at="2030-01-01T00:00:00"),
        template_body(claim_ends_at=iso(start - timedelta(hours=2))),
        template_body(claim_starts_at=iso(start - timedelta(hours=3)),
                      claim_ends_at=iso(start - timedelta(hours=2))),
        template_body(valid_until=iso(start - timedelta(days=1))),
        template_body(valid_until=iso(start + timedelta(minutes=30))),
        template_body(threshold=1000),
        template_body(kind="fixed"),
        template_body(kind="percent", amount=0, threshold=0),
        template_body(kind="percent", percent_off=100, amount=0),
        template_body(kind="fixed", threshold=0, max_discount=5),
        template_body(scope="categories"), template_body(scope_ids=[1]),
        template_body(scope="products", scope_ids=[0]),
        template_body(name="   "),
    ]
    before = await pg.fetchval("SELECT count(*) FROM coupon_templates")
    for body in bad:
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        status, err = await call(client, "POST", ADMIN, headers=staff_headers(settings), **kwargs)
        assert status == 422 and err["error"]["code"] == "invalid_request", (body, status, err)
    assert await pg.fetchval("SELECT count(*) FROM coupon_templates") == before
    await call(client, "POST", ADMIN, 403, json=template_body(), headers=auth(settings, "cust"))


async def test_push_to_users_counts_against_total_and_limit(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    t = await create(client, settings, total=4, per_user=1)
    holder = _user()
    assert (await claim(client, settings, t["id"], holder))[0] == 201
    users = [holder, *[_user() for _ in range(4)]]
    headers = {**staff_headers(settings), "Idempotency-Key": uuid.uuid4().hex}
    _, result = await call(client, "POST", f"{ADMIN}/{t['id']}/push", 200,
                           json={"user_ids": users}, headers=headers)
    assert (result["issued"], result["limit_reached"], result["sold_out"]) == (3, 1, 1)
    assert result["refused"] == 2
    _, replay = await call(client, "POST", f"{ADMIN}/{t['id']}/push", 200,
                           json={"user_ids": users}, headers=headers)
    assert replay == result
    rows = await pg.fetch("SELECT user_id, source FROM user_coupons WHERE template_id = $1",
                          t["id"])
    assert len(rows) == 4
    assert sorted(r["source"] for r in rows) == ["claim", "push", "push", "push"]
    for body in ({}, {"user_ids": []}, {"user_ids": ["bad id"]},
                 {"user_ids": ["a"], "segment": {"kind": "all_users"}},
                 {"segment": {"kind": "vip"}}, {"segment": {"kind": "level_at_least"}},
                 {"user_ids": [f"u{i}" for i in range(10_001)]}):
        await call(client, "POST", f"{ADMIN}/{t['id']}/push", 422, json=body,
                   headers=staff_headers(settings))
    status, err = await call(client, "POST", f"{ADMIN}/{t['id']}/push",
                             json={"segment": {"kind": "level_at_least", "level": 999}},
                             headers=staff_headers(settings))
    assert (status, err["error"]["code"]) == (422, "unknown_level")
    await call(client, "POST", f"{ADMIN}/{2**61}/push", 404, json={"user_ids": ["a"]},
               headers=staff_headers(settings))
    await call(client, "POST", f"{ADMIN}/{t['id']}/end", 200, headers=staff_headers(settings))
    status, err = await call(client, "POST", f"{ADMIN}/{t['id']}/push",
                             json={"user_ids": [_user()]}, headers=staff_headers(settings))
    assert (status, err["error"]["code"]) == (409, "ended")
    assert await pg.fetchval("SELECT count(*) FROM user_coupons WHERE template_id = $1",
                             t["id"]) == 4


async def test_push_to_segments(client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex[:8]
    gold, silver, poor = f"g{tag}", f"s{tag}", f"p{tag}"
    await pg.execute("INSERT INTO members (user_id, spent) VALUES ($1, 600000), ($2, 150000),"
                     " ($3, 10)", gold, silver, poor)
    t = await create(client, settings, total=10_000, per_user=1)
    _, result = await call(client, "POST", f"{ADMIN}/{t['id']}/push", 200,
                           json={"segment": {"kind": "level_at_least", "level": 1}},
                           headers=staff_headers(settings))
    holders = {r["user_id"] for r in await pg.fetch(
        "SELECT user_id FROM user_coupons WHERE template_id = $1", t["id"])}
    assert {gold, silver} <= holders and poor not in holders
    assert result["issued"] == len(holders)
    assert await pg.fetchval("SELECT count(*) FROM members WHERE spent >= 100000") == len(holders)

    since = now()
    buyer, old_buyer = f"b{tag}", f"o{tag}"
    await pg.execute(
        "INSERT INTO orders (order_id, user_id, total, status, created_at)"
        " VALUES ($1, $2, 1, 'pending_payment', now()),"
        " ($3, $4, 1, 'pending_payment', now() - interval '3 days')",
        f"co-{uuid.uuid4().hex}", buyer, f"co-{uuid.uuid4().hex}", old_buyer)
    t2 = await create(client, settings, total=10_000, per_user=1)
    _, result = await call(client, "POST", f"{ADMIN}/{t2['id']}/push", 200,
                           json={"segment": {"kind": "ordered_since",
                                             "since": iso(since - timedelta(seconds=5))}},
                           headers=staff_headers(settings))
    holders = {r["user_id"] for r in await pg.fetch(
        "SELECT user_id FROM user_coupons WHERE template_id = $1", t2["id"])}
    assert buyer in holders and old_buyer not in holders

    registered = await pg.fetchval("SELECT count(*) FROM users")
    t3 = await create(client, settings, total=100_000, per_user=1)
    _, result = await call(client, "POST", f"{ADMIN}/{t3['id']}/push", 200,
                           json={"segment": {"kind": "all_users"}},
                           headers=staff_headers(settings))
    assert result["issued"] >= registered
    assert result["issued"] == await pg.fetchval(
        "SELECT count(*) FROM user_coupons WHERE template_id = $1", t3["id"])


async def test_retry_finishes_a_claim_cut_off_before_its_insert(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis) -> None:
    """The gate counted the coupon, then the process died before the row was written."""
    from coupons.state import ClaimState, Gate

    t = await create(client, settings, total=3, per_user=1)
    user, key = _user(), "retry-me"
    state = ClaimState(redis, CouponKeys(settings.namespace), 60)
    cut_off = await state.issue(t["id"], user, key)
    assert (cut_off.code, cut_off.seq) == (Gate.ISSUED, 1)
    count = "SELECT count(*) FROM user_coupons WHERE template_id = $1"
    assert await pg.fetchval(count, t["id"]) == 0
    status, err = await claim(client, settings, t["id"], user)
    assert (status, err["error"]["code"]) == (409, "limit_reached"), "under-issue, never over"
    status, coupon = await claim(client, settings, t["id"], user, key)
    assert status == 201 and coupon["seq"] == 1
    assert await pg.fetchval(count, t["id"]) == 1
    keys = CouponKeys(settings.namespace).template(t["id"])
    assert int(await redis.get(keys.issued)) == 1


async def test_push_takes_ten_thousand_users(client: TestClient, settings: Settings,
                                             pg: asyncpg.Pool) -> None:
    t = await create(client, settings, total=10_000, per_user=1)
    tag = uuid.uuid4().hex[:6]
    users = [f"{tag}-{i:057d}" for i in range(10_000)]  # 64 characters each
    _, result = await call(client, "POST", f"{ADMIN}/{t['id']}/push", 200,
                           json={"user_ids": users}, headers=staff_headers(settings))
    assert (result["issued"], result["refused"]) == (10_000, 0)
    assert await pg.fetchval("SELECT count(*) FROM user_coupons WHERE template_id = $1",
                             t["id"]) == 10_000
    _, one = await call(client, "GET", f"{ADMIN}/{t['id']}", 200,
                        headers=staff_headers(settings))
    assert one["counts"]["issued"] == 10_000 and one["claim_state"]["remaining"] == 0
