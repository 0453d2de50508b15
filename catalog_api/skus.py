"""Staff routes on SKUs: add one to a product, change its price, member price or regular-sale
stock. A member price is at most the SKU's price.

Lock order: a SKU row before its product row (the min-price trigger on `skus` takes the
product row after the SKU, so every catalog write follows that order too).
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
from catalog_api.models import AddedSku, SkuEdit, clean_attributes
from catalog_api.products import sku_view
from mall.errors import ApiError, decode_body, invalid, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import KEYS, PG, REDIS, SETTINGS
from mall.stock_mirror import StockMirror

PRODUCT_EXISTS = "SELECT 1 FROM products WHERE id = $1"
INSERT_SKU = """
INSERT INTO skus (product_id, price, stock, attributes, member_price)
VALUES ($1, $2, $3, $4::jsonb, $5)
RETURNING id, price, stock, member_price, attributes::text AS attributes
"""
SELECT_SKU_FOR_UPDATE = """
SELECT id, product_id, price, stock, sold, member_price, attributes::text AS attributes
FROM skus WHERE id = $1 FOR UPDATE
"""
UPDATE_SKU = """
UPDATE skus SET price = $2, stock = $3, member_price = $4 WHERE id = $1
RETURNING id, product_id, price, stock, sold, member_price, attributes::text AS attributes
"""
EDITABLE = ("price", "stock", "member_price")
TOUCH_PRODUCT = "UPDATE products SET updated_at = now() WHERE id = $1"


def _member_price_above(price: int, member_price: int | None) -> bool:
    return member_price is not None and member_price > price


async def add_sku(pool: asyncpg.Pool, product_id: int, sku: AddedSku,
                  actor: str) -> dict[str, Any]:
    attributes = orjson.dumps(clean_attributes(sku.attributes)).decode()
    if _member_price_above(sku.price, sku.member_price):
        raise invalid("member_price must not exceed price")
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(PRODUCT_EXISTS, product_id) is None:
            raise not_found("product")
        row = await conn.fetchrow(INSERT_SKU, product_id, sku.price, sku.stock, attributes,
                                  sku.member_price)
        view = {**sku_view(row), "member_price": row["member_price"]}
        await conn.execute(TOUCH_PRODUCT, product_id)
        await record(conn, actor, [Change(product_id, "sku_added", None, view,
                                          sku_id=view["id"])])
    return {"product_id": product_id, **view}


async def edit_sku(pool: asyncpg.Pool, sku_id: int, edit: SkuEdit, actor: str,
                   mirror: StockMirror) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(SELECT_SKU_FOR_UPDATE, sku_id)
        if current is None:
            raise not_found("SKU")
        new = _edited_values(current, edit)
        product_id = current["product_id"]
        changes = [Change(product_id, field, current[field], new[field], sku_id=sku_id)
                   for field in EDITABLE if current[field] != new[field]]
        row = current
        delta = new["stock"] - current["stock"]
        if changes:
            # Under the row lock: units taken away leave Redis first (refused if orders in
            # flight hold them); units added are held in Redis and become sellable after the
            # commit. Either way Redis never offers more than PostgreSQL will accept.
            taken = delta < 0 and await mirror.take(sku_id, -delta)
            if delta > 0:
                await mirror.hold(sku_id, delta)
            try:
                row = await conn.fetchrow(UPDATE_SKU, sku_id, *(new[f] for f in EDITABLE))
                await conn.execute(TOUCH_PRODUCT, product_id)
                await record(conn, actor, changes)
            except BaseException:
                if taken:
                    await mirror.untake(sku_id, -delta)
                if delta > 0:
                    await mirror.drop(sku_id, delta)
                raise
    if changes and delta > 0:
        await mirror.apply(sku_id, delta)
    return {**sku_view(row), "product_id": product_id, "sold": row["sold"],
            "available": row["stock"] - row["sold"], "member_price": row["member_price"]}


def _edited_values(current: asyncpg.Record, edit: SkuEdit) -> dict[str, Any]:
    new = {f: current[f] if getattr(edit, f) is UNSET else getattr(edit, f) for f in EDITABLE}
    if new["stock"] < current["sold"]:
        raise ApiError(409, "stock_below_sold",
                       f"{current['sold']} units are already sold; stock cannot be lower",
                       details={"sold": current["sold"]})
    if _member_price_above(new["price"], new["member_price"]):
        if edit.member_price is not UNSET:
            raise invalid("member_price must not exceed price")
        raise ApiError(409, "member_price_above_price",
                       f"the member price {new['member_price']} would exceed the price; "
                       "lower or clear member_price in the same request",
                       details={"member_price": new["member_price"]})
    return new


async def _invalidate(request: web.Request, product_id: int) -> None:
    app = request.app
    await cache.invalidate(app[REDIS], app[CATALOG_KEYS], [product_id],
                           app[SETTINGS].product_cache_ttl_s)


@api_doc(
    summary="Add a SKU to a product", tag="catalog-admin", request=AddedSku, idempotent=True,
    roles=("staff", "admin"),
    responses={201: "{id, product_id, price, stock, member_price, attributes}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "idempotency_in_progress", 422: "invalid_request, idempotency_key_reused"},
)
async def post_sku(request: web.Request) -> web.Response:
    principal = staff(request)
    product_id = path_id(request, "product_id", "product")
    body = await request.read()
    sku = decode_body(body, AddedSku)

    async def run() -> web.Response:
        view = await add_sku(request.app[PG], product_id, sku, principal.user_id)
        await _invalidate(request, product_id)
        return json_response(view, status=201)

    return await idempotent(request, f"skus:{product_id}", principal.user_id, body, run)


@api_doc(
    summary="Change a SKU's price, member price (null removes it) and/or its units allotted "
            "to regular sale",
    tag="catalog-admin", request=SkuEdit, roles=("staff", "admin"),
    responses={200: "{id, product_id, price, stock, sold, available, member_price, "
                    "attributes}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "stock_below_sold, stock_in_flight, member_price_above_price (a lower price "
                 "without a lower member_price)",
            422: "invalid_request (also member_price above price)"},
)
async def patch_sku(request: web.Request) -> web.Response:
    principal = staff(request)
    sku_id = path_id(request, "sku_id", "SKU")
    edit = decode_body(await request.read(), SkuEdit)
    mirror = StockMirror(request.app[REDIS], request.app[KEYS])
    view = await edit_sku(request.app[PG], sku_id, edit, principal.user_id, mirror)
    await _invalidate(request, view["product_id"])
    return json_response(view)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/admin/products/{product_id}/skus", post_sku)
    app.router.add_patch("/api/v1/admin/skus/{sku_id}", patch_sku)
