"""Staff routes on products: create (with SKUs), edit, publish and unpublish.

`POST /api/v1/admin/products` with only a name and SKUs of price and stock answers as it always
did; every other field is optional and a product is published unless asked otherwise.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiohttp import web
from msgspec import UNSET

from catalog_api import cache
from catalog_api.changes import Change, record
from catalog_api.http import CATALOG_KEYS, staff
from catalog_api.models import (
    NewProduct,
    ProductEdit,
    clean_attributes,
    clean_image_urls,
    clean_name,
    clean_tags,
)
from mall.errors import decode_body, invalid, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import PG, REDIS, SETTINGS

INSERT_PRODUCT = """
INSERT INTO products (name, description, category_id, tags, image_urls, published)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id
"""
INSERT_SKUS = """
INSERT INTO skus (product_id, price, stock, attributes)
SELECT $1, price, stock, attributes::jsonb
FROM unnest($2::bigint[], $3::bigint[], $4::text[])
    WITH ORDINALITY AS t(price, stock, attributes, n)
ORDER BY n
RETURNING id, price, stock, attributes::text AS attributes
"""
SELECT_PRODUCT_FOR_UPDATE = """
SELECT id, name, description, category_id, tags, image_urls, published
FROM products WHERE id = $1 FOR UPDATE
"""
UPDATE_PRODUCT = """
UPDATE products
SET name = $2, description = $3, category_id = $4, tags = $5, image_urls = $6,
    updated_at = now()
WHERE id = $1
"""
SET_PUBLISHED = "UPDATE products SET published = $2, updated_at = now() WHERE id = $1"
CATEGORY_EXISTS = "SELECT 1 FROM categories WHERE id = $1"
EDITABLE = ("name", "description", "category_id", "tags", "image_urls")


async def _check_category(conn: asyncpg.Connection, category_id: int | None) -> None:
    if category_id is not None and await conn.fetchval(CATEGORY_EXISTS, category_id) is None:
        raise invalid("category_id names no category")


def sku_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "price": row["price"], "stock": row["stock"],
            "attributes": orjson.loads(row["attributes"])}


async def create_product(pool: asyncpg.Pool, product: NewProduct, actor: str) -> dict[str, Any]:
    name = clean_name(product.name)
    tags = clean_tags(product.tags)
    images = clean_image_urls(product.image_urls)
    attributes = [orjson.dumps(clean_attributes(s.attributes)).decode() for s in product.skus]
    async with pool.acquire() as conn, conn.transaction():
        await _check_category(conn, product.category_id)
        product_id = await conn.fetchval(INSERT_PRODUCT, name, product.description,
                                         product.category_id, tags, images, product.published)
        rows = await conn.fetch(INSERT_SKUS, product_id, [s.price for s in product.skus],
                                [s.stock for s in product.skus], attributes)
        skus = [sku_view(r) for r in rows]
        await record(conn, actor, [Change(product_id, "created", None,
                                          {"name": name, "published": product.published})]
                     + [Change(product_id, "sku_added", None, s, sku_id=s["id"]) for s in skus])
    return {"id": product_id, "name": name, "skus": skus,
            "description": product.description, "category_id": product.category_id,
            "tags": tags, "image_urls": images, "published": product.published}


def _edited_values(current: asyncpg.Record, edit: ProductEdit) -> dict[str, Any]:
    new = {f: current[f] for f in EDITABLE}
    new["tags"], new["image_urls"] = list(new["tags"]), list(new["image_urls"])
    if edit.name is not UNSET:
        new["name"] = clean_name(edit.name)
    if edit.description is not UNSET:
        new["description"] = edit.description
    if edit.category_id is not UNSET:
        new["category_id"] = edit.category_id
    if edit.tags is not UNSET:
        new["tags"] = clean_tags(edit.tags)
    if edit.image_urls is not UNSET:
        new["image_urls"] = clean_image_urls(edit.image_urls)
    return new


async def edit_product(pool: asyncpg.Pool, product_id: int, edit: ProductEdit,
                       actor: str) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(SELECT_PRODUCT_FOR_UPDATE, product_id)
        if current is None:
            raise not_found("product")
        new = _edited_values(current, edit)
        old = {f: current[f] if f not in ("tags", "image_urls") else list(current[f])
               for f in EDITABLE}
        changes = [Change(product_id, f, old[f], new[f]) for f in EDITABLE if old[f] != new[f]]
        if changes:
            if new["category_id"] != old["category_id"]:
                await _check_category(conn, new["category_id"])
            await conn.execute(UPDATE_PRODUCT, product_id, *(new[f] for f in EDITABLE))
            await record(conn, actor, changes)
    return {"id": product_id, **new, "published": current["published"]}


async def set_published(pool: asyncpg.Pool, product_id: int, published: bool,
                        actor: str) -> bool:
    """True when the flag changed."""
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(SELECT_PRODUCT_FOR_UPDATE, product_id)
        if current is None:
            raise not_found("product")
        if current["published"] == published:
            return False
        await conn.execute(SET_PUBLISHED, product_id, published)
        await record(conn, actor, [Change(product_id, "published", not published, published)])
    return True


async def _invalidate(request: web.Request, product_id: int) -> None:
    app = request.app
    await cache.invalidate(app[REDIS], app[CATALOG_KEYS], [product_id],
                           app[SETTINGS].product_cache_ttl_s)


STAFF_ERRORS = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                422: "invalid_request"}


@api_doc(
    summary="Create a product with its SKUs", tag="admin", request=NewProduct, idempotent=True,
    roles=("staff", "admin"),
    responses={201: "{id, name, skus: [{id, price, stock, attributes}], description, "
                    "category_id, tags, image_urls, published}"},
    errors={401: "unauthorized", 403: "forbidden", 409: "idempotency_in_progress",
            422: "invalid_request, idempotency_key_reused"},
)
async def post_product(request: web.Request) -> web.Response:
    principal = staff(request)
    body = await request.read()
    product = decode_body(body, NewProduct)
    clean_name(product.name)

    async def run() -> web.Response:
        view = await create_product(request.app[PG], product, principal.user_id)
        return json_response(view, status=201)

    return await idempotent(request, "products", principal.user_id, body, run)


@api_doc(
    summary="Edit a product's name, description, category, tags or images",
    tag="catalog-admin", request=ProductEdit, roles=("staff", "admin"),
    responses={200: "{id, name, description, category_id, tags, image_urls, published}"},
    errors=STAFF_ERRORS,
)
async def patch_product(request: web.Request) -> web.Response:
    principal = staff(request)
    product_id = path_id(request, "product_id", "product")
    edit = decode_body(await request.read(), ProductEdit)
    view = await edit_product(request.app[PG], product_id, edit, principal.user_id)
    await _invalidate(request, product_id)
    return json_response(view)


async def _publish(request: web.Request, published: bool) -> web.Response:
    principal = staff(request)
    product_id = path_id(request, "product_id", "product")
    changed = await set_published(request.app[PG], product_id, published, principal.user_id)
    if changed:
        await _invalidate(request, product_id)
    return json_response({"id": product_id, "published": published, "changed": changed})


@api_doc(summary="Publish a product", tag="catalog-admin", roles=("staff", "admin"),
         responses={200: "{id, published: true, changed}"}, errors=STAFF_ERRORS)
async def post_publish(request: web.Request) -> web.Response:
    return await _publish(request, True)


@api_doc(summary="Unpublish a product (hidden from customers, cannot be bought)",
         tag="catalog-admin", roles=("staff", "admin"),
         responses={200: "{id, published: false, changed}"}, errors=STAFF_ERRORS)
async def post_unpublish(request: web.Request) -> web.Response:
    return await _publish(request, False)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/admin/products", post_product)
    app.router.add_patch("/api/v1/admin/products/{product_id}", patch_product)
    app.router.add_post("/api/v1/admin/products/{product_id}/publish", post_publish)
    app.router.add_post("/api/v1/admin/products/{product_id}/unpublish", post_unpublish)
