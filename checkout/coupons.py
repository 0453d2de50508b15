"""The coupon hook of checkout. The promotions engine plugs in here; until it does, no code is
valid, so an order is never discounted by mistake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mall.errors import ApiError


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku_id: int
    product_id: int
    qty: int
    unit_price: int


class CouponHook(Protocol):
    async def discount(self, user_id: str, code: str, lines: list[PricedLine],
                       subtotal: int) -> int:
        """The discount in fen for this code on these lines, or raise ApiError 422."""


class NoCoupons:
    async def discount(self, user_id: str, code: str, lines: list[PricedLine],
                       subtotal: int) -> int:
        raise ApiError(422, "coupon_invalid", "this coupon code is not valid")
