"""`GET /products/{id}`: the product detail, from the Redis cache or PostgreSQL.

Customers and anonymous callers see published products only; staff see every product.
The body carries a strong ETag (a hash of its bytes); `If-None-Match` answers 304.

Each SKU shows its list price, its member price and, while a price list is in effect, that
list's price and end. A price list starting or ending changes the body without any write to
the catalog, so a cached entry never outlives the next start or end of a price list of its
product; creating, changing or ending a price list invalidates its products at once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from analytics.events import caller_id, record
from catalog_api import cache
from catalog_api.availability import Promotion, product_promotions
from catalog_api.http import CATALOG_KEYS, caller_is_staff
from mall.errors import not_found
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import PG, REDIS, SETTINGS

SELECT_PRODUCT = """
SELECT id, name, description, category_id, tags, image_urls, published, min_price,
       created_at, updated_at
FROM products WHERE id = $1
"""
SELECT_SKUS = """
SELECT id, price, member_price, stock, sold, stock - sold AS available,
       attributes::text AS attributes
FROM skus WHERE product_id = $1 ORDER BY id
"""
CATEGORY_PATH = """
WITH RECURSIVE up AS (
    SELECT id, parent_id, name, 0 AS depth FROM categories WHERE id = $1
    UNION ALL
    SELECT c.id, c.parent_id, c.name, up.depth + 1
    FROM categories c JOIN up ON c.id = up.parent_id
    WHERE up.depth < 100
)
SELECT id, name FROM up ORDER BY depth DESC
"""
# Redis counts an entry's life from when it gets the command, a moment after the clock is
# read: entries expire this much before a price list starts or ends.
PRICE_CHANGE_MARGIN_S = 0.25


@dataclass(frozen=True, slots=True)
class ProductRows:
    """What a product's detail is built from, read in one snapshot."""

    product: asyncpg.Record
    skus: list[asyncpg.Record]
    path: list[dict[str, Any]]
    promotions: dict[int, Promotion]
    next_price_change: datetime | None


async def read_product(pool: asyncpg.Pool, product_id: int) -> ProductRows | None:
    """The product, its SKUs (with stock and sold), category path and price lists in effect."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        product = await conn.fetchrow(SELECT_PRODUCT, product_id)
        if product is None:
            return None
        skus = await conn.fetch(SELECT_SKUS, product_id)
        promotions, next_price_change = await product_promotions(conn, product_id)
        path = []
        if product["category_id"] is not None:
            path = [{"id": r["id"], "name": r["name"]}
                    for r in await conn.fetch(CATEGORY_PATH, product["category_id"])]
    return ProductRows(product, list(skus), path, promotions, next_price_change)


async def load_detail(pool: asyncpg.Pool, product_id: int
                      ) -> tuple[cache.CachedDetail | None, datetime | None]:
    """The detail, and the next instant a price list of the product starts or ends."""
    rows = await read_product(pool, product_id)
    if rows is None:
        return None, None
    body = orjson.dumps(detail_view(rows))
    return (cache.CachedDetail(body, cache.etag_of(body), rows.product["published"]),
            rows.next_price_change)


def _sku_view(sku: asyncpg.Record, promotion: Promotion | None,
              staff: bool) -> dict[str, Any]:
    shown = promotion if promotion is not None and promotion.price < sku["price"] else None
    view = {"id": sku["id"], "price": sku["price"], "member_price": sku["member_price"],
            "promotion": None if shown is None else {
                "price": shown.price, "ends_at": shown.ends_at.isoformat(),
                "price_list_id": shown.price_list_id},
            "available": sku["available"], "attributes": orjson.loads(sku["attributes"])}
    if staff:  # never in the cached public body
        view["stock"], view["sold"] = sku["stock"], sku["sold"]
    return view


def detail_view(rows: ProductRows, staff: bool = False) -> dict[str, Any]:
    """The public detail; `staff=True` adds each SKU's stock and sold (staff routes only)."""
    product, path, promotions = rows.product, rows.path, rows.promotions
    return {
        "id": product["id"], "name": product["name"], "description": product["description"],
        "category": ({"id": product["category_id"], "path": path}
                     if product["category_id"] is not None else None),
        "tags": list(product["tags"]), "image_urls": list(product["image_urls"]),
        "published": product["published"], "price_from": product["min_price"],
        "currency": "CNY",
        "skus": [_sku_view(s, promotions.get(s["id"]), staff) for s in rows.skus],
        "created_at": product["created_at"].isoformat(),
        "updated_at": product["updated_at"].isoformat(),
    }


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


async def product_detail(app: web.Application, product_id: int) -> cache.CachedDetail | None:
    redis, keys = app[REDIS], app[CATALOG_KEYS]
    found = await cache.lookup(redis, keys, product_id)
    if found.entry is not None:
        return found.entry
    detail, next_price_change = await load_detail(app[PG], product_id)
    ttl_s = app[SETTINGS].product_cache_ttl_s
    if next_price_change is not None:
        ttl_s = min(ttl_s, math.floor(next_price_change.timestamp() - time.time()
                                      - PRICE_CHANGE_MARGIN_S))
    if detail is not None and ttl_s >= 1:
        await cache.store(redis, keys, product_id, found.generation, detail, ttl_s)
    return detail


@api_doc(
    summary="A product with its SKUs, available units and category path", tag="catalog",
    responses={200: "{id, name, description, category: {id, path: [{id, name}]}, tags, "
                    "image_urls, published, price_from, currency, skus: [{id, price, "
                    "member_price, promotion: {price, ends_at, price_list_id} | null, "
                    "available, attributes}], created_at, updated_at}; price is the list "
                    "price, promotion the price list in effect now; ETag header",
               304: "not modified (If-None-Match matched the ETag)"},
    errors={401: "unauthorized (a token was sent and is not valid)",
            404: "not_found (also for unpublished products, except for staff)"},
)
async def get_product(request: web.Request) -> web.Response:
    product_id = path_id(request, "product_id", "product")
    is_staff = caller_is_staff(request)
    detail = await product_detail(request.app, product_id)
    if detail is None or (not detail.published and not is_staff):
        raise not_found("product")
    record(request.app, "view", user_id=caller_id(request), product_id=product_id)
    headers = {"ETag": detail.etag, "Cache-Control": "no-cache"}
    if _matches(request.headers.get("If-None-Match"), detail.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=detail.body, content_type="application/json", headers=headers)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/products/{product_id}", get_product)
