"""The claim state of templates in Redis: loading it, and the one gate every issue passes.

A coupon is counted in Redis (lua/coupon_claim.lua) before its row is written to PostgreSQL.
If the process dies between the two, Redis counts one coupon more than PostgreSQL holds: the
template under-issues by one, never over-issues. A retry with the same Idempotency-Key gets
the same seq back from Redis and writes the missing row (the insert is ON CONFLICT DO
NOTHING), so a client that retries ends with its coupon and the counts agree again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

import asyncpg
from redis.asyncio import Redis

from coupons.keys import CouponKeys
from mall.lua import Script


class Gate(IntEnum):
    """Return codes of lua/coupon_claim.lua."""

    ISSUED = 0
    REPLAY = 1
    SOLD_OUT = 2
    LIMIT_REACHED = 3
    NOT_STARTED = 4
    ENDED = 5
    UNKNOWN = 6


@dataclass(frozen=True, slots=True)
class GateResult:
    code: Gate
    seq: int
    remaining: int

    @property
    def granted(self) -> bool:
        return self.code in (Gate.ISSUED, Gate.REPLAY)


HOLDINGS = """
SELECT user_id, max(seq) AS held FROM user_coupons WHERE template_id = $1 GROUP BY user_id
"""


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def meta_args(row: Any) -> list[Any]:
    """ARGV[2..6] of coupon_state.lua from a template row (or a NewTemplate and a status)."""
    return [_ms(row["claim_starts_at"]), _ms(row["claim_ends_at"]), row["total"],
            row["per_user"], row["status"]]


class ClaimState:
    def __init__(self, redis: Redis, keys: CouponKeys, idempotency_ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = idempotency_ttl_s
        self._claim = Script(redis, "coupon_claim")
        self._state = Script(redis, "coupon_state")

    async def issue(self, template_id: int, user_id: str, idem_key: str | None,
                    mode: str = "claim") -> GateResult:
        keys = self._keys.template(template_id).claim(user_id, idem_key)
        code, seq, remaining = await self._claim(
            keys, [user_id, "1" if idem_key else "", self._ttl, mode])
        return GateResult(Gate(int(code)), int(seq), int(remaining))

    async def issue_many(self, template_id: int, user_ids: list[str], idem_key: str | None,
                         mode: str = "push") -> list[GateResult]:
        """One gate call per user, sent in one pipeline; each call is atomic on its own."""
        tkeys = self._keys.template(template_id)
        await self._redis.script_load(self._claim.body)
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                keys = tkeys.claim(user_id, idem_key)
                pipe.evalsha(self._claim.sha, len(keys), *keys,
                             user_id, "1" if idem_key else "", self._ttl, mode)
            replies = await pipe.execute()
        return [GateResult(Gate(int(c)), int(s), int(r)) for c, s, r in replies]

    async def create(self, row: Any) -> None:
        await self._state(self._keys.template(row["id"]).state(), ["create", *meta_args(row)])

    async def patch(self, row: Any) -> bool:
        """Rewrite the rules; False when a coupon was already issued (nothing changed)."""
        code = await self._state(self._keys.template(row["id"]).state(),
                                 ["patch", *meta_args(row)])
        return int(code) == 0

    async def end(self, template_id: int) -> None:
        await self._state(self._keys.template(template_id).state(), ["end"])

    async def rebuild(self, conn: asyncpg.Connection, row: Any) -> bool:
        """Load a template whose Redis state is missing from what PostgreSQL holds.

        A claim counted in Redis whose row never reached PostgreSQL is forgotten here, which
        can only give that coupon back to the pool once.
        """
        holdings = await conn.fetch(HOLDINGS, row["id"])
        pairs: list[Any] = []
        for h in holdings:
            pairs += [h["user_id"], h["held"]]
        issued = sum(h["held"] for h in holdings)
        code = await self._state(self._keys.template(row["id"]).state(),
                                 ["rebuild", *meta_args(row), issued, *pairs])
        return int(code) == 0

    async def counts(self, template_ids: list[int]) -> dict[int, tuple[int, int] | None]:
        """(issued, total) per template as Redis holds them; None when not loaded."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for template_id in template_ids:
                k = self._keys.template(template_id)
                pipe.get(k.issued)
                pipe.hget(k.meta, "total")
            replies = await pipe.execute()
        out: dict[int, tuple[int, int] | None] = {}
        for i, template_id in enumerate(template_ids):
            issued, total = replies[2 * i], replies[2 * i + 1]
            out[template_id] = None if total is None else (int(issued or 0), int(total))
        return out
