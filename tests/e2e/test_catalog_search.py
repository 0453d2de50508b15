"""Search over a seeded catalog of a few thousand products, checked against Python.

The products live in a category subtree of their own and every query names it, so products
made by other tests never appear.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import call, new_category, unique

PRODUCTS = 3000
EN = ["Laptop", "Phone", "Backpack", "Headphones", "Keyboard", "Monitor", "Camera", "Speaker"]
EN_ADJ = ["Wireless", "Portable", "Gaming", "Classic", "Smart", "Mini"]
ZH = ["手机", "笔记本电脑", "双肩背包", "耳机", "机械键盘", "显示器", "相机", "音箱"]
ZH_ADJ = ["无线", "便携", "游戏", "经典", "智能", "迷你"]
TAGS = ["sale", "new", "热卖", "gift", "eco"]
PRICES = [990, 1990, 2990, 4990, 9900, 19900]
THRESHOLD = 0.6  # pg_trgm.word_similarity_threshold, the default


@dataclass
class Seeded:
    id: int = 0
    name: str = ""
    category: int = 0
    tags: list[str] = field(default_factory=list)
    published: bool = True
    created_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    skus: list[tuple[int, int, int]] = field(default_factory=list)  # price, stock, sold
    flash_sold: int = 0

    @property
    def min_price(self) -> int:
        return min(p for p, _, _ in self.skus)

    @property
    def sales(self) -> int:
        return sum(s for _, _, s in self.skus) + self.flash_sold

    @property
    def in_stock(self) -> bool:
        return any(stock > sold for _, stock, sold in self.skus)


@dataclass
class Catalog:
    root: int
    tree: dict[int, list[int]]  # category -> children
    products: list[Seeded]

    def subtree(self, category: int) -> set[int]:
        found, todo = set(), [category]
        while todo:
            c = todo.pop()
            found.add(c)
            todo.extend(self.tree.get(c, []))
        return found


def make_name(rng: random.Random, n: int) -> str:
    kind = rng.random()
    if kind < 0.45:
        return f"{rng.choice(EN_ADJ)} {rng.choice(EN)} {n}"
    if kind < 0.9:
        return f"{rng.choice(ZH_ADJ)}{rng.choice(ZH)}{n}号"
    return f"{rng.choice(EN)} {rng.choice(ZH)} {n}"


async def seed(pg: asyncpg.Pool, root: int) -> Catalog:
    rng = random.Random(20261123)
    tree: dict[int, list[int]] = {root: []}
    async with pg.acquire() as conn, conn.transaction():
        for i in range(3):
            child = await conn.fetchval("INSERT INTO categories (parent_id, name) VALUES ($1, $2)"
                                        " RETURNING id", root, f"L1-{i}")
            tree[root].append(child)
            tree[child] = []
            for j in range(2):
                grand = await conn.fetchval("INSERT INTO categories (parent_id, name) VALUES "
                                            "($1, $2) RETURNING id", child, f"L2-{j}")
                leaf = await conn.fetchval("INSERT INTO categories (parent_id, name) VALUES "
                                           "($1, 'L3') RETURNING id", grand)
                tree[child].append(grand)
                tree[grand] = [leaf]
        placed = [c for c in tree if c != root] + [leaf for kids in tree.values() for leaf in kids
                                                   if leaf not in tree]
        products = []
        base = datetime(2026, 1, 1, tzinfo=UTC)
        for n in range(PRODUCTS):
            p = Seeded(name=make_name(rng, n), category=rng.choice(placed),
                       tags=rng.sample(TAGS, rng.randint(0, 2)), published=rng.random() > 0.1,
                       created_at=base + timedelta(minutes=rng.randint(0, 300)))
            for _ in range(rng.randint(1, 3)):
                stock = rng.choice([0, 5, 20])
                p.skus.append((rng.choice(PRICES), stock, rng.randint(0, stock)))
            products.append(p)
        ids = await conn.fetch(
            "INSERT INTO products (name, category_id, tags, published, created_at) "
            "SELECT a, b, c::text[], d, e FROM unnest($1::text[], $2::bigint[], $3::text[],"
            " $4::bool[], $5::timestamptz[]) WITH ORDINALITY AS t(a, b, c, d, e, n) ORDER BY n "
            "RETURNING id",
            [p.name for p in products], [p.category for p in products],
            ["{" + ",".join(p.tags) + "}" for p in products], [p.published for p in products],
            [p.created_at for p in products],
        )
        for p, row in zip(products, ids, strict=True):
            p.id = row["id"]
        await _seed_skus(conn, rng, products)
    return Catalog(root, tree, products)


async def _seed_skus(conn: asyncpg.Connection, rng: random.Random,
                     products: list[Seeded]) -> None:
    owners, prices, stocks, solds = [], [], [], []
    for p in products:
        for price, stock, sold in p.skus:
            owners.append(p.id)
            prices.append(price)
            stocks.append(stock + 2)  # two units leave for a flash sale below
            solds.append(sold)
    sku_ids = await conn.fetch(
        "INSERT INTO skus (product_id, price, stock, sold) SELECT a, b, c, d FROM unnest("
        "$1::bigint[],"
        " $2::bigint[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS t(a, b, c, d, n) "
        "ORDER BY n RETURNING id, product_id", owners, prices, stocks, solds)
    await conn.execute("UPDATE skus SET stock = stock - 2 WHERE id = ANY($1::bigint[])",
                       [r["id"] for r in sku_ids])
    by_id = {p.id: p for p in products}
    now = datetime.now(UTC)
    sales = []
    for r in sku_ids:
        if rng.random() < 0.2:
            sold = rng.randint(0, 2)
            by_id[r["product_id"]].flash_sold += sold
            sales.append((r["id"], sold))
    await conn.executemany(
        "INSERT INTO flash_sales (sku_id, price, stock, sold, per_user_limit, starts_at,"
        " ends_at, created_by) VALUES ($1, 1, 2, $2, 1, $3, $4, 'seed')",
        [(sku, sold, now, now + timedelta(hours=1)) for sku, sold in sales])


@pytest.fixture(scope="module")
async def catalog(client: TestClient, settings: Settings, pg: asyncpg.Pool) -> Catalog:
    root = await new_category(client, settings, unique("search-root"))
    return await seed(pg, root["id"])


async def scores(pg: asyncpg.Pool, q: str, products: list[Seeded]) -> dict[int, Decimal]:
    rows = await pg.fetch("SELECT id, word_similarity($1, name) AS sim FROM products "
                          "WHERE id = ANY($2::bigint[])", q, [p.id for p in products])
    return {r["id"]: Decimal(str(r["sim"])) for r in rows}


def text_match(q: str, p: Seeded, sim: dict[int, Decimal]) -> bool:
    if q.lower() in p.name.lower():
        return True
    fuzzy = len(q) > 2 and all(c < "\u2e80" for c in q)  # CJK queries: substring only
    return fuzzy and sim[p.id] >= Decimal(str(THRESHOLD))


async def expected(pg: asyncpg.Pool, catalog: Catalog, params: dict[str, Any]) -> list[int]:
    cats = catalog.subtree(int(params.get("category_id", catalog.root)))
    chosen = [p for p in catalog.products if p.published and p.category in cats]
    if "tag" in params:
        chosen = [p for p in chosen if params["tag"].lower() in p.tags]
    if "min_price" in params:
        chosen = [p for p in chosen if p.min_price >= int(params["min_price"])]
    if "max_price" in params:
        chosen = [p for p in chosen if p.min_price <= int(params["max_price"])]
    if params.get("in_stock") == "true":
        chosen = [p for p in chosen if p.in_stock]
    q = params.get("q")
    sort = params.get("sort", "relevance" if q else "newest")
    sim: dict[int, Decimal] = {}
    if q:
        sim = await scores(pg, q, chosen)
        chosen = [p for p in chosen if text_match(q, p, sim)]
    keys = {
        "price_asc": lambda p: (p.min_price, p.id),
        "price_desc": lambda p: (-p.min_price, -p.id),
        "newest": lambda p: (-p.created_at.timestamp(), -p.id),
        "sales": lambda p: (-p.sales, -p.id),
        "relevance": lambda p: (-(int(q.lower() in p.name.lower()) + sim[p.id]), -p.id),
    }
    return [p.id for p in sorted(chosen, key=keys[sort])]


async def walk(client: TestClient, params: dict[str, Any], limit: int) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(PRODUCTS):
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        _, page = await call(client, "GET", "/api/v1/products", 200, params=query)
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit
    raise AssertionError("pagination did not end")


CASES = [
    {"q": "手机"},  # two CJK characters: the short-query path
    {"q": "机"},
    {"q": "显示器"},  # three: the trigram index
    {"q": "笔记本电脑", "sort": "price_asc"},
    {"q": "LAPTOP"},  # case-insensitive
    {"q": "wireless laptop", "sort": "newest"},
    {"q": "Keybord"},  # misspelt: trigram word similarity
    {"q": "Phone 手机"},
    {"tag": "热卖", "sort": "sales"},
    {"tag": "SALE", "in_stock": "true", "sort": "price_desc"},
    {"min_price": "1990", "max_price": "4990", "sort": "price_asc"},
    {"in_stock": "true", "sort": "newest"},
]


@pytest.mark.parametrize("params", CASES, ids=[str(c) for c in CASES])
async def test_search_matches_python(client: TestClient, pg: asyncpg.Pool, catalog: Catalog,
                                     params: dict[str, str]) -> None:
    params = {"category_id": str(catalog.root), **params}
    want = await expected(pg, catalog, params)
    assert want, "a case that matches nothing proves little"
    got = await walk(client, params, limit=50)
    assert [i["id"] for i in got] == want


@pytest.mark.parametrize("sort", ["relevance", "price_asc", "price_desc", "newest", "sales"])
async def test_every_sort_walks_every_page(client: TestClient, pg: asyncpg.Pool,
                                           catalog: Catalog, sort: str) -> None:
    params = {"category_id": str(catalog.root), "sort": sort}
    if sort == "relevance":
        params["q"] = "智能"
    want = await expected(pg, catalog, params)
    got = await walk(client, params, limit=37)
    ids = [i["id"] for i in got]
    assert len(ids) == len(set(ids)) and ids == want
    by_id = {p.id: p for p in catalog.products}
    for item in got:
        p = by_id[item["id"]]
        assert item["price_from"] == p.min_price and item["sales"] == p.sales
        assert item["available"] == sum(stock - sold for _, stock, sold in p.skus)


async def test_category_filter_includes_descendants(client: TestClient, pg: asyncpg.Pool,
                                                    catalog: Catalog) -> None:
    middle = catalog.tree[catalog.root][0]
    leaf = catalog.tree[middle][1]
    for category in (middle, leaf):
        params = {"category_id": str(category), "sort": "price_desc"}
        want = await expected(pg, catalog, params)
        got = [i["id"] for i in await walk(client, params, limit=100)]
        assert got == want and len(want) > 20
        members = catalog.subtree(category)
        assert {i["category_id"] for i in await walk(client, params, limit=100)} <= members
    _, page = await call(client, "GET", "/api/v1/products", 200,
                         params={"category_id": "987654321"})
    assert page == {"items": [], "next_cursor": None}


async def test_unpublished_never_found(client: TestClient, catalog: Catalog) -> None:
    hidden = {p.id for p in catalog.products if not p.published}
    assert hidden
    got = await walk(client, {"category_id": str(catalog.root)}, limit=100)
    assert not hidden & {i["id"] for i in got}


BAD = [
    {"sort": "cheapest"}, {"sort": "relevance"}, {"limit": "0"}, {"limit": "101"},
    {"limit": "ten"}, {"min_price": "-1"}, {"min_price": "5", "max_price": "4"},
    {"max_price": "1e3"}, {"in_stock": "yes"}, {"category_id": "0"},
    {"category_id": "1 OR 1=1"}, {"q": " "}, {"q": "x" * 101}, {"tag": "t" * 33},
    {"cursor": "garbage"}, {"cursor": "W10"}, {"unknown": "1"}, {"q": "a\x00b"},
    {"min_price": "١٢"},
]


@pytest.mark.parametrize("params", BAD, ids=[str(b)[:40] for b in BAD])
async def test_bad_parameters_are_422(client: TestClient, params: dict[str, str]) -> None:
    status, err = await call(client, "GET", "/api/v1/products", params=params)
    assert status == 422 and err["error"]["code"] == "invalid_request"


async def test_cursor_is_bound_to_its_query(client: TestClient, catalog: Catalog) -> None:
    params = {"category_id": str(catalog.root), "sort": "price_asc", "limit": "5"}
    _, page = await call(client, "GET", "/api/v1/products", 200, params=params)
    cursor = page["next_cursor"]
    assert cursor
    for change in ({"sort": "price_desc"}, {"tag": "sale"}, {"min_price": "1"}):
        status, _ = await call(client, "GET", "/api/v1/products",
                               params={**params, **change, "cursor": cursor})
        assert status == 422
    status, err = await call(client, "GET", "/api/v1/products", params=[
        ("tag", "a"), ("tag", "b")])
    assert status == 422


INJECTIONS = ["'; DROP TABLE products; --", "' OR '1'='1", "%", "_", "\\", "%' --",
              "手机' OR 1=1 --", "$1", "); SELECT pg_sleep(5); --"]


@pytest.mark.parametrize("text", INJECTIONS)
async def test_injection_strings_are_plain_text(client: TestClient, pg: asyncpg.Pool,
                                                catalog: Catalog, text: str) -> None:
    params = {"category_id": str(catalog.root), "q": text}
    want = await expected(pg, catalog, params)
    got = [i["id"] for i in await walk(client, params, limit=100)]
    assert got == want
    _, page = await call(client, "GET", "/api/v1/products", 200,
                         params={"category_id": str(catalog.root), "tag": text})
    assert page["items"] == []
    assert await pg.fetchval("SELECT count(*) FROM products WHERE category_id = ANY($1)",
                             list(catalog.subtree(catalog.root))) == PRODUCTS
