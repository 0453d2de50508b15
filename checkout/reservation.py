"""The arguments of lua/reserve.lua, built in one place for checkout and its tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mall.keys import Keys


@dataclass(frozen=True, slots=True)
class PointsSpend:
    wanted: int
    balance: int  # members.points
    redeemed: int  # members.redeemed, read in the same snapshot as `balance`


@dataclass(frozen=True, slots=True)
class Reservation:
    user_id: str
    order_id: str
    order_json: bytes
    ttl_s: int
    lines: list[tuple[int, int]]  # (sku id, qty)
    coupons: list[tuple[int, int]] = field(default_factory=list)  # (user coupon id, returned)
    points: PointsSpend | None = None
    idem_key: str | None = None
    fingerprint: str = ""

    def call(self, keys: Keys) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of reserve.lua, in its order."""
        core = keys.checkout
        idem = core.idempotency(self.user_id, self.idem_key or "-")
        spend = self.points if self.points is not None and self.points.wanted > 0 else None
        script_keys = [idem, core.order_view(self.order_id), core.outbox,
                       *(keys.sku_stock(sku) for sku, _ in self.lines),
                       *(core.coupon_uses(cid) for cid, _ in self.coupons)]
        if spend is not None:
            script_keys.append(core.points_reserved(self.user_id))
        args: list[Any] = [self.fingerprint if self.idem_key else "", self.order_id,
                           self.order_json, self.ttl_s, len(self.lines), len(self.coupons),
                           spend.wanted if spend else 0, spend.balance if spend else 0,
                           spend.redeemed if spend else 0]
        args += [qty for _, qty in self.lines]
        args += [returned for _, returned in self.coupons]
        return script_keys, args
