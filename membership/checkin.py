"""Daily check-in: once per calendar day in China Standard Time, points growing with the streak.

The (user, day) primary key of `checkins` decides a race: of two check-ins at once, the second
waits for the first's commit, inserts nothing and is answered 409, and the points are written
in the same transaction as the check-in row, so they are given once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

import asyncpg

from mall.errors import ApiError
from membership.points import checkin_points

MALL_TZ: Final = ZoneInfo("Asia/Shanghai")

PREVIOUS_STREAK = "SELECT streak FROM checkins WHERE user_id = $1 AND day = $2"
INSERT_CHECKIN = """
INSERT INTO checkins (user_id, day, streak, points) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, day) DO NOTHING
RETURNING streak, points
"""
CREDIT = """
INSERT INTO points_ledger (user_id, delta, reason, note, actor)
VALUES ($1, $2, 'checkin', $3, $1)
"""
BALANCE = "SELECT points FROM members WHERE user_id = $1"


@dataclass(frozen=True, slots=True)
class CheckIn:
    day: date
    streak: int
    points: int
    balance: int


def today() -> date:
    return datetime.now(MALL_TZ).date()


async def check_in(conn: asyncpg.Connection, user_id: str, day: date) -> CheckIn:
    """Check `user_id` in on `day`, in the caller's transaction; 409 already_checked_in."""
    previous = await conn.fetchval(PREVIOUS_STREAK, user_id, date.fromordinal(day.toordinal() - 1))
    streak = (previous or 0) + 1
    row = await conn.fetchrow(INSERT_CHECKIN, user_id, day, streak, checkin_points(streak))
    if row is None:
        raise ApiError(409, "already_checked_in", "already checked in today",
                       details={"day": day.isoformat()})
    await conn.execute(CREDIT, user_id, row["points"], f"check-in {day.isoformat()}")
    balance = await conn.fetchval(BALANCE, user_id)
    return CheckIn(day, row["streak"], row["points"], int(balance))
