"""Admission tokens of flash sales through the real app: obtain, buy, and every refusal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from mall.app import create_app
from mall.keys import Keys
from mall.namespace import drop_namespace
from mall.settings import Settings
from seckill.admission_token import AdmissionTokens
from tests.conftest import settings_for
from tests.e2e.helpers import create_product
from tests.stack import auth, window

TOKEN_TTL_S = 2


@pytest.fixture(scope="module")
async def tsettings(database_url: str) -> AsyncIterator[Settings]:
    s = settings_for(database_url, "tok", admission_token_ttl_s=TOKEN_TTL_S,
                     relay_enabled=False)
    yield s
    await drop_namespace(s)


@pytest.fixture(scope="module")
async def tclient(tsettings: Settings) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(tsettings)))
    await client.start_server()
    yield client
    await client.close()


async def new_sale(client: TestClient, settings: Settings, stock: int = 10, limit: int = 1,
                   requires_token: bool = True, start_in_s: float = -1) -> dict[str, Any]:
    sku = await create_product(client, settings, stock * 2)
    starts_at, ends_at = window(start_in_s, 3600)
    resp = await client.post(
        "/api/v1/admin/flash-sales", headers=auth(settings, "staff1", "staff"),
        json={"sku_id": sku, "price": 500, "stock": stock, "per_user_limit": limit,
              "starts_at": starts_at, "ends_at": ends_at, "requires_token": requires_token})
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def get_token(client: TestClient, settings: Settings, sale_id: int,
                    user: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/api/v1/flash-sales/{sale_id}/admission-token",
                             headers=auth(settings, user))
    return resp.status, dict(await resp.json())


async def buy(client: TestClient, settings: Settings, sale_id: int, user: str,
              token: str | None = None, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = auth(settings, user)
    if token is not None:
        headers["X-Admission-Token"] = token
    if key is not None:
        headers["Idempotency-Key"] = key
    resp = await client.post(f"/api/v1/flash-sales/{sale_id}/orders", headers=headers,
                             json={"qty": 1})
    return resp.status, dict(await resp.json())


async def sold(redis: Redis, settings: Settings, sale_id: int) -> tuple[int, int, int]:
    k = Keys(settings.namespace).sale(sale_id)
    return (int(await redis.get(k.stock)), await redis.xlen(k.outbox), await redis.hlen(k.buyers))


def refused(answer: tuple[int, dict[str, Any]], code: str) -> bool:
    status, body = answer
    return status == 403 and body["error"]["code"] == code


async def test_obtain_buy_and_reuse(tclient: TestClient, tsettings: Settings,
                                    redis: Redis) -> None:
    sale = await new_sale(tclient, tsettings, limit=2)
    assert sale["requires_token"] is True
    status, issued = await get_token(tclient, tsettings, sale["id"], "tk1")
    assert status == 201 and issued["sale_id"] == sale["id"] and len(issued["token"]) == 60
    first = await buy(tclient, tsettings, sale["id"], "tk1", issued["token"], key="k1")
    assert first[0] == 202
    again = await buy(tclient, tsettings, sale["id"], "tk1", issued["token"], key="k2")
    assert refused(again, "admission_token_invalid")
    assert again[1]["error"]["details"]["reason"] == "already_used"
    # The replay of the accepted request needs no fresh token (nor any).
    for token in (issued["token"], None):
        assert await buy(tclient, tsettings, sale["id"], "tk1", token, key="k1") == first
    assert await sold(redis, tsettings, sale["id"]) == (9, 1, 1)


async def test_missing_forged_other_user_other_sale_and_expired_are_refused(
    tclient: TestClient, tsettings: Settings, redis: Redis,
) -> None:
    sale = await new_sale(tclient, tsettings)
    other = await new_sale(tclient, tsettings)
    _, mine = await get_token(tclient, tsettings, sale["id"], "victim")
    _, elsewhere = await get_token(tclient, tsettings, other["id"], "tk2")
    forged = AdmissionTokens("x" * 40).issue(sale["id"], "tk2", 2**40).token
    tampered = mine["token"][:-2] + ("AA" if not mine["token"].endswith("AA") else "BB")
    assert refused(await buy(tclient, tsettings, sale["id"], "tk2"), "admission_token_required")
    cases = [(forged, "bad_signature"), (mine["token"], "bad_signature"),
             (tampered, "bad_signature"), (elsewhere["token"], "other_sale"),
             ("not-a-token", "malformed"), ("", "malformed")]
    for token, reason in cases:
        answer = await buy(tclient, tsettings, sale["id"], "tk2", token)
        assert refused(answer, "admission_token_invalid"), (token, answer)
        assert answer[1]["error"]["details"]["reason"] == reason
    # The token refused elsewhere still works for its own user and sale.
    assert (await buy(tclient, tsettings, other["id"], "tk2", elsewhere["token"]))[0] == 202
    _, expiring = await get_token(tclient, tsettings, sale["id"], "tk2")
    await asyncio.sleep(TOKEN_TTL_S + 0.2)
    answer = await buy(tclient, tsettings, sale["id"], "tk2", expiring["token"])
    assert answer[1]["error"]["details"]["reason"] == "expired"
    assert await sold(redis, tsettings, sale["id"]) == (10, 0, 0)


async def test_not_needed_when_not_required(tclient: TestClient, tsettings: Settings) -> None:
    sale = await new_sale(tclient, tsettings, requires_token=False)
    assert sale["requires_token"] is False
    assert (await buy(tclient, tsettings, sale["id"], "free1"))[0] == 202
    assert (await buy(tclient, tsettings, sale["id"], "free2", "garbage"))[0] == 202


async def test_issued_only_from_ttl_before_the_start(tclient: TestClient,
                                                     tsettings: Settings) -> None:
    later = await new_sale(tclient, tsettings, start_in_s=TOKEN_TTL_S + 30)
    status, body = await get_token(tclient, tsettings, later["id"], "early")
    assert status == 403 and body["error"]["code"] == "not_started"
    soon = await new_sale(tclient, tsettings, start_in_s=TOKEN_TTL_S - 1)
    status, issued = await get_token(tclient, tsettings, soon["id"], "early")
    assert status == 201
    answer = await buy(tclient, tsettings, soon["id"], "early", issued["token"])
    assert answer[1]["error"]["code"] == "not_started"  # and the token is not burnt
    status, body = await get_token(tclient, tsettings, 987_654_321, "early")
    assert status == 404
    resp = await tclient.post(f"/api/v1/flash-sales/{soon['id']}/admission-token")
    assert resp.status == 401


async def test_same_token_twenty_times_at_once_buys_once(tclient: TestClient,
                                                         tsettings: Settings,
                                                         redis: Redis) -> None:
    sale = await new_sale(tclient, tsettings, stock=30, limit=20)
    _, issued = await get_token(tclient, tsettings, sale["id"], "bot")
    answers = await asyncio.gather(*(buy(tclient, tsettings, sale["id"], "bot", issued["token"])
                                     for _ in range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [202] + [403] * 19
    assert all(refused(a, "admission_token_invalid") for a in answers if a[0] == 403)
    assert await sold(redis, tsettings, sale["id"]) == (29, 1, 1)


async def test_edit_switches_the_requirement(tclient: TestClient, tsettings: Settings) -> None:
    sale = await new_sale(tclient, tsettings, requires_token=False, start_in_s=3)
    resp = await tclient.patch(f"/api/v1/admin/flash-sales/{sale['id']}",
                               headers=auth(tsettings, "staff1", "staff"),
                               json={"requires_token": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["requires_token"] is True
    await asyncio.sleep(3.2)
    assert refused(await buy(tclient, tsettings, sale["id"], "ed1"), "admission_token_required")
    resp = await tclient.post(f"/api/v1/admin/flash-sales/{sale['id']}/warm-up",
                              headers=auth(tsettings, "staff1", "staff"))
    assert resp.status == 200
    assert refused(await buy(tclient, tsettings, sale["id"], "ed1"), "admission_token_required")
    _, issued = await get_token(tclient, tsettings, sale["id"], "ed1")
    assert (await buy(tclient, tsettings, sale["id"], "ed1", issued["token"]))[0] == 202
