"""Reading the points ledger and balance, and staff adjustments.

The ledger is append-only (database triggers refuse UPDATE, DELETE and TRUNCATE) and
`members.points` is kept equal to its sum by a trigger in the inserting transaction, so every
write here is a single INSERT.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import asyncpg

from mall.errors import ApiError

SPENDABLE = "SELECT points, redeemed FROM members WHERE user_id = $1"
LOCK_BALANCE = "SELECT points FROM members WHERE user_id = $1 FOR UPDATE"
LEDGER_PAGE = """
SELECT id, delta, reason, order_id, note, actor, created_at FROM points_ledger
WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""
ADJUST = """
INSERT INTO points_ledger (user_id, delta, reason, note, actor) VALUES ($1, $2, 'adjust', $3, $4)
RETURNING id, delta, reason, order_id, note, actor, created_at
"""


async def spendable(conn: asyncpg.Connection, user_id: str) -> tuple[int, int]:
    """(points balance, points ever redeemed) of one user, read in one statement; (0, 0) when
    the user never had points."""
    row = await conn.fetchrow(SPENDABLE, user_id)
    return (int(row["points"]), int(row["redeemed"])) if row is not None else (0, 0)


async def ledger_page(conn: asyncpg.Connection, user_id: str, before_id: int | None,
                      limit: int) -> list[asyncpg.Record]:
    """Up to `limit` ledger rows of the user, newest first, older than `before_id`."""
    return list(await conn.fetch(LEDGER_PAGE, user_id, before_id, limit))


def entry_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "delta": row["delta"], "reason": row["reason"],
            "order_id": row["order_id"], "note": row["note"],
            "created_at": row["created_at"].astimezone(UTC).isoformat()}


async def adjust(conn: asyncpg.Connection, user_id: str, delta: int, note: str,
                 actor: str) -> asyncpg.Record:
    """A staff correction of the balance, in the caller's transaction. A deduction may not take
    the balance below zero (409 points_insufficient); the balance row is locked first so two
    deductions at once cannot both pass the check."""
    if delta < 0:
        balance = await conn.fetchval(LOCK_BALANCE, user_id) or 0
        if balance + delta < 0:
            raise ApiError(409, "points_insufficient", "the deduction exceeds the balance",
                           details={"balance": int(balance)})
    row = await conn.fetchrow(ADJUST, user_id, delta, note, actor)
    assert row is not None
    return row
