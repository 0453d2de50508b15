"""Member levels: reached by spending (completed orders' cash, net of refunds).

Level 0 ('regular', from 0 fen) is every customer. Staff replace the whole table at once;
levels are numbered 0, 1, 2, ... and their thresholds strictly increase, so a higher level
always needs more spending.

Member price: a user gets it at level 1 or above, or with the `member` role in the token (a
membership granted by staff rather than earned). Staff and admin tokens do not get it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import asyncpg
import msgspec

from mall.errors import invalid

MEMBER_PRICE_ROLES: Final = frozenset({"member"})
MAX_LEVELS: Final = 20
MAX_MIN_SPENT: Final = 10**13  # a hundred billion yuan

LIST_LEVELS = "SELECT level, name, min_spent FROM member_levels ORDER BY level"
LEVEL_OF = """
WITH me AS (SELECT coalesce((SELECT spent FROM members WHERE user_id = $1), 0) AS spent)
SELECT me.spent, cur.level, cur.name, nxt.level AS next_level, nxt.name AS next_name,
       nxt.min_spent AS next_min_spent
FROM me
LEFT JOIN LATERAL (SELECT level, name FROM member_levels WHERE min_spent <= me.spent
                   ORDER BY min_spent DESC LIMIT 1) cur ON true
LEFT JOIN LATERAL (SELECT level, name, min_spent FROM member_levels WHERE min_spent > me.spent
                   ORDER BY min_spent LIMIT 1) nxt ON true
"""
LEVEL_NUMBER = """
SELECT coalesce(max(l.level), 0) FROM member_levels l
WHERE l.min_spent <= coalesce((SELECT spent FROM members WHERE user_id = $1), 0)
"""
CLEAR_LEVELS = "DELETE FROM member_levels"
INSERT_LEVELS = """
INSERT INTO member_levels (level, name, min_spent)
SELECT * FROM unnest($1::integer[], $2::text[], $3::bigint[])
"""


class Level(msgspec.Struct, forbid_unknown_fields=True):
    level: Annotated[int, msgspec.Meta(ge=0, lt=MAX_LEVELS)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    min_spent: Annotated[int, msgspec.Meta(ge=0, le=MAX_MIN_SPENT)]


class LevelsBody(msgspec.Struct, forbid_unknown_fields=True):
    levels: Annotated[list[Level], msgspec.Meta(min_length=1, max_length=MAX_LEVELS)]

    def check(self) -> None:
        """Numbered 0, 1, 2, ... in order; level 0 from 0 fen; thresholds strictly increase;
        names printable, not blank and distinct."""
        names = set()
        for i, level in enumerate(self.levels):
            if level.level != i:
                raise invalid("levels must be numbered 0, 1, 2, ... in order")
            if i == 0 and level.min_spent != 0:
                raise invalid("level 0 must start at min_spent 0")
            if i > 0 and level.min_spent <= self.levels[i - 1].min_spent:
                raise invalid("min_spent must strictly increase with the level")
            if not level.name.strip() or not level.name.isprintable():
                raise invalid("level names must be printable and not blank")
            if level.name in names:
                raise invalid("level names must be distinct")
            names.add(level.name)


def level_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"level": row["level"], "name": row["name"], "min_spent": row["min_spent"]}


async def list_levels(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [level_view(r) for r in await conn.fetch(LIST_LEVELS)]


async def replace_levels(conn: asyncpg.Connection, body: LevelsBody) -> list[dict[str, Any]]:
    """Replace the whole table in the caller's transaction (readers keep seeing the old table
    until the commit); concurrent replacements queue on the table lock."""
    await conn.execute("LOCK TABLE member_levels IN EXCLUSIVE MODE")
    await conn.execute(CLEAR_LEVELS)
    await conn.execute(INSERT_LEVELS, [lv.level for lv in body.levels],
                       [lv.name for lv in body.levels], [lv.min_spent for lv in body.levels])
    return await list_levels(conn)


async def level_of(conn: asyncpg.Connection, user_id: str) -> dict[str, Any]:
    """{level, name, spent, next_level: {level, name, min_spent, missing} | None}."""
    row = await conn.fetchrow(LEVEL_OF, user_id)
    assert row is not None
    spent = int(row["spent"])
    next_level = None
    if row["next_level"] is not None:
        next_level = {"level": row["next_level"], "name": row["next_name"],
                      "min_spent": row["next_min_spent"],
                      "missing": int(row["next_min_spent"]) - spent}
    return {"level": row["level"] if row["level"] is not None else 0,
            "name": row["name"] if row["name"] is not None else "regular",
            "spent": spent, "next_level": next_level}


async def member_price_eligible(conn: asyncpg.Connection, user_id: str, role: str) -> bool:
    """True for the `member` role (no query) or a level of 1 or more."""
    if role in MEMBER_PRICE_ROLES:
        return True
    return int(await conn.fetchval(LEVEL_NUMBER, user_id)) >= 1
