"""Staff reads of the catalog: every product (unpublished too) with each SKU's stock and sold.

`GET /api/v1/admin/products` lists products newest first in keyset pages by id (the cursor is
the last id), filtered by a case-insensitive substring of the name, the published flag and a
category (with its descendants, as in the public search). `GET /api/v1/admin/products/{id}` is
the public detail plus `stock` and `sold` per SKU, read from PostgreSQL: never from or into
the public detail cache, so customers never see the staff fields.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiohttp import web
from multidict import MultiMapping

from catalog_api.detail import detail_view, read_product
from catalog_api.http import staff
from catalog_api.search import escape_like
from catalog_api.search_params import MAX_Q
from mall.errors import invalid, json_response, not_found
from mall.openapi import api_doc
from mall.params import MAX_ID, path_id, query_id_cursor, query_int, query_limit
from mall.resources import PG

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
QUERY_DOCS = {
    "q": f"part of the name, any case (1-{MAX_Q} characters)",
    "published": "true or false (default: both)",
    "category_id": "this category and its descendants",
    "limit": f"1-{MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "cursor": "next_cursor of the previous page",
}
LIST_PRODUCTS = """
WITH RECURSIVE subtree AS (
    SELECT id FROM categories WHERE id = $3
    UNION
    SELECT c.id FROM categories c JOIN subtree s ON c.parent_id = s.id
)
SELECT p.id, p.name, p.published, p.category_id, p.min_price, p.created_at, p.updated_at
FROM products p
WHERE ($1::text IS NULL OR p.name ILIKE $1)
  AND ($2::boolean IS NULL OR p.published = $2)
  AND ($3::bigint IS NULL OR p.category_id IN (SELECT id FROM subtree))
  AND ($4::bigint IS NULL OR p.id < $4)
ORDER BY p.id DESC
LIMIT $5
"""
LIST_SKUS = """
SELECT id, product_id, price, member_price, stock, sold, stock - sold AS available,
       attributes::text AS attributes
FROM skus WHERE product_id = ANY($1::bigint[])
ORDER BY product_id, id
"""
BOOLEANS = {"true": True, "false": False}
STAFF_ERRORS = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


def _one(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise invalid(f"{name} may be given once")
    return values[0] if values else None


def _name_pattern(raw: str | None) -> str | None:
    """An ILIKE pattern matching names that contain `raw` (spaces collapsed), any case."""
    if raw is None:
        return None
    cleaned = " ".join(raw.split())
    if not cleaned or len(cleaned) > MAX_Q or "\x00" in cleaned:
        raise invalid(f"q must be 1 to {MAX_Q} characters")
    return f"%{escape_like(cleaned)}%"


def _published(raw: str | None) -> bool | None:
    if raw is not None and raw not in BOOLEANS:
        raise invalid("published must be true or false")
    return None if raw is None else BOOLEANS[raw]


def parse_list_query(query: MultiMapping[str]) -> tuple[str | None, bool | None, int | None,
                                                          int | None, int]:
    """(name pattern, published, category_id, cursor, limit); 422 for anything else."""
    unknown = sorted(set(query) - set(QUERY_DOCS))
    if unknown:
        raise invalid(f"unknown parameter: {unknown[0]}")
    return (_name_pattern(_one(query, "q")), _published(_one(query, "published")),
            query_int(_one(query, "category_id"), "category_id", 1, MAX_ID),
            query_id_cursor(_one(query, "cursor")),
            query_limit(_one(query, "limit"), DEFAULT_LIMIT, MAX_LIMIT))


def staff_sku_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "price": row["price"], "member_price": row["member_price"],
            "stock": row["stock"], "sold": row["sold"], "available": row["available"],
            "attributes": orjson.loads(row["attributes"])}


def _item(row: asyncpg.Record, skus: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "published": row["published"],
            "category_id": row["category_id"], "price_from": row["min_price"],
            "currency": "CNY", "skus": skus,
            "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat()}


async def list_products(pool: asyncpg.Pool, pattern: str | None, published: bool | None,
                        category_id: int | None, cursor: int | None,
                        limit: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                         readonly=True):
        rows = await conn.fetch(LIST_PRODUCTS, pattern, published, category_id, cursor,
                                limit + 1)
        page = rows[:limit]
        sku_rows = await conn.fetch(LIST_SKUS, [r["id"] for r in page]) if page else []
    skus: dict[int, list[dict[str, Any]]] = {r["id"]: [] for r in page}
    for sku in sku_rows:
        skus[sku["product_id"]].append(staff_sku_view(sku))
    next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
    return {"items": [_item(r, skus[r["id"]]) for r in page], "next_cursor": next_cursor}


@api_doc(
    summary="Every product, unpublished too, newest first, with each SKU's stock and sold",
    tag="catalog-admin", roles=("staff", "admin"), query=QUERY_DOCS,
    responses={200: "{items: [{id, name, published, category_id, price_from, currency, "
                    "skus: [{id, price, member_price, stock, sold, available, attributes}], "
                    "created_at, updated_at}], next_cursor}"},
    errors={401: "unauthorized", 403: "forbidden",
            422: "invalid_request (bad or unknown query parameter, bad cursor)"},
)
async def get_products(request: web.Request) -> web.Response:
    staff(request)
    pattern, published, category_id, cursor, limit = parse_list_query(request.query)
    return json_response(await list_products(request.app[PG], pattern, published, category_id,
                                             cursor, limit))


@api_doc(
    summary="A product (unpublished too) as staff see it: the detail plus each SKU's stock "
            "and sold, read from the database",
    tag="catalog-admin", roles=("staff", "admin"),
    responses={200: "{id, name, description, category: {id, path: [{id, name}]}, tags, "
                    "image_urls, published, price_from, currency, skus: [{id, price, "
                    "member_price, promotion: {price, ends_at, price_list_id} | null, "
                    "available, stock, sold, attributes}], created_at, updated_at}"},
    errors=STAFF_ERRORS,
)
async def get_product(request: web.Request) -> web.Response:
    staff(request)
    product_id = path_id(request, "product_id", "product")
    rows = await read_product(request.app[PG], product_id)
    if rows is None:
        raise not_found("product")
    return json_response(detail_view(rows, staff=True))


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/products", get_products)
    app.router.add_get("/api/v1/admin/products/{product_id}", get_product)
