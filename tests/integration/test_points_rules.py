"""The points rules (pure) and the check-in streak on real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

import asyncpg
import pytest

from mall.errors import ApiError
from membership.checkin import MALL_TZ, check_in, today
from membership.points import (
    MAX_REDEEM_SHARE,
    POINT_VALUE_FEN,
    checkin_points,
    points_for_cash,
    redeemable,
    value_fen,
)
from tests.integration.test_points_helpers import ledger_mismatches, member, new_user


def test_constants() -> None:
    assert (POINT_VALUE_FEN, MAX_REDEEM_SHARE) == (1, 0.5)
    assert value_fen(100) == 100  # 100 points are one yuan
    assert [points_for_cash(c) for c in (0, 99, 100, 199, 12_345, -5)] == [0, 0, 1, 1, 123, 0]


@pytest.mark.parametrize(("balance", "goods", "wanted", "expected"), [
    (1_000, 10_000, 0, 0),
    (1_000, 10_000, 1_000, 1_000),
    (10_000, 10_000, 5_000, 5_000),  # exactly half the goods
    (10_000, 10_001, 5_000, 5_000),  # half of an odd amount rounds down
    (-50, 10_000, 0, 0),
])
def test_redeemable_accepts(balance: int, goods: int, wanted: int, expected: int) -> None:
    assert redeemable(balance, goods, wanted) == expected


@pytest.mark.parametrize(("balance", "goods", "wanted", "status", "code"), [
    (1_000, 10_000, -1, 422, "points_invalid"),
    (1_000, 10_000, True, 422, "points_invalid"),
    (1_000, 10_000, 1.5, 422, "points_invalid"),
    (10_000, 10_000, 5_001, 422, "points_invalid"),  # more than half the goods
    (10_000, 1, 1, 422, "points_invalid"),  # half of one fen is no point
    (10_000, 0, 1, 422, "points_invalid"),
    (999, 10_000, 1_000, 409, "points_insufficient"),
    (-50, 10_000, 1, 409, "points_insufficient"),  # a balance made negative by a refund
])
def test_redeemable_refuses(balance: int, goods: int, wanted: object, status: int,
                            code: str) -> None:
    with pytest.raises(ApiError) as caught:
        redeemable(balance, goods, wanted)  # type: ignore[arg-type]
    assert (caught.value.status, caught.value.code) == (status, code)


def test_checkin_points_grow_with_the_streak_then_stop() -> None:
    assert [checkin_points(s) for s in range(1, 10)] == [5, 10, 15, 20, 25, 30, 35, 35, 35]
    with pytest.raises(ValueError):
        checkin_points(0)


def test_today_is_the_shanghai_calendar_day() -> None:
    assert today() == datetime.now(MALL_TZ).date()
    assert MALL_TZ.utcoffset(datetime(2024, 7, 1)) == timedelta(hours=8)


async def checkin(pg: asyncpg.Pool, user: str, day: date) -> tuple[int, int, int]:
    async with pg.acquire() as conn, conn.transaction():
        done = await check_in(conn, user, day)
    return done.streak, done.points, done.balance


async def test_streak_grows_on_consecutive_days_and_restarts_after_a_gap(
        pg: asyncpg.Pool) -> None:
    user = new_user("ck")
    start = date(2024, 1, 30)
    got = [await checkin(pg, user, start + timedelta(days=d)) for d in range(8)]
    assert [g[:2] for g in got] == [(1, 5), (2, 10), (3, 15), (4, 20), (5, 25), (6, 30),
                                    (7, 35), (8, 35)]
    assert got[-1][2] == 175
    assert await checkin(pg, user, start + timedelta(days=10)) == (1, 5, 180)
    assert await member(pg, user) == (180, 0, 0)


async def test_second_checkin_of_a_day_is_refused_and_changes_nothing(
        pg: asyncpg.Pool) -> None:
    user = new_user("ck")
    day = date(2024, 5, 5)
    results = await asyncio.gather(*(checkin(pg, user, day) for _ in range(4)),
                                   return_exceptions=True)
    assert results.count((1, 5, 5)) == 1
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(refused) == 3 and {(r.status, r.code) for r in refused} == {
        (409, "already_checked_in")}
    assert await member(pg, user) == (5, 0, 0)
    assert await pg.fetchval("SELECT count(*) FROM points_ledger WHERE user_id = $1", user) == 1
    assert await ledger_mismatches(pg) == []
