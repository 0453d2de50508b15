"""Staff routes on price lists: create, list, read, change before the start, end early."""

from __future__ import annotations

from aiohttp import web

from catalog_api import cache
from catalog_api.http import CATALOG_KEYS
from mall.auth import Principal, require_staff
from mall.errors import decode_body, json_response
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_id, query_id_cursor, query_limit
from mall.resources import PG, REDIS, SETTINGS, VERIFIER
from pricing import store
from pricing.models import MAX_ITEMS, NewPriceList, PriceListEdit

BASE = "/api/v1/admin/price-lists"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
ROLES = ("staff", "admin")
VIEW = ("{id, name, starts_at, ends_at, status: active|ended, state: upcoming|live|ended, "
        "created_by, created_at, ended_at, item_count, items: [{sku_id, product_id, price, "
        "list_price}]}")
ERRORS = {401: "unauthorized", 403: "forbidden", 404: "not_found"}
INPUT_ERRORS = {
    404: "not_found (the price list, or SKUs: details.sku_ids)",
    422: f"invalid_request (1-{MAX_ITEMS} items, a SKU at most once, ends_at after starts_at "
         "and in the future), price_not_lower (an item's price is not below its SKU's price: "
         "details.items)",
}


def _staff(request: web.Request) -> Principal:
    return require_staff(request.app[VERIFIER].from_request(request))


async def _invalidate(request: web.Request, written: store.Written) -> None:
    app = request.app
    await cache.invalidate(app[REDIS], app[CATALOG_KEYS], written.product_ids,
                           app[SETTINGS].product_cache_ttl_s)


def _limit(request: web.Request) -> int:
    return query_limit(request.query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)


def _cursor(request: web.Request) -> int | None:
    return query_id_cursor(request.query.get("cursor"))


@api_doc(
    summary="Create a price list: lower prices of 1-1000 SKUs between starts_at and ends_at",
    tag="pricing", request=NewPriceList, idempotent=True, roles=ROLES,
    responses={201: VIEW},
    errors={**ERRORS, **INPUT_ERRORS, 409: "idempotency_in_progress",
            422: INPUT_ERRORS[422] + ", idempotency_key_reused"},
)
async def post_price_list(request: web.Request) -> web.Response:
    principal = _staff(request)
    body = await request.read()
    new = decode_body(body, NewPriceList)

    async def run() -> web.Response:
        written = await store.create(request.app[PG], new, principal.user_id)
        await _invalidate(request, written)
        return json_response(written.view, status=201)

    return await idempotent(request, "price-lists", principal.user_id, body, run)


@api_doc(
    summary="Price lists, newest first", tag="pricing", roles=ROLES,
    query={"limit": f"1-{MAX_LIMIT} (default {DEFAULT_LIMIT})",
           "cursor": "next_cursor of the previous page"},
    responses={200: "{items: [price list without items], next_cursor}"},
    errors={401: "unauthorized", 403: "forbidden", 422: "invalid_request"},
)
async def get_price_lists(request: web.Request) -> web.Response:
    _staff(request)
    items, next_cursor = await store.page(request.app[PG], _cursor(request), _limit(request))
    return json_response({"items": items, "next_cursor": next_cursor})


@api_doc(summary="A price list with its items", tag="pricing", roles=ROLES,
         responses={200: VIEW}, errors=ERRORS)
async def get_price_list(request: web.Request) -> web.Response:
    _staff(request)
    list_id = path_id(request, "list_id", "price list")
    return json_response(await store.get(request.app[PG], list_id))


@api_doc(
    summary="Change a price list's name, times or items (items replace all) before it starts",
    tag="pricing", request=PriceListEdit, roles=ROLES, responses={200: VIEW},
    errors={**ERRORS, **INPUT_ERRORS,
            409: "price_list_started (it has started: end it instead), price_list_ended"},
)
async def patch_price_list(request: web.Request) -> web.Response:
    _staff(request)
    list_id = path_id(request, "list_id", "price list")
    change = decode_body(await request.read(), PriceListEdit)
    written = await store.edit(request.app[PG], list_id, change)
    await _invalidate(request, written)
    return json_response(written.view)


@api_doc(
    summary="End a price list now (an upcoming one never starts); ending twice changes nothing",
    tag="pricing", roles=ROLES, responses={200: VIEW + " and changed"}, errors=ERRORS,
)
async def post_end(request: web.Request) -> web.Response:
    _staff(request)
    list_id = path_id(request, "list_id", "price list")
    written, changed = await store.end(request.app[PG], list_id)
    await _invalidate(request, written)
    return json_response({**written.view, "changed": changed})


def setup_routes(app: web.Application) -> None:
    app.router.add_post(BASE, post_price_list)
    app.router.add_get(BASE, get_price_lists)
    app.router.add_get(BASE + "/{list_id}", get_price_list)
    app.router.add_patch(BASE + "/{list_id}", patch_price_list)
    app.router.add_post(BASE + "/{list_id}/end", post_end)
