"""Rate limits through the real app under concurrent requests: purchases (inside admit.lua),
admission tokens, and every other write (rate_limit_middleware)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from mall.app import create_app
from mall.keys import Keys
from mall.namespace import drop_namespace
from mall.ratelimit import rate_limit_middleware
from mall.settings import Settings
from tests.conftest import settings_for
from tests.e2e.helpers import create_product
from tests.stack import auth, window

WINDOW_S = 2.0
USER, IP = 4, 10


async def start(settings: Settings) -> TestClient:
    app = create_app(settings)
    if rate_limit_middleware not in app.middlewares:
        app.middlewares.append(rate_limit_middleware)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture(scope="module")
async def lsettings(database_url: str) -> AsyncIterator[Settings]:
    s = settings_for(database_url, "rl", rate_window_s=WINDOW_S, rate_limit_user=USER,
                     rate_limit_ip=IP, rate_limit_sale=100_000, relay_enabled=False)
    yield s
    await drop_namespace(s)


@pytest.fixture(scope="module")
async def lclient(lsettings: Settings) -> AsyncIterator[TestClient]:
    client = await start(lsettings)
    yield client
    await client.close()


async def new_sale(client: TestClient, settings: Settings, stock: int = 100,
                   limit: int = 100) -> int:
    # Staff writes count too: each test uses a staff id of its own and sleeps out the IP window.
    sku = await create_product(client, settings, stock * 2)
    starts_at, ends_at = window(-1, 3600)
    resp = await client.post(
        "/api/v1/admin/flash-sales", headers=auth(settings, "staff1", "staff"),
        json={"sku_id": sku, "price": 100, "stock": stock, "per_user_limit": limit,
              "starts_at": starts_at, "ends_at": ends_at})
    assert resp.status == 201, await resp.text()
    await asyncio.sleep(WINDOW_S + 0.1)  # the two writes above counted against 127.0.0.1
    return int((await resp.json())["id"])


async def buy(client: TestClient, settings: Settings, sale_id: int, user: str,
              key: str | None = None) -> tuple[int, dict[str, Any], str | None]:
    headers = auth(settings, user)
    if key:
        headers["Idempotency-Key"] = key
    resp = await client.post(f"/api/v1/flash-sales/{sale_id}/orders", headers=headers,
                             json={"qty": 1})
    return resp.status, dict(await resp.json()), resp.headers.get("Retry-After")


async def sold(redis: Redis, settings: Settings, sale_id: int) -> tuple[int, int]:
    k = Keys(settings.namespace).sale(sale_id)
    return int(await redis.get(k.stock)), await redis.xlen(k.outbox)


def check_refusals(answers: list[tuple[int, dict[str, Any], str | None]], scope: str) -> None:
    for status, body, retry_after in answers:
        if status == 429:
            assert body["error"]["code"] == "rate_limited"
            assert body["error"]["details"]["scope"] == scope
            assert retry_after is not None and 1 <= int(retry_after) <= WINDOW_S


async def test_per_user_purchase_limit(lclient: TestClient, lsettings: Settings,
                                       redis: Redis) -> None:
    sale = await new_sale(lclient, lsettings)
    answers = await asyncio.gather(*(buy(lclient, lsettings, sale, "greedy")
                                     for _ in range(9)))
    assert Counter(a[0] for a in answers) == {202: USER, 429: 9 - USER}
    check_refusals(answers, "user")
    assert await sold(redis, lsettings, sale) == (100 - USER, USER)


async def test_per_ip_purchase_limit_and_window_reset(lclient: TestClient, lsettings: Settings,
                                                      redis: Redis) -> None:
    sale = await new_sale(lclient, lsettings)
    answers = await asyncio.gather(*(buy(lclient, lsettings, sale, f"ipu{n}")
                                     for n in range(25)))
    assert Counter(a[0] for a in answers) == {202: IP, 429: 25 - IP}
    check_refusals(answers, "ip")
    assert await sold(redis, lsettings, sale) == (100 - IP, IP)
    await asyncio.sleep(WINDOW_S + 0.1)
    answers = await asyncio.gather(*(buy(lclient, lsettings, sale, f"ipv{n}")
                                     for n in range(12)))
    assert Counter(a[0] for a in answers) == {202: IP, 429: 2}
    assert await sold(redis, lsettings, sale) == (100 - 2 * IP, 2 * IP)


async def test_replays_are_not_limited(lclient: TestClient, lsettings: Settings,
                                       redis: Redis) -> None:
    sale = await new_sale(lclient, lsettings)
    first = await buy(lclient, lsettings, sale, "replayer", key="only")
    assert first[0] == 202
    answers = await asyncio.gather(*(buy(lclient, lsettings, sale, "replayer", key="only")
                                     for _ in range(12)))
    assert {(s, b["order_id"]) for s, b, _ in answers} == {(202, first[1]["order_id"])}
    assert await sold(redis, lsettings, sale) == (99, 1)


async def test_per_sale_purchase_limit(database_url: str, redis: Redis) -> None:
    settings = settings_for(database_url, "rls", rate_window_s=WINDOW_S, rate_limit_user=100,
                            rate_limit_ip=10_000, rate_limit_sale=6, relay_enabled=False)
    client = await start(settings)
    try:
        sale = await new_sale(client, settings)
        other = await new_sale(client, settings)
        answers = await asyncio.gather(*(buy(client, settings, sale, f"su{n}")
                                         for n in range(20)))
        assert Counter(a[0] for a in answers) == {202: 6, 429: 14}
        check_refusals(answers, "sale")
        assert await sold(redis, settings, sale) == (94, 6)
        assert (await buy(client, settings, other, "su0"))[0] == 202  # a budget per sale
    finally:
        await client.close()
        await drop_namespace(settings)


async def test_admission_tokens_are_limited_like_purchases(lclient: TestClient,
                                                           lsettings: Settings) -> None:
    sale = await new_sale(lclient, lsettings)
    resps = await asyncio.gather(*(
        lclient.post(f"/api/v1/flash-sales/{sale}/admission-token",
                     headers=auth(lsettings, "tokbot")) for _ in range(8)))
    assert Counter(r.status for r in resps) == {201: USER, 429: 8 - USER}
    # Their counters are their own: the purchase budget is untouched.
    assert (await buy(lclient, lsettings, sale, "tokbot"))[0] == 202


async def test_writes_limited_per_user_and_per_ip(lclient: TestClient, lsettings: Settings,
                                                  redis: Redis) -> None:
    await asyncio.sleep(WINDOW_S + 0.1)

    async def put_cart(user: str) -> tuple[int, str | None, dict[str, Any]]:
        resp = await lclient.delete("/api/v1/cart", headers=auth(lsettings, user))
        body = dict(await resp.json()) if resp.status != 204 else {}
        return resp.status, resp.headers.get("Retry-After"), body

    answers = await asyncio.gather(*(put_cart("writer1") for _ in range(7)))
    assert Counter(s for s, _, _ in answers) == {204: USER, 429: 7 - USER}
    refused = [b for s, _, b in answers if s == 429]
    assert all(b["error"]["details"]["scope"] == "user" for b in refused)
    assert all(r is not None and int(r) >= 1 for s, r, _ in answers if s == 429)
    # Other users from the same IP share its budget: IP - USER left in this window.
    answers = await asyncio.gather(*(put_cart(f"writer{n}") for n in range(2, 12)))
    assert Counter(s for s, _, _ in answers) == {204: IP - USER, 429: 10 - (IP - USER)}
    # Reads are not limited.
    for _ in range(IP + 5):
        resp = await lclient.get("/api/v1/cart", headers=auth(lsettings, "writer1"))
        assert resp.status == 200
    await asyncio.sleep(WINDOW_S + 0.1)
    assert (await put_cart("writer1"))[0] == 204


async def test_webhooks_are_not_limited(lclient: TestClient, lsettings: Settings) -> None:
    await asyncio.sleep(WINDOW_S + 0.1)
    resps = await asyncio.gather(*(
        lclient.post("/api/v1/payments/webhooks/nosuchprovider", data=b"{}")
        for _ in range(IP + 5)))
    assert all(r.status != 429 for r in resps)
    # ...while an unauthenticated write elsewhere is counted against the IP.
    resps = await asyncio.gather(*(lclient.post("/api/v1/cart/items", json={})
                                   for _ in range(IP + 5)))
    assert Counter(r.status for r in resps)[429] == 5
