"""coupons.redemption on real PostgreSQL: every rule of quote(), and release_for_order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from checkout.coupons import PricedLine
from coupons.redemption import quote, release_for_order
from mall.errors import ApiError

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def _user() -> str:
    return f"r{uuid.uuid4().hex[:12]}"


async def _category(pg: asyncpg.Pool, parent: int | None = None) -> int:
    return int(await pg.fetchval("INSERT INTO categories (name, parent_id) VALUES ($1, $2)"
                                 " RETURNING id", uuid.uuid4().hex, parent))


async def _product(pg: asyncpg.Pool, category: int | None = None) -> int:
    return int(await pg.fetchval("INSERT INTO products (name, category_id) VALUES ('p', $1)"
                                 " RETURNING id", category))


async def _coupon(pg: asyncpg.Pool, user: str, kind: str = "fixed", amount: int = 0,
                  threshold: int = 0, percent_off: int | None = None,
                  max_discount: int | None = None, scope: str = "all",
                  scope_ids: list[int] | None = None, stackable: bool = False,
                  valid_from: datetime = NOW - DAY, valid_until: datetime = NOW + DAY,
                  **template: Any) -> int:
    if kind != "percent" and not amount:
        amount = 500
    template_id = await pg.fetchval(
        "INSERT INTO coupon_templates (name, kind, threshold, amount, percent_off, max_discount,"
        " claim_starts_at, claim_ends_at, valid_from, valid_until, total, per_user, scope,"
        " scope_ids, stackable, created_by) VALUES ('c', $1, $2, $3, $4, $5, $6, $7, $6, $7,"
        " 100, 5, $8, $9, $10, 'test') RETURNING id",
        kind, threshold, amount, percent_off, max_discount, valid_from, valid_until, scope,
        scope_ids or [], stackable)
    return await _hold(pg, int(template_id), user)


async def _hold(pg: asyncpg.Pool, template_id: int, user: str) -> int:
    return int(await pg.fetchval(
        "INSERT INTO user_coupons (template_id, user_id, seq, source)"
        " SELECT $1, $2, coalesce(max(seq), 0) + 1, 'claim' FROM user_coupons"
        " WHERE template_id = $1 AND user_id = $2 RETURNING id", template_id, user))


def _line(product_id: int, unit_price: int, qty: int = 1, sku_id: int = 1) -> PricedLine:
    return PricedLine(sku_id=sku_id, product_id=product_id, qty=qty, unit_price=unit_price)


async def _quote(pg: asyncpg.Pool, user: str, ids: list[int], lines: list[PricedLine],
                 now: datetime = NOW) -> Any:
    async with pg.acquire() as conn:
        return await quote(conn, user, ids, lines, now)


async def _refused(pg: asyncpg.Pool, user: str, ids: list[int], lines: list[PricedLine],
                   now: datetime = NOW) -> ApiError:
    with pytest.raises(ApiError) as info:
        await _quote(pg, user, ids, lines, now)
    return info.value


async def test_fixed_is_capped_by_the_scoped_goods(pg: asyncpg.Pool) -> None:
    user, p = _user(), await _product(pg)
    cid = await _coupon(pg, user, "fixed", amount=3000)
    q = await _quote(pg, user, [cid], [_line(p, 1000, 2)])
    assert (q.discount, q.per_coupon) == (2000, {cid: 2000})
    assert q.holds == [(cid, 0)]
    q = await _quote(pg, user, [cid], [_line(p, 1000, 5)])
    assert q.discount == 3000


async def test_threshold_on_the_scoped_subtotal(pg: asyncpg.Pool) -> None:
    user = _user()
    inside, outside = await _product(pg), await _product(pg)
    cid = await _coupon(pg, user, "threshold", amount=2000, threshold=10000, scope="products",
                        scope_ids=[inside])
    err = await _refused(pg, user, [cid], [_line(inside, 9999), _line(outside, 50000)])
    assert (err.status, err.code) == (422, "coupon_not_applicable")
    assert err.details is not None and err.details["reason"] == "below_threshold"
    assert err.details["scoped_subtotal"] == 9999
    q = await _quote(pg, user, [cid], [_line(inside, 5000, 2), _line(outside, 1)])
    assert q.discount == 2000


async def test_percent_floors_and_caps(pg: asyncpg.Pool) -> None:
    user, p = _user(), await _product(pg)
    uncapped = await _coupon(pg, user, "percent", percent_off=15)
    q = await _quote(pg, user, [uncapped], [_line(p, 999, 1)])
    assert q.discount == 149  # floor(999 * 15 / 100) = 149.85 -> 149
    capped = await _coupon(pg, user, "percent", percent_off=50, max_discount=300)
    q = await _quote(pg, user, [capped], [_line(p, 10000)])
    assert q.discount == 300


async def test_category_scope_includes_descendants(pg: asyncpg.Pool) -> None:
    user = _user()
    root = await _category(pg)
    child = await _category(pg, root)
    grandchild = await _category(pg, child)
    other = await _category(pg)
    deep, unrelated, loose = (await _product(pg, grandchild), await _product(pg, other),
                              await _product(pg))
    cid = await _coupon(pg, user, "percent", percent_off=10, scope="categories",
                        scope_ids=[root])
    q = await _quote(pg, user, [cid], [_line(deep, 5000), _line(unrelated, 7000),
                                       _line(loose, 9000)])
    assert q.discount == 500
    err = await _refused(pg, user, [cid], [_line(unrelated, 7000), _line(loose, 1000)])
    assert err.details is not None and err.details["reason"] == "out_of_scope"
    # A coupon scoped to the child does not reach its parent's products.
    parent_product = await _product(pg, root)
    narrow = await _coupon(pg, user, "fixed", amount=100, scope="categories", scope_ids=[child])
    err = await _refused(pg, user, [narrow], [_line(parent_product, 7000)])
    assert err.details is not None and err.details["reason"] == "out_of_scope"


async def test_ownership_and_unknown(pg: asyncpg.Pool) -> None:
    owner, thief, p = _user(), _user(), await _product(pg)
    cid = await _coupon(pg, owner)
    for ids, who in (([cid], thief), ([2**62], owner)):
        err = await _refused(pg, who, ids, [_line(p, 1000)])
        assert (err.status, err.code) == (422, "coupon_invalid")


async def test_used_coupon(pg: asyncpg.Pool) -> None:
    user, p = _user(), await _product(pg)
    cid = await _coupon(pg, user)
    await pg.execute("UPDATE user_coupons SET state = 'used', order_id = 'co-x', used_at = now()"
                     " WHERE id = $1", cid)
    err = await _refused(pg, user, [cid], [_line(p, 1000)])
    assert (err.status, err.code) == (409, "coupon_used")


async def test_validity_window(pg: asyncpg.Pool) -> None:
    user, p = _user(), await _product(pg)
    cid = await _coupon(pg, user, valid_from=NOW + DAY, valid_until=NOW + 2 * DAY)
    err = await _refused(pg, user, [cid], [_line(p, 1000)])
    assert err.details is not None and err.details["reason"] == "not_yet_valid"
    err = await _refused(pg, user, [cid], [_line(p, 1000)], now=NOW + 2 * DAY)
    assert err.details is not None and err.details["reason"] == "expired"
    q = await _quote(pg, user, [cid], [_line(p, 1000)], now=NOW + DAY)
    assert q.discount == 500


async def test_stacking_rules_and_the_subtotal_cap(pg: asyncpg.Pool) -> None:
    user, p = _user(), await _product(pg)
    a = await _coupon(pg, user, "fixed", amount=700, stackable=True)
    b = await _coupon(pg, user, "fixed", amount=600, stackable=True)
    lone = await _coupon(pg, user, "fixed", amount=100, stackable=False)
    q = await _quote(pg, user, [a, b], [_line(p, 1000)])
    assert q.discount == 1000, "the discount never exceeds the goods"
    assert q.per_coupon == {a: 700, b: 300}
    err = await _refused(pg, user, [a, lone], [_line(p, 5000)])
    assert (err.status, err.code) == (422, "coupons_not_stackable")
    template_of_a = await pg.fetchval("SELECT template_id FROM user_coupons WHERE id = $1", a)
    a_again = await _hold(pg, template_of_a, user)
    err = await _refused(pg, user, [a, a_again], [_line(p, 5000)])
    assert err.code == "coupons_not_stackable"
    err = await _refused(pg, user, [a, a], [_line(p, 5000)])
    assert err.code == "coupons_not_stackable"
    six = [await _coupon(pg, user, stackable=True) for _ in range(6)]
    err = await _refused(pg, user, six, [_line(p, 50000)])
    assert err.code == "too_many_coupons"
    assert (await _quote(pg, user, six[:5], [_line(p, 50000)])).discount == 2500


async def test_no_coupons_no_discount(pg: asyncpg.Pool) -> None:
    q = await _quote(pg, _user(), [], [_line(await _product(pg), 1000)])
    assert (q.discount, q.per_coupon, q.holds) == (0, {}, [])


async def test_release_for_order_returns_each_coupon_once(pg: asyncpg.Pool) -> None:
    user, p = _user(), await _product(pg)
    a, b, other = (await _coupon(pg, user, stackable=True), await _coupon(pg, user, stackable=True),
                   await _coupon(pg, user))
    order_id = f"co-{uuid.uuid4().hex}"
    await pg.execute("UPDATE user_coupons SET state = 'used', order_id = $2, used_at = now()"
                     " WHERE id = ANY($1::bigint[])", [a, b], order_id)
    await pg.execute("UPDATE user_coupons SET state = 'used', order_id = 'co-other',"
                     " used_at = now() WHERE id = $1", other)
    async with pg.acquire() as conn, conn.transaction():
        assert await release_for_order(conn, order_id) == 2
    async with pg.acquire() as conn, conn.transaction():
        assert await release_for_order(conn, order_id) == 0
    rows = {r["id"]: r for r in await pg.fetch(
        "SELECT id, state, order_id, used_at, returned_count FROM user_coupons"
        " WHERE id = ANY($1::bigint[])", [a, b, other])}
    for cid in (a, b):
        assert (rows[cid]["state"], rows[cid]["order_id"], rows[cid]["used_at"],
                rows[cid]["returned_count"]) == ("available", None, None, 1)
    assert rows[other]["state"] == "used"
    q = await _quote(pg, user, [a, b], [_line(p, 5000)])
    assert q.holds == [(a, 1), (b, 1)]


async def test_release_rolls_back_with_the_callers_transaction(pg: asyncpg.Pool) -> None:
    user = _user()
    cid = await _coupon(pg, user)
    order_id = f"co-{uuid.uuid4().hex}"
    await pg.execute("UPDATE user_coupons SET state = 'used', order_id = $2, used_at = now()"
                     " WHERE id = $1", cid, order_id)
    with pytest.raises(RuntimeError):
        async with pg.acquire() as conn, conn.transaction():
            assert await release_for_order(conn, order_id) == 1
            raise RuntimeError("the cancellation failed")
    assert await pg.fetchval("SELECT state FROM user_coupons WHERE id = $1", cid) == "used"
