"""Seed a catalog for the search and product-detail benchmarks.

    MALL_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/mall_catbench \\
        python -m bench.catalog_seed --products 5000 --seed 7

The database must be migrated (`mall migrate`). The same seed gives the same catalog: a
three-level category tree, Chinese, English and mixed names, tags, 1-4 SKUs per product with
attributes, some units sold, about 5% of products unpublished.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from mall.settings import Settings, mask_dsn

EN_NOUNS = ["Laptop", "Phone", "Backpack", "Headphones", "Keyboard", "Monitor", "Camera",
            "Speaker", "Watch", "Charger", "Tablet", "Mouse"]
EN_ADJ = ["Wireless", "Portable", "Gaming", "Classic", "Smart", "Mini", "Pro", "Ultra"]
ZH_NOUNS = ["手机", "笔记本电脑", "双肩背包", "耳机", "机械键盘", "显示器", "相机", "音箱",
            "手表", "充电器", "平板电脑", "鼠标"]
ZH_ADJ = ["无线", "便携", "游戏", "经典", "智能", "迷你", "专业", "超薄"]
TAGS = ["sale", "new", "热卖", "gift", "eco", "限量", "hot", "包邮"]
COLOURS = ["red", "black", "white", "blue"]
SIZES = ["S", "M", "L", "XL"]
TOP = ["数码 Digital", "家居 Home", "服装 Apparel", "运动 Sports"]

INSERT_CATEGORY = "INSERT INTO categories (parent_id, name) VALUES ($1, $2) RETURNING id"
INSERT_PRODUCTS = """
INSERT INTO products (name, description, category_id, tags, published, created_at)
SELECT name, description, category_id, tags::text[], published, created_at
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bool[], $6::timestamptz[])
    WITH ORDINALITY AS t(name, description, category_id, tags, published, created_at, n)
ORDER BY n
RETURNING id
"""
INSERT_SKUS = """
INSERT INTO skus (product_id, price, stock, sold, attributes)
SELECT product_id, price, stock, sold, attributes::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
    AS t(product_id, price, stock, sold, attributes)
"""


def product_name(rng: random.Random, n: int) -> str:
    kind = rng.random()
    if kind < 0.45:
        return f"{rng.choice(EN_ADJ)} {rng.choice(EN_NOUNS)} {n}"
    if kind < 0.9:
        return f"{rng.choice(ZH_ADJ)}{rng.choice(ZH_NOUNS)} {n}号"
    return f"{rng.choice(EN_NOUNS)} {rng.choice(ZH_NOUNS)} {n}"


async def seed_categories(conn: asyncpg.Connection, rng: random.Random, tag: str) -> list[int]:
    """Three levels under four top categories; returns every category id."""
    ids = []
    for top in TOP:
        top_id = await conn.fetchval(INSERT_CATEGORY, None, f"{top} {tag}")
        ids.append(top_id)
        for i in range(3):
            mid = await conn.fetchval(INSERT_CATEGORY, top_id, f"{top[:2]}-{i}")
            ids.append(mid)
            for j in range(rng.randint(2, 3)):
                ids.append(await conn.fetchval(INSERT_CATEGORY, mid, f"{top[:2]}-{i}-{j}"))
    return ids


async def seed(dsn: str, products: int, seed_value: int) -> tuple[int, int]:
    rng = random.Random(seed_value)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            categories = await seed_categories(conn, rng, f"#{seed_value}")
            rows = [(product_name(rng, n), f"商品描述 description {n}", rng.choice(categories),
                     "{" + ",".join(rng.sample(TAGS, rng.randint(0, 3))) + "}",
                     rng.random() > 0.05, base + timedelta(seconds=rng.randint(0, 86_400 * 90)))
                    for n in range(products)]
            ids = [r["id"] for r in await conn.fetch(INSERT_PRODUCTS, *map(list, zip(*rows,
                                                                                  strict=True)))]
            skus: list[tuple[int, int, int, int, str]] = []
            for product_id in ids:
                for _ in range(rng.randint(1, 4)):
                    stock = rng.choice([0, 10, 50, 200])
                    attributes = {"colour": rng.choice(COLOURS), "size": rng.choice(SIZES)}
                    skus.append((product_id, rng.randrange(500, 500_000, 10), stock,
                                 rng.randint(0, stock), orjson.dumps(attributes).decode()))
            await conn.execute(INSERT_SKUS, *map(list, zip(*skus, strict=True)))
        await conn.execute("ANALYZE products; ANALYZE skus; ANALYZE categories")
    finally:
        await conn.close()
    return len(ids), len(skus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    dsn = Settings.from_env().database_url
    made, skus = asyncio.run(seed(dsn, args.products, args.seed))
    print(f"seeded {made} products and {skus} SKUs into {mask_dsn(dsn)}")


if __name__ == "__main__":
    main()
