"""Bad input gets the documented status and error JSON, and changes nothing."""

from __future__ import annotations

import time

import jwt
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.e2e.helpers import create_sale
from tests.stack import auth


@pytest.fixture(scope="module")
async def sale(client: TestClient, settings: Settings) -> dict:
    return await create_sale(client, settings, stock=5, limit=5)


async def assert_untouched(redis: Redis, settings: Settings, sale_id: int) -> None:
    k = Keys(settings.namespace).sale(sale_id)
    assert int(await redis.get(k.stock)) == 5
    assert await redis.xlen(k.outbox) == 0
    assert await redis.hlen(k.buyers) == 0


def forged(settings: Settings, **changes: object) -> str:
    claims = {"sub": "mallory", "role": "customer", "exp": int(time.time()) + 600}
    claims.update(changes)
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BAD_BODIES = [
    (b"{not json", "invalid_request"),
    (b"", "invalid_request"),
    (b"[]", "invalid_request"),
    (b'{"qty": "1"}', "invalid_request"),
    (b'{"qty": 1.5}', "invalid_request"),
    (b'{"qty": true}', "invalid_request"),
    (b'{"qty": 0}', "invalid_request"),
    (b'{"qty": -3}', "invalid_request"),
    (b'{"qty": 99999999999999999999999}', "invalid_request"),
    (b'{"qty": 1, "price": 0}', "invalid_request"),
    (b'{"qty": null}', "invalid_request"),
]


@pytest.mark.parametrize("body,code", BAD_BODIES)
async def test_malformed_bodies_are_422(client: TestClient, settings: Settings, redis: Redis,
                                        sale: dict, body: bytes, code: str) -> None:
    resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders", data=body,
                             headers=auth(settings, "badbody"))
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]
    await assert_untouched(redis, settings, sale["id"])


async def test_huge_body_is_413(client: TestClient, settings: Settings, redis: Redis,
                                sale: dict) -> None:
    body = b'{"qty": 1, "pad": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders", data=body,
                             headers=auth(settings, "huge"))
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"
    await assert_untouched(redis, settings, sale["id"])


@pytest.mark.parametrize("path", ["999999999", "0", "abc", "-1", "1" * 40])
async def test_unknown_sale_is_404(client: TestClient, settings: Settings, path: str) -> None:
    resp = await client.post(f"/api/v1/flash-sales/{path}/orders", json={"qty": 1},
                             headers=auth(settings, "nosale"))
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.get(f"/api/v1/flash-sales/{path}")
    assert resp.status == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not.a.jwt"},
        bearer(jwt.encode({"sub": "m", "role": "customer", "exp": 9999999999},
                          "another-secret-of-at-least-32-characters", algorithm="HS256")),
    ],
    ids=["missing", "empty", "basic", "garbage", "wrong-secret"],
)
async def test_missing_or_forged_token_is_401(client: TestClient, settings: Settings,
                                              redis: Redis, sale: dict,
                                              headers: dict[str, str]) -> None:
    resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders", json={"qty": 1},
                             headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"
    await assert_untouched(redis, settings, sale["id"])


async def test_expired_none_alg_and_bad_claims_are_401(client: TestClient, settings: Settings,
                                                       redis: Redis, sale: dict) -> None:
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(
        b'{"sub":"mallory","role":"admin","exp":9999999999}').decode()
    tokens = [
        forged(settings, exp=int(time.time()) - 10),
        f"{header}.{payload}.",
        forged(settings, role="superuser"),
        forged(settings, sub="has spaces"),
        forged(settings, sub=12345),
        jwt.encode({"sub": "m", "role": "customer"}, settings.jwt_secret, algorithm="HS256"),
        jwt.encode({"sub": "m", "role": "customer", "exp": 9999999999}, settings.jwt_secret,
                   algorithm="HS512"),
    ]
    for token in tokens:
        resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders", json={"qty": 1},
                                 headers=bearer(token))
        assert resp.status == 401, token
    await assert_untouched(redis, settings, sale["id"])


async def test_customers_cannot_create_sales_or_products(client: TestClient,
                                                         settings: Settings, sale: dict) -> None:
    for role in ("customer", "member"):
        resp = await client.post("/api/v1/admin/products", headers=auth(settings, "c", role),
                                 json={"name": "x", "skus": [{"price": 1, "stock": 1}]})
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "forbidden"
        resp = await client.post(
            "/api/v1/admin/flash-sales", headers=auth(settings, "c", role),
            json={"sku_id": sale["sku_id"], "price": 1, "stock": 1,
                  "starts_at": sale["starts_at"], "ends_at": sale["ends_at"]},
        )
        assert resp.status == 403


BAD_SALES = [
    {"price": 1, "stock": 1, "starts_at": "2030-01-01T00:00:00+00:00"},  # missing fields
    {"sku_id": 1, "price": -1, "stock": 1, "starts_at": "2030-01-01T00:00:00+00:00",
     "ends_at": "2030-01-02T00:00:00+00:00"},
    {"sku_id": 1, "price": 1, "stock": 0, "starts_at": "2030-01-01T00:00:00+00:00",
     "ends_at": "2030-01-02T00:00:00+00:00"},
    {"sku_id": 1, "price": 1, "stock": 1, "starts_at": "2030-01-01T00:00:00",
     "ends_at": "2030-01-02T00:00:00"},  # no offset
    {"sku_id": 1, "price": 1, "stock": 1, "starts_at": "2030-01-02T00:00:00+00:00",
     "ends_at": "2030-01-01T00:00:00+00:00"},  # ends before it starts
    {"sku_id": 1, "price": 1, "stock": 1, "per_user_limit": 0,
     "starts_at": "2030-01-01T00:00:00+00:00", "ends_at": "2030-01-02T00:00:00+00:00"},
    {"sku_id": "1; DROP TABLE orders", "price": 1, "stock": 1,
     "starts_at": "2030-01-01T00:00:00+00:00", "ends_at": "2030-01-02T00:00:00+00:00"},
]


@pytest.mark.parametrize("body", BAD_SALES)
async def test_bad_sales_are_422_and_create_nothing(client: TestClient, settings: Settings,
                                                    pg, body: dict) -> None:
    before = await pg.fetchval("SELECT count(*) FROM flash_sales")
    resp = await client.post("/api/v1/admin/flash-sales",
                             headers=auth(settings, "staff1", "staff"), json=body)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_request"
    assert await pg.fetchval("SELECT count(*) FROM flash_sales") == before


async def test_unknown_sku_is_404(client: TestClient, settings: Settings) -> None:
    resp = await client.post(
        "/api/v1/admin/flash-sales", headers=auth(settings, "staff1", "staff"),
        json={"sku_id": 987654321, "price": 1, "stock": 1,
              "starts_at": "2030-01-01T00:00:00+00:00", "ends_at": "2030-01-02T00:00:00+00:00"},
    )
    assert resp.status == 404


@pytest.mark.parametrize("body", [
    {"name": "", "skus": [{"price": 1, "stock": 1}]},
    {"name": "x", "skus": []},
    {"name": "x", "skus": [{"price": -1, "stock": 1}]},
    {"name": "x", "skus": [{"price": 1, "stock": 10**12}]},
    {"name": "x" * 201, "skus": [{"price": 1, "stock": 1}]},
    {"skus": [{"price": 1, "stock": 1}]},
])
async def test_bad_products_are_422(client: TestClient, settings: Settings, body: dict) -> None:
    resp = await client.post("/api/v1/admin/products", headers=auth(settings, "s", "staff"),
                             json=body)
    assert resp.status == 422


async def test_bad_idempotency_key_is_422(client: TestClient, settings: Settings, redis: Redis,
                                          sale: dict) -> None:
    headers = {**auth(settings, "k"), "Idempotency-Key": "x" * 300}
    resp = await client.post(f"/api/v1/flash-sales/{sale['id']}/orders", json={"qty": 1},
                             headers=headers)
    assert resp.status == 422
    await assert_untouched(redis, settings, sale["id"])


async def test_unknown_route_and_method(client: TestClient) -> None:
    resp = await client.get("/api/v1/nope")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.delete("/api/v1/flash-sales/1")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"
