"""The append-only record of every step an order takes (the database refuses UPDATE/DELETE).

A step that changes the status has `from_status != to_status`; an event that does not (an
after-sales request, a late payment refunded) is written with both equal to the current status.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import asyncpg
import orjson

SYSTEM_ACTOR = "system"

INSERT_HISTORY = """
INSERT INTO order_history (order_id, actor, from_status, to_status, reason, details)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
"""
SELECT_HISTORY = """
SELECT id, at, actor, from_status, to_status, reason, details
FROM order_history WHERE order_id = $1 ORDER BY id
"""


async def append(
    conn: asyncpg.Connection,
    order_id: str,
    actor: str,
    from_status: str | None,
    to_status: str,
    reason: str,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(INSERT_HISTORY, order_id, actor, from_status, to_status, reason,
                       orjson.dumps(details or {}).decode())


async def read(conn: asyncpg.Connection | asyncpg.Pool, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(SELECT_HISTORY, order_id)
    return [
        {
            "at": r["at"].astimezone(UTC).isoformat(),
            "actor": r["actor"],
            "from_status": r["from_status"],
            "to_status": r["to_status"],
            "reason": r["reason"],
            "details": orjson.loads(r["details"]),
        }
        for r in rows
    ]
