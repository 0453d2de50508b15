"""What points are worth and how many may be earned or spent: pure rules, no I/O.

- Earning: 1 point per whole yuan of cash paid for a completed order (`points_for_cash`), the
  same for every level (levels bring the member price, not a multiplier).
- Spending: 1 point is worth POINT_VALUE_FEN (100 points = 1 yuan) and points may pay at most
  MAX_REDEEM_SHARE of the goods after coupons (`redeemable`).
- Check-in: CHECKIN_BASE points on the first day of a streak, CHECKIN_STEP more for each
  following day, growing for at most CHECKIN_MAX_GROWTH_DAYS days (5, 10, ..., 35 from day 7).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

from mall.errors import ApiError

POINT_VALUE_FEN: Final = 1
MAX_REDEEM_SHARE: Final = 0.5
FEN_PER_EARNED_POINT: Final = 100

CHECKIN_BASE: Final = 5
CHECKIN_STEP: Final = 5
CHECKIN_MAX_GROWTH_DAYS: Final = 6

# A staff adjustment moves at most this many points either way (one million yuan of points).
MAX_ADJUST: Final = 100_000_000


def points_for_cash(cash_fen: int) -> int:
    """Points a completed order earns for the cash paid (fen): one per whole yuan."""
    return max(cash_fen, 0) // FEN_PER_EARNED_POINT


def value_fen(points: int) -> int:
    """The discount, in fen, that `points` give at checkout."""
    return points * POINT_VALUE_FEN


def max_redeemable(goods_after_coupons: int) -> int:
    """The most points an order of `goods_after_coupons` fen may use (rounded down)."""
    share = Fraction(MAX_REDEEM_SHARE)  # exact: 0.5 is 1/2
    cap_fen = Fraction(max(goods_after_coupons, 0)) * share
    return int(cap_fen // POINT_VALUE_FEN)


def redeemable(balance_available: int, goods_after_coupons: int, wanted: int) -> int:
    """The points an order may use: `wanted`, checked.

    422 `points_invalid` when `wanted` is negative, not an integer, or above the share of the
    goods points may pay (details: max_points); 409 `points_insufficient` when the balance
    (which may be negative after a refund took back points already spent) does not cover it
    (details: balance). The share is checked first: asking for more than any balance could
    buy is a bad request, not a shortage.
    """
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 0:
        raise ApiError(422, "points_invalid", "points must be a non-negative integer")
    if wanted == 0:
        return 0
    cap = max_redeemable(goods_after_coupons)
    if wanted > cap:
        raise ApiError(422, "points_invalid",
                       f"points may pay at most {MAX_REDEEM_SHARE:.0%} of the goods",
                       details={"max_points": cap})
    if wanted > balance_available:
        raise ApiError(409, "points_insufficient", "not enough points",
                       details={"balance": balance_available})
    return wanted


def checkin_points(streak: int) -> int:
    """Points for the `streak`-th consecutive day of check-in (streak >= 1)."""
    if streak < 1:
        raise ValueError("streak starts at 1")
    return CHECKIN_BASE + CHECKIN_STEP * min(streak - 1, CHECKIN_MAX_GROWTH_DAYS)
