"""Recommendation routes through the real app, on counts built by the real builder."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bench.recs_eval import GeneratedOrder, History, Loaded, load_catalog, load_orders
from mall.app import create_app
from mall.settings import Settings
from recommendations import serve
from recommendations.build import RecsBuilder
from recommendations.keys import RecsKeys
from tests.stack import auth

ME = 100
UNPUBLISHED = 7
# (products, times) bought by other users; products 0-5 are category 0, 6-11 category 1.
BOUGHT = [((0, 1), 5), ((0, 7), 8), ((2, 3), 5), ((4, 5), 5), ((8, 9), 2), ((11,), 4)]


@dataclass(frozen=True)
class Scene:
    loaded: Loaded
    me: str

    def pid(self, index: int) -> int:
        return self.loaded.product_ids[index]


async def refresh(pg: asyncpg.Pool, redis: Redis, settings: Settings) -> None:
    """One refresh by this test; the app's own loop may hold the lock for a moment."""
    builder = RecsBuilder(pg, redis, RecsKeys(settings.namespace), settle_s=0)
    for _ in range(200):
        if await builder.refresh() is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the refresh lock was never free")


@pytest.fixture(scope="module")
async def scene(pg: asyncpg.Pool, redis: Redis, settings: Settings) -> Scene:
    history = History(categories=2, categories_of=[p // 6 for p in range(12)])
    start = datetime.now(UTC) - timedelta(days=2)
    user = 0
    for products, times in BOUGHT:
        for _ in range(times):
            user += 1
            history.orders.append(GeneratedOrder(user, start, products))
    history.orders.append(GeneratedOrder(ME, start + timedelta(days=1), (0,)))
    async with pg.acquire() as conn:
        loaded = await load_catalog(conn, history, f"e{uuid.uuid4().hex[:8]}",
                                    unpublished=frozenset({UNPUBLISHED}))
        await load_orders(conn, loaded, history.orders, random.Random(0))
    await refresh(pg, redis, settings)
    return Scene(loaded, loaded.user_id(ME))


async def get(client: TestClient, path: str, status: int = 200, **kwargs: object) -> dict:
    resp = await client.get(path, **kwargs)
    body = await resp.json()
    assert resp.status == status, body
    return dict(body)


def ids(body: dict) -> list[int]:
    return [item["id"] for item in body["items"]]


async def test_bought_together_first_and_unpublished_never(client: TestClient,
                                                           scene: Scene) -> None:
    body = await get(client, f"/api/v1/products/{scene.pid(0)}/recommendations")
    first = body["items"][0]
    assert (first["id"], first["reason"], first["currency"]) == \
        (scene.pid(1), "bought_together", "CNY")
    assert set(first) == {"id", "name", "price_from", "currency", "reason"}
    assert scene.pid(UNPUBLISHED) not in ids(body)  # bought with it more often than product 1
    assert scene.pid(0) not in ids(body)
    assert len(body["items"]) <= 10


async def test_unpublishing_takes_effect_at_once(client: TestClient, pg: asyncpg.Pool,
                                                 scene: Scene) -> None:
    path = f"/api/v1/products/{scene.pid(2)}/recommendations"
    assert ids(await get(client, path))[0] == scene.pid(3)
    await pg.execute("UPDATE products SET published = false WHERE id = $1", scene.pid(3))
    try:
        assert scene.pid(3) not in ids(await get(client, path))
    finally:
        await pg.execute("UPDATE products SET published = true WHERE id = $1", scene.pid(3))


async def test_falls_back_to_popular_in_the_category(client: TestClient, scene: Scene) -> None:
    body = await get(client, f"/api/v1/products/{scene.pid(10)}/recommendations?limit=3")
    assert [(i["id"], i["reason"]) for i in body["items"]] == [
        (scene.pid(11), "popular_in_category"), (scene.pid(8), "popular_in_category"),
        (scene.pid(9), "popular_in_category")]


@pytest.mark.parametrize("query", ["limit=0", "limit=1000", "limit=abc", "limit=-1", "limit="])
async def test_bad_limit_is_422(client: TestClient, settings: Settings, scene: Scene,
                                query: str) -> None:
    body = await get(client, f"/api/v1/products/{scene.pid(0)}/recommendations?{query}", 422)
    assert body["error"]["code"] == "invalid_request"
    body = await get(client, f"/api/v1/me/recommendations?{query}", 422,
                     headers=auth(settings, scene.me))
    assert body["error"]["code"] == "invalid_request"


async def test_unknown_or_unpublished_product_is_404(client: TestClient, scene: Scene) -> None:
    for product in (str(2**60), "abc", "0", str(scene.pid(UNPUBLISHED))):
        body = await get(client, f"/api/v1/products/{product}/recommendations", 404)
        assert body["error"]["code"] == "not_found"


async def test_limit_is_honoured(client: TestClient, scene: Scene) -> None:
    body = await get(client, f"/api/v1/products/{scene.pid(0)}/recommendations?limit=1")
    assert ids(body) == [scene.pid(1)]


async def test_me_needs_a_token(client: TestClient) -> None:
    body = await get(client, "/api/v1/me/recommendations", 401)
    assert body["error"]["code"] == "unauthorized"


async def test_user_recs_use_orders_views_and_cart_and_skip_bought(
        client: TestClient, pg: asyncpg.Pool, settings: Settings, scene: Scene) -> None:
    headers = auth(settings, scene.me)
    body = await get(client, "/api/v1/me/recommendations?limit=20", headers=headers)
    before = {i["id"]: i["reason"] for i in body["items"]}
    assert ids(body)[0] == scene.pid(1)  # bought with product 0, which this user bought
    assert before[scene.pid(1)] == "bought_together"
    assert scene.pid(0) not in before and scene.pid(UNPUBLISHED) not in before
    # Before the view and the cart, 3 and 5 only come as best sellers of the category.
    assert before.get(scene.pid(3)) != "bought_together"
    assert before.get(scene.pid(5)) != "bought_together"

    await pg.execute("INSERT INTO events (at, kind, user_id, product_id) "
                     "VALUES (now(), 'view', $1, $2)", scene.me, scene.pid(2))
    sku = scene.loaded.skus_of[scene.pid(4)][0]
    resp = await client.post("/api/v1/cart/items", headers=headers, json={"sku_id": sku})
    assert resp.status == 200, await resp.text()
    try:
        body = await get(client, "/api/v1/me/recommendations?limit=20", headers=headers)
    finally:
        await client.delete("/api/v1/cart", headers=headers)
    reasons = {i["id"]: i["reason"] for i in body["items"]}
    assert reasons.get(scene.pid(3)) == "bought_together"  # viewed product 2
    assert reasons.get(scene.pid(5)) == "bought_together"  # product 4 is in the cart
    assert reasons.get(scene.pid(1)) == "bought_together"
    assert scene.pid(4) not in reasons  # in the cart already
    assert scene.pid(0) not in reasons and scene.pid(UNPUBLISHED) not in reasons


async def test_user_without_history_gets_best_sellers(
        client: TestClient, pg: asyncpg.Pool, redis: Redis, settings: Settings,
        scene: Scene) -> None:
    newcomer = f"new{uuid.uuid4().hex[:8]}"
    body = await get(client, "/api/v1/me/recommendations?limit=5",
                     headers=auth(settings, newcomer))
    expected = await serve.popular(pg, redis, RecsKeys(settings.namespace), 5)
    assert body["items"] == expected
    assert len(expected) == 5 and {i["reason"] for i in expected} == {"popular"}


async def test_the_app_refreshes_by_itself(fresh_settings: Settings, pg: asyncpg.Pool,
                                           redis: Redis, scene: Scene) -> None:
    """A fresh namespace has no recommendation state until the app's own loop builds it.
    (Its co-purchase counts wait for orders to settle; the popular lists do not.)"""
    keys = RecsKeys(fresh_settings.namespace)
    popular_11 = keys.popular_in(scene.loaded.category_ids[1])
    assert await redis.exists(keys.state, popular_11) == 0
    async with TestClient(TestServer(create_app(fresh_settings))) as client:
        for _ in range(200):
            if await redis.exists(popular_11):
                break
            await asyncio.sleep(0.05)
        units = await pg.fetchval(
            "SELECT sum(qty) FROM order_items i JOIN skus s ON s.id = i.sku_id "
            "WHERE s.product_id = $1", scene.pid(11))
        assert units >= 4 and await redis.zscore(popular_11, scene.pid(11)) == units
        assert await redis.hget(keys.state, "cancels_at") is not None
        body = await get(client, f"/api/v1/products/{scene.pid(10)}/recommendations")
        assert body["items"][0] == {**body["items"][0], "id": scene.pid(11),
                                    "reason": "popular_in_category"}
