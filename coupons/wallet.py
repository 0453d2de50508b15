"""The caller's coupons: what they hold, under which rules, and in which state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from coupons.templates import rules_view

WALLET_STATES = ("available", "used", "expired")
WALLET = """
SELECT c.id, c.template_id, c.user_id, c.seq, c.source, c.state, c.order_id, c.claimed_at,
       c.used_at, t.name, t.kind, t.threshold, t.amount, t.percent_off, t.max_discount,
       t.scope, t.scope_ids, t.stackable, t.valid_from, t.valid_until, now() AS now
FROM user_coupons c JOIN coupon_templates t ON t.id = c.template_id
WHERE c.user_id = $1
  AND ($2::bigint IS NULL OR c.id < $2)
  AND CASE $3::text
        WHEN 'available' THEN c.state = 'available' AND t.valid_until > now()
        WHEN 'expired' THEN c.state = 'available' AND t.valid_until <= now()
        WHEN 'used' THEN c.state = 'used'
        ELSE true
      END
ORDER BY c.id DESC LIMIT $4
"""


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def wallet_state(row: Any) -> str:
    if row["state"] == "used":
        return "used"
    return "expired" if row["valid_until"] <= row["now"] else "available"


def coupon_view(row: Any) -> dict[str, Any]:
    """A held coupon with its template's rules; state is available, used or expired."""
    return {
        "id": row["id"], "template_id": row["template_id"], "seq": row["seq"],
        "source": row["source"], "state": wallet_state(row), "order_id": row["order_id"],
        "claimed_at": _iso(row["claimed_at"]), "used_at": _iso(row["used_at"]),
        "rules": rules_view(row),
    }


async def wallet_page(pool: asyncpg.Pool, user_id: str, state: str | None,
                      before_id: int | None, limit: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(WALLET, user_id, before_id, state, limit))
