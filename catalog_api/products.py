"""The minimal catalog the flash-sale core needs: staff create products with SKUs."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import msgspec
from aiohttp import web

from mall.auth import require_staff
from mall.errors import decode_body, invalid, json_response
from mall.idempotency import idempotency_key, replay_or_run
from mall.openapi import api_doc
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER

MAX_PRICE = 10_000_000_000  # fen: 100 million CNY
MAX_STOCK = 100_000_000

Price = Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE)]
Stock = Annotated[int, msgspec.Meta(ge=0, le=MAX_STOCK)]


class NewSku(msgspec.Struct, forbid_unknown_fields=True):
    price: Price
    stock: Stock


class NewProduct(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    skus: Annotated[list[NewSku], msgspec.Meta(min_length=1, max_length=100)]


INSERT_PRODUCT = "INSERT INTO products (name) VALUES ($1) RETURNING id"
INSERT_SKUS = """
INSERT INTO skus (product_id, price, stock)
SELECT $1, price, stock
FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS t(price, stock, n)
ORDER BY n
RETURNING id, price, stock
"""


async def create_product(pool: asyncpg.Pool, product: NewProduct) -> dict[str, object]:
    async with pool.acquire() as conn, conn.transaction():
        product_id = await conn.fetchval(INSERT_PRODUCT, product.name.strip() or product.name)
        prices = [s.price for s in product.skus]
        stocks = [s.stock for s in product.skus]
        rows = await conn.fetch(INSERT_SKUS, product_id, prices, stocks)
    return {
        "id": product_id,
        "name": product.name,
        "skus": [{"id": r["id"], "price": r["price"], "stock": r["stock"]} for r in rows],
    }


@api_doc(
    summary="Create a product with its SKUs", tag="admin", request=NewProduct, idempotent=True,
    roles=("staff", "admin"), responses={201: "{id, name, skus: [{id, price, stock}]}"},
    errors={401: "unauthorized", 403: "forbidden", 409: "idempotency_in_progress",
            422: "invalid_request, idempotency_key_reused"},
)
async def post_product(request: web.Request) -> web.Response:
    app = request.app
    principal = require_staff(app[VERIFIER].from_request(request))
    body = await request.read()
    product = decode_body(body, NewProduct)
    if not product.name.strip():
        raise invalid("name must not be blank")
    key = idempotency_key(request)
    record = app[KEYS].idempotency_record("products", principal.user_id, key) if key else None

    async def run() -> web.Response:
        return json_response(await create_product(app[PG], product), status=201)

    return await replay_or_run(app[REDIS], record, body, app[SETTINGS].order_view_ttl_s, run)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/admin/products", post_product)
