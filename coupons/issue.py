"""Handing out coupons: a customer's claim and a staff push, both through the Redis gate.

The gate (lua/coupon_claim.lua) decides and counts; PostgreSQL then gets the row, idempotent
on (template_id, user_id, seq). See coupons/state.py for what a crash in between leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from coupons.models import AllUsers, LevelAtLeast, OrderedSince, PushBody, Segment
from coupons.state import ClaimState, Gate, GateResult
from coupons.templates import SELECT_TEMPLATE
from coupons.wallet import coupon_view
from mall.errors import ApiError, not_found

PUSH_BATCH = 500

INSERT_COUPON = """
INSERT INTO user_coupons (template_id, user_id, seq, source) VALUES ($1, $2, $3, $4)
ON CONFLICT (template_id, user_id, seq) DO NOTHING
"""
INSERT_COUPONS = """
INSERT INTO user_coupons (template_id, user_id, seq, source)
SELECT $1, u, s, 'push' FROM unnest($2::text[], $3::int[]) AS x(u, s)
ON CONFLICT (template_id, user_id, seq) DO NOTHING
"""
COUPON_WITH_RULES = """
SELECT c.id, c.template_id, c.user_id, c.seq, c.source, c.state, c.order_id, c.claimed_at,
       c.used_at, t.name, t.kind, t.threshold, t.amount, t.percent_off, t.max_discount,
       t.scope, t.scope_ids, t.stackable, t.valid_from, t.valid_until, now() AS now
FROM user_coupons c JOIN coupon_templates t ON t.id = c.template_id
WHERE c.template_id = $1 AND c.user_id = $2 AND c.seq = $3
"""
ALL_USERS = """
SELECT user_id FROM users WHERE user_id > $1 ORDER BY user_id LIMIT $2
"""
LEVEL_MIN_SPENT = "SELECT min_spent FROM member_levels WHERE level = $1"
MEMBERS_SPENT_AT_LEAST = """
SELECT user_id FROM (
    SELECT user_id FROM members WHERE spent >= $3
    UNION SELECT user_id FROM users WHERE $3 = 0
) AS m WHERE user_id > $1 ORDER BY user_id LIMIT $2
"""
ORDERED_SINCE = """
SELECT DISTINCT user_id FROM orders WHERE created_at >= $3 AND user_id > $1
ORDER BY user_id LIMIT $2
"""

_REFUSALS = {
    Gate.SOLD_OUT: (409, "sold_out", "every coupon of this template has been handed out"),
    Gate.LIMIT_REACHED: (409, "limit_reached", "you hold as many of these coupons as allowed"),
    Gate.NOT_STARTED: (403, "not_started", "claiming has not started yet"),
    Gate.ENDED: (403, "ended", "claiming has ended"),
}

_TALLY = {Gate.ISSUED: "issued", Gate.REPLAY: "already_issued", Gate.SOLD_OUT: "sold_out",
          Gate.LIMIT_REACHED: "limit_reached"}


class Issuer:
    def __init__(self, pool: asyncpg.Pool, state: ClaimState) -> None:
        self._pool = pool
        self._state = state

    async def _gate(self, template_id: int, user_id: str, idem_key: str | None) -> GateResult:
        result = await self._state.issue(template_id, user_id, idem_key)
        if result.code == Gate.UNKNOWN:
            await self._reload(template_id)
            result = await self._state.issue(template_id, user_id, idem_key)
        return result

    async def _reload(self, template_id: int) -> Any:
        """Redis lost the template (or never had it): rebuild it from PostgreSQL, or 404."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(SELECT_TEMPLATE, template_id)
            if row is None:
                raise not_found("coupon template")
            await self._state.rebuild(conn, row)
        return row

    async def claim(self, template_id: int, user_id: str,
                    idem_key: str | None) -> tuple[bool, dict[str, Any]]:
        """(True if new, the coupon); a refusal raises ApiError."""
        result = await self._gate(template_id, user_id, idem_key)
        if not result.granted:
            status, code, message = _REFUSALS.get(
                result.code, (503, "unavailable", "coupon state is not loaded; try again"))
            raise ApiError(status, code, message, details={"remaining": result.remaining})
        async with self._pool.acquire() as conn:
            await conn.execute(INSERT_COUPON, template_id, user_id, result.seq, "claim")
            row = await conn.fetchrow(COUPON_WITH_RULES, template_id, user_id, result.seq)
        return result.code == Gate.ISSUED, {**coupon_view(row), "remaining": result.remaining}

    async def push(self, template_id: int, body: PushBody, idem_key: str | None) -> dict[str, Any]:
        row = await self._reload_if_missing(template_id)
        if row["status"] != "active":
            raise ApiError(409, "ended", "this template has ended; nothing can be pushed")
        tally = {"issued": 0, "already_issued": 0, "sold_out": 0, "limit_reached": 0, "ended": 0}
        idem_key = f"push!{idem_key}" if idem_key else None  # never equal to a claim's key
        async for users in self._recipients(body):
            results = await self._state.issue_many(template_id, users, idem_key)
            granted = [(u, r.seq) for u, r in zip(users, results, strict=True) if r.granted]
            if granted:
                await self._pool.execute(INSERT_COUPONS, template_id,
                                         [u for u, _ in granted], [s for _, s in granted])
            for r in results:
                tally[_TALLY.get(r.code, "ended")] += 1
            if tally["ended"]:
                break  # ended by staff while the push ran: the rest is not pushed
        return {"template_id": template_id, **tally,
                "refused": tally["sold_out"] + tally["limit_reached"] + tally["ended"]}

    async def _reload_if_missing(self, template_id: int) -> Any:
        row = await self._pool.fetchrow(SELECT_TEMPLATE, template_id)
        if row is None:
            raise not_found("coupon template")
        if (await self._state.counts([template_id]))[template_id] is None:
            row = await self._reload(template_id)
        return row

    async def _recipients(self, body: PushBody) -> AsyncIterator[list[str]]:
        if body.user_ids is not None:
            users = list(dict.fromkeys(body.user_ids))
            for i in range(0, len(users), PUSH_BATCH):
                yield users[i:i + PUSH_BATCH]
            return
        assert body.segment is not None
        query, arg = await self._segment_query(body.segment)
        after = ""
        while True:
            rows = await self._pool.fetch(query, after, PUSH_BATCH, *arg)
            if not rows:
                return
            users = [r["user_id"] for r in rows]
            yield users
            after = users[-1]

    async def _segment_query(self, segment: Segment) -> tuple[str, list[Any]]:
        if isinstance(segment, AllUsers):
            return ALL_USERS, []
        if isinstance(segment, OrderedSince):
            return ORDERED_SINCE, [segment.since]
        assert isinstance(segment, LevelAtLeast)
        min_spent = await self._pool.fetchval(LEVEL_MIN_SPENT, segment.level)
        if min_spent is None:
            raise ApiError(422, "unknown_level", f"there is no member level {segment.level}")
        return MEMBERS_SPENT_AT_LEAST, [min_spent]

