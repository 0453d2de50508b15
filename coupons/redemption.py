"""The rules checkout applies to the coupons of an order, and giving coupons back.

`quote` only reads: the use itself is reserved in Redis with the order's stock and written by
the order writer (user_coupons.state = 'used', order_id). `release_for_order` is called by the
order lifecycle, inside its transaction, when an unpaid order is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from checkout.coupons import PricedLine
from mall.errors import ApiError

MAX_COUPONS_PER_ORDER = 5

COUPONS_OF = """
SELECT c.id, c.user_id, c.state, c.returned_count, c.template_id, t.kind, t.threshold,
       t.amount, t.percent_off, t.max_discount, t.scope, t.scope_ids, t.stackable,
       t.valid_from, t.valid_until
FROM user_coupons c JOIN coupon_templates t ON t.id = c.template_id
WHERE c.id = ANY($1::bigint[])
"""
PRODUCTS_IN_CATEGORIES = """
WITH RECURSIVE tree (id) AS (
    SELECT id FROM categories WHERE id = ANY($1::bigint[])
    UNION
    SELECT c.id FROM categories c JOIN tree ON c.parent_id = tree.id
)
SELECT p.id FROM products p
WHERE p.id = ANY($2::bigint[]) AND p.category_id IN (SELECT id FROM tree)
"""
RELEASE_FOR_ORDER = """
UPDATE user_coupons
SET state = 'available', order_id = NULL, used_at = NULL, returned_count = returned_count + 1
WHERE order_id = $1
"""


@dataclass(frozen=True, slots=True)
class Quote:
    discount: int
    per_coupon: dict[int, int] = field(default_factory=dict)
    holds: list[tuple[int, int]] = field(default_factory=list)  # (user_coupon_id, returned)


def _not_applicable(coupon_id: int, reason: str, message: str, **extra: Any) -> ApiError:
    return ApiError(422, "coupon_not_applicable", message,
                    details={"coupon_id": coupon_id, "reason": reason, **extra})


async def quote(conn: asyncpg.Connection, user_id: str, coupon_ids: list[int],
                lines: list[PricedLine], now: datetime) -> Quote:
    """The discount these coupons of `user_id` give on `lines` at `now`, or an ApiError:
    422 coupon_invalid (unknown or someone else's), 409 coupon_used, 422 coupons_not_stackable,
    422 coupon_not_applicable (details.reason: not_yet_valid, expired, out_of_scope,
    below_threshold), 422 too_many_coupons."""
    if not coupon_ids:
        return Quote(0)
    if len(coupon_ids) > MAX_COUPONS_PER_ORDER:
        raise ApiError(422, "too_many_coupons",
                       f"at most {MAX_COUPONS_PER_ORDER} coupons per order")
    if len(set(coupon_ids)) != len(coupon_ids):
        raise ApiError(422, "coupons_not_stackable", "a coupon can be used once per order")
    rows = {r["id"]: r for r in await conn.fetch(COUPONS_OF, coupon_ids)}
    coupons = [_owned(rows.get(cid), cid, user_id) for cid in coupon_ids]
    for c in coupons:
        if c["state"] != "available":
            raise ApiError(409, "coupon_used", "this coupon has already been used",
                           details={"coupon_id": c["id"]})
    _check_stackable(coupons)
    subtotal = sum(line.unit_price * line.qty for line in lines)
    per_coupon: dict[int, int] = {}
    for c in coupons:
        _check_valid_at(c, now)
        scoped = await _scoped_subtotal(conn, c, lines)
        per_coupon[c["id"]] = _discount_of(c, scoped)
    return Quote(_cap(per_coupon, subtotal), per_coupon,
                 [(c["id"], c["returned_count"]) for c in coupons])


def _owned(row: asyncpg.Record | None, coupon_id: int, user_id: str) -> asyncpg.Record:
    if row is None or row["user_id"] != user_id:
        raise ApiError(422, "coupon_invalid", "this coupon is not valid",
                       details={"coupon_id": coupon_id})
    return row


def _check_stackable(coupons: list[asyncpg.Record]) -> None:
    if len(coupons) < 2:
        return
    if not all(c["stackable"] for c in coupons):
        raise ApiError(422, "coupons_not_stackable", "one of these coupons cannot be combined")
    if len({c["template_id"] for c in coupons}) != len(coupons):
        raise ApiError(422, "coupons_not_stackable",
                       "two coupons of the same kind cannot be combined")


def _check_valid_at(c: asyncpg.Record, now: datetime) -> None:
    if now < c["valid_from"]:
        raise _not_applicable(c["id"], "not_yet_valid", "this coupon cannot be used yet",
                              valid_from=c["valid_from"].isoformat())
    if now >= c["valid_until"]:
        raise _not_applicable(c["id"], "expired", "this coupon has expired",
                              valid_until=c["valid_until"].isoformat())


async def _scoped_subtotal(conn: asyncpg.Connection, c: asyncpg.Record,
                           lines: list[PricedLine]) -> int:
    if c["scope"] == "all":
        in_scope = lines
    elif c["scope"] == "products":
        ids = set(c["scope_ids"])
        in_scope = [line for line in lines if line.product_id in ids]
    else:
        found = await conn.fetch(PRODUCTS_IN_CATEGORIES, list(c["scope_ids"]),
                                 list({line.product_id for line in lines}))
        ids = {r["id"] for r in found}
        in_scope = [line for line in lines if line.product_id in ids]
    scoped = sum(line.unit_price * line.qty for line in in_scope)
    if not in_scope:
        raise _not_applicable(c["id"], "out_of_scope", "no goods in this order fit the coupon")
    if scoped < c["threshold"]:
        raise _not_applicable(c["id"], "below_threshold",
                              f"the goods it covers must reach {c['threshold']}",
                              threshold=c["threshold"], scoped_subtotal=scoped)
    return scoped


def _discount_of(c: asyncpg.Record, scoped: int) -> int:
    if c["kind"] == "percent":
        off = scoped * c["percent_off"] // 100
        return off if c["max_discount"] is None else min(off, c["max_discount"])
    return min(c["amount"], scoped)


def _cap(per_coupon: dict[int, int], subtotal: int) -> int:
    """Trim the coupons' shares, last first, so together they never exceed the subtotal."""
    excess = sum(per_coupon.values()) - subtotal
    for cid in reversed(list(per_coupon)):
        if excess <= 0:
            break
        cut = min(excess, per_coupon[cid])
        per_coupon[cid] -= cut
        excess -= cut
    return sum(per_coupon.values())


async def release_for_order(conn: asyncpg.Connection, order_id: str) -> int:
    """Give back the coupons an order used (call inside the cancelling transaction); returns
    how many. Each returned coupon's returned_count moves on by one, so its next use is a new
    use number in Redis."""
    status = await conn.execute(RELEASE_FOR_ORDER, order_id)
    return int(status.split()[-1])
