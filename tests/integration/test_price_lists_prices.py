"""The price a buyer pays, on real PostgreSQL: price lists in and out of effect, overlapping
lists, member prices, and the schema's own checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from catalog_api.availability import SkuInfo, product_promotions, sellable_skus


async def skus_of(pg: asyncpg.Pool, prices: list[int], member_prices: list[int | None] | None = None
                  ) -> tuple[int, list[int]]:
    members = member_prices or [None] * len(prices)
    async with pg.acquire() as conn, conn.transaction():
        pid = await conn.fetchval(
            "INSERT INTO products (name) VALUES ('priced 定价') RETURNING id")
        rows = await conn.fetch(
            "INSERT INTO skus (product_id, price, stock, member_price)"
            " SELECT $1, p, 10, m FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY"
            " AS t(p, m, n) ORDER BY n RETURNING id", pid, prices, members)
    return pid, [r["id"] for r in rows]


async def price_list(pg: asyncpg.Pool, items: dict[int, int], start_in_s: float = -60,
                     length_s: float = 3600, status: str = "active") -> int:
    now = datetime.now(UTC)
    starts = now + timedelta(seconds=start_in_s)
    async with pg.acquire() as conn, conn.transaction():
        list_id = await conn.fetchval(
            "INSERT INTO price_lists (name, starts_at, ends_at, status, created_by, ended_at)"
            " VALUES ('test', $1, $2, $3, 'tester', CASE WHEN $3 = 'ended' THEN now() END)"
            " RETURNING id", starts, starts + timedelta(seconds=length_s), status)
        await conn.execute(
            "INSERT INTO price_list_items (price_list_id, sku_id, price)"
            " SELECT $1, s, p FROM unnest($2::bigint[], $3::bigint[]) AS t(s, p)",
            list_id, list(items), list(items.values()))
    return int(list_id)


def prices(found: dict[int, SkuInfo]) -> dict[int, tuple[int, int, str]]:
    return {s: (i.price, i.list_price, i.price_source) for s, i in found.items()}


async def test_only_a_list_in_effect_now_lowers_the_price(pg: asyncpg.Pool) -> None:
    _, (live, future, past, ended, plain) = await skus_of(pg, [1000] * 5)
    live_list = await price_list(pg, {live: 700})
    await price_list(pg, {future: 600}, start_in_s=3600)
    await price_list(pg, {past: 500}, start_in_s=-7200, length_s=3600)
    await price_list(pg, {ended: 400}, status="ended")
    found = await sellable_skus(pg, [live, future, past, ended, plain])
    assert prices(found) == {live: (700, 1000, "price_list"), future: (1000, 1000, "list"),
                             past: (1000, 1000, "list"), ended: (1000, 1000, "list"),
                             plain: (1000, 1000, "list")}
    assert found[live].price_list_id == live_list and found[live].price_ends_at is not None
    assert found[plain].price_list_id is None and found[plain].price_ends_at is None

    # Ending early takes effect with the next read.
    await pg.execute("UPDATE price_lists SET status = 'ended', ended_at = now() WHERE id = $1",
                     live_list)
    assert prices(await sellable_skus(pg, [live]))[live] == (1000, 1000, "list")


async def test_overlapping_lists_the_lowest_wins(pg: asyncpg.Pool) -> None:
    _, (a, b) = await skus_of(pg, [1000, 2000])
    await price_list(pg, {a: 900, b: 1500})
    cheapest = await price_list(pg, {a: 800, b: 1900})
    await price_list(pg, {a: 100}, start_in_s=60)  # not yet
    found = await sellable_skus(pg, [a, b])
    assert prices(found) == {a: (800, 1000, "price_list"), b: (1500, 2000, "price_list")}
    assert found[a].price_list_id == cheapest


async def test_member_price_only_for_members(pg: asyncpg.Pool) -> None:
    _, (a, b, c) = await skus_of(pg, [1000, 1000, 1000], [850, 950, None])
    await price_list(pg, {b: 900, c: 900})
    assert prices(await sellable_skus(pg, [a, b, c])) == {
        a: (1000, 1000, "list"), b: (900, 1000, "price_list"), c: (900, 1000, "price_list")}
    assert prices(await sellable_skus(pg, [a, b, c], member=True)) == {
        a: (850, 1000, "member"), b: (900, 1000, "price_list"), c: (900, 1000, "price_list")}


async def test_a_list_price_above_a_lowered_sku_price_changes_nothing(pg: asyncpg.Pool) -> None:
    _, (a,) = await skus_of(pg, [1000])
    await price_list(pg, {a: 900})
    await pg.execute("UPDATE skus SET price = 800 WHERE id = $1", a)
    assert prices(await sellable_skus(pg, [a])) == {a: (800, 800, "list")}


async def test_the_locking_read_prices_the_same(pg: asyncpg.Pool) -> None:
    _, (a, b) = await skus_of(pg, [1000, 500], [None, 400])
    await price_list(pg, {a: 600})
    async with pg.acquire() as conn, conn.transaction():
        locked = await sellable_skus(conn, [b, a], for_update=True, member=True)
    assert prices(locked) == {a: (600, 1000, "price_list"), b: (400, 500, "member")}


async def test_product_promotions_and_the_next_change(pg: asyncpg.Pool) -> None:
    pid, (a, b, c) = await skus_of(pg, [1000, 1000, 1000])
    live = await price_list(pg, {a: 700, b: 800}, length_s=3600)
    await price_list(pg, {a: 650}, length_s=600)  # a's cheapest, ends sooner
    upcoming = await price_list(pg, {c: 500}, start_in_s=300)
    await price_list(pg, {c: 400}, status="ended")
    async with pg.acquire() as conn:
        found, next_change = await product_promotions(conn, pid)
        start_of_upcoming = await conn.fetchval(
            "SELECT starts_at FROM price_lists WHERE id = $1", upcoming)
    assert {s: p.price for s, p in found.items()} == {a: 650, b: 800}
    assert found[b].price_list_id == live
    assert next_change == start_of_upcoming


async def test_schema_checks(pg: asyncpg.Pool) -> None:
    _, (a,) = await skus_of(pg, [1000])
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute("UPDATE skus SET member_price = 1001 WHERE id = $1", a)
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute("UPDATE skus SET member_price = 0 WHERE id = $1", a)
    with pytest.raises(asyncpg.CheckViolationError):
        await price_list(pg, {a: 900}, start_in_s=10, length_s=-5)
    with pytest.raises(asyncpg.CheckViolationError):
        await price_list(pg, {a: 0})
    with pytest.raises(asyncpg.UniqueViolationError):
        list_id = await price_list(pg, {a: 900})
        await pg.execute("INSERT INTO price_list_items VALUES ($1, $2, 800)", list_id, a)
