"""The coupon grab against `mall serve --workers 2` as real processes: hundreds of users who
each click several times, with replays, while staff push the same template to a list."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
from redis.asyncio import Redis

from coupons.keys import CouponKeys
from mall.settings import Settings
from tests.stack import Stack, auth, iso, now, request_json

TOTAL = 400
PER_USER = 2
USERS = 300
PUSH_ROUNDS = 4
PUSH_SIZE = 100


async def _create_template(session: aiohttp.ClientSession, url: str,
                           settings: Settings) -> int:
    start = now()
    status, body = await request_json(
        session, "POST", f"{url}/api/v1/admin/coupons", headers=auth(settings, "ops", "staff"),
        json={"name": "抢券", "kind": "fixed", "amount": 500, "total": TOTAL,
              "per_user": PER_USER, "claim_starts_at": iso(start - timedelta(seconds=5)),
              "claim_ends_at": iso(start + timedelta(minutes=10)),
              "valid_from": iso(start), "valid_until": iso(start + timedelta(days=1))})
    assert status == 201, body
    return int(body["id"])


async def test_grab_and_push_never_exceed_total_or_per_user(
        fresh_settings: Settings, pg: asyncpg.Pool, redis: Redis) -> None:
    stack = Stack.create(fresh_settings, "coupons-grab", workers=2)
    try:
        await stack.start()
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as session:
            template_id = await _create_template(session, stack.url, fresh_settings)
            attempts: list[tuple[str, str | None]] = []
            for u in range(USERS):
                user = f"g{u}"
                attempts += [(user, f"{user}-k{n}") for n in range(3)]
                attempts += [(user, f"{user}-k0"), (user, None)]
            random.shuffle(attempts)
            claim_url = f"{stack.url}/api/v1/coupons/{template_id}/claim"
            tokens = {u: auth(fresh_settings, u) for u, _ in attempts}

            async def grab(user: str, key: str | None) -> tuple[str, str | None, int, Any]:
                headers = dict(tokens[user])
                if key:
                    headers["Idempotency-Key"] = key
                status, body = await request_json(session, "POST", claim_url, headers=headers)
                return user, key, status, body

            async def push(round_no: int) -> tuple[int, Any]:
                await asyncio.sleep(0.1 * round_no)  # spread over the grab
                users = [f"g{u}" for u in range(round_no, USERS, 6)][:PUSH_SIZE // 2]
                users += [f"p{round_no}-{u}" for u in range(PUSH_SIZE - len(users))]
                # Its own connection: queued behind the grab's it would only arrive after it.
                async with aiohttp.ClientSession() as staff_session:
                    return await request_json(
                        staff_session, "POST",
                        f"{stack.url}/api/v1/admin/coupons/{template_id}/push",
                        headers=auth(fresh_settings, "ops", "staff"), json={"user_ids": users})

            # One push lands before the grab, so pushes surely hold some coupons however the
            # machine schedules the rest; the other pushes race the grab.
            first = await push(0)
            results, *racing = await asyncio.gather(
                asyncio.gather(*(grab(u, k) for u, k in attempts)),
                *(push(n) for n in range(1, PUSH_ROUNDS)))
            pushes = [first, *racing]

        assert all(status == 200 for status, _ in pushes), pushes
        pushed_issued = sum(body["issued"] for _, body in pushes)
        assert all(body["issued"] + body["refused"] == PUSH_SIZE for _, body in pushes)
        assert first[1]["issued"] > 0, "the first push came before the grab: it must issue"
        statuses = Counter(status for _, _, status, _ in results)
        assert set(statuses) <= {201, 409}, statuses
        refusals = Counter(body["error"]["code"] for _, _, status, body in results
                           if status == 409)
        assert set(refusals) <= {"sold_out", "limit_reached"}, refusals

        by_key: dict[tuple[str, str], set[int]] = defaultdict(set)
        claimed: dict[int, str] = {}
        for user, key, status, body in results:
            if status == 201:
                assert body["template_id"] == template_id
                claimed[body["id"]] = user
                if key:
                    by_key[(user, key)].add(body["id"])
        assert all(len(ids) == 1 for ids in by_key.values()), "a replay got a second coupon"

        rows = await pg.fetch("SELECT id, user_id, seq, source FROM user_coupons"
                              " WHERE template_id = $1", template_id)
        assert len(rows) == TOTAL, "demand exceeds total: every coupon must be handed out"
        per_user = Counter(r["user_id"] for r in rows)
        assert max(per_user.values()) <= PER_USER
        assert {(r["user_id"], r["seq"]) for r in rows} == {
            (user, seq) for user, n in per_user.items() for seq in range(1, n + 1)}
        assert {r["id"]: r["user_id"] for r in rows if r["source"] == "claim"} == claimed
        assert sum(r["source"] == "push" for r in rows) == pushed_issued
        assert claimed, "the grab should have won some coupons"

        keys = CouponKeys(fresh_settings.namespace).template(template_id)
        assert int(await redis.get(keys.issued)) == len(rows)
        holders = {k.decode(): int(v) for k, v in (await redis.hgetall(keys.holders)).items()}
        assert holders == dict(per_user), "Redis per-user counts differ from PostgreSQL"
    finally:
        stack.stop()
