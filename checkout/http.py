"""HTTP routes of the cart. A cart is always the caller's own: no route takes a user id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from aiohttp import web

from analytics.events import record
from checkout.cart import MAX_LINE_QTY, CartService
from checkout.catalog import catalog_lookup
from checkout.keys import CheckoutKeys
from checkout.promotions import is_member
from checkout.service import CheckoutRequest, CheckoutService
from mall.auth import Principal
from mall.crypto import data_cipher
from mall.errors import decode_body, json_response
from mall.idempotency import idempotency_key
from mall.openapi import api_doc
from mall.params import path_id
from mall.ports import ADDRESS_BOOK
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER

CART = web.AppKey("cart", CartService)
CHECKOUT = web.AppKey("checkout", CheckoutService)
Qty = Annotated[int, msgspec.Meta(ge=1, le=MAX_LINE_QTY)]
SkuId = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
ALL_ROLES = ("customer", "member", "staff", "admin")
CART_ANSWER = "{items: [{sku_id, product_id, name, attributes, qty, unit_price, list_price, " \
              "line_total, available, purchasable, problem?}], total, currency}"


class AddItem(msgspec.Struct, forbid_unknown_fields=True):
    sku_id: SkuId
    qty: Qty = 1


class SetQuantity(msgspec.Struct, forbid_unknown_fields=True):
    qty: Qty


def _sku_id(request: web.Request) -> int:
    return path_id(request, "sku_id", "SKU")


async def _answer(request: web.Request, principal: Principal) -> web.Response:
    member = await is_member(request.app[PG], principal.user_id, principal.role)
    return json_response(await request.app[CART].view(principal.user_id, member))


@api_doc(summary="The caller's cart with current prices and line totals", tag="cart",
         roles=ALL_ROLES, responses={200: CART_ANSWER}, errors={401: "unauthorized"})
async def get_cart(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    return await _answer(request, principal)


@api_doc(summary="Add units of a SKU to the cart", tag="cart", request=AddItem,
         roles=ALL_ROLES, responses={200: CART_ANSWER},
         errors={401: "unauthorized", 404: "not_found (unknown or unpublished SKU)",
                 409: "insufficient_stock, cart_full", 422: "invalid_request"})
async def post_item(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    body = decode_body(await request.read(), AddItem)
    await request.app[CART].set_quantity(principal.user_id, body.sku_id, body.qty, "add")
    record(request.app, "cart", user_id=principal.user_id, sku_id=body.sku_id)
    return await _answer(request, principal)


@api_doc(summary="Set the quantity of a SKU in the cart", tag="cart", request=SetQuantity,
         roles=ALL_ROLES, responses={200: CART_ANSWER},
         errors={401: "unauthorized", 404: "not_found (unknown or unpublished SKU)",
                 409: "insufficient_stock, cart_full", 422: "invalid_request"})
async def put_item(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    sku_id = _sku_id(request)
    body = decode_body(await request.read(), SetQuantity)
    await request.app[CART].set_quantity(principal.user_id, sku_id, body.qty, "set")
    return await _answer(request, principal)


@api_doc(summary="Remove a SKU from the cart", tag="cart", roles=ALL_ROLES,
         responses={200: CART_ANSWER}, errors={401: "unauthorized", 404: "not_found"})
async def delete_item(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    await request.app[CART].remove(principal.user_id, _sku_id(request))
    return await _answer(request, principal)


@api_doc(summary="Empty the cart", tag="cart", roles=ALL_ROLES,
         responses={204: "emptied"}, errors={401: "unauthorized"})
async def delete_cart(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    await request.app[CART].clear(principal.user_id)
    return web.Response(status=204)


@api_doc(summary="Check out the cart or an explicit item list", tag="checkout",
         request=CheckoutRequest, idempotent=True, roles=ALL_ROLES,
         responses={202: "accepted: {order_id, status: queued, total, shipping_fee, discount, "
                         "points_used}"},
         errors={401: "unauthorized", 404: "not_found (address)",
                 409: "not_available, insufficient_stock, coupon_used, points_insufficient",
                 422: "invalid_request, cart_empty, coupon_invalid, coupon_not_applicable, "
                      "coupons_not_stackable, points_invalid, idempotency_key_reused"})
async def post_checkout(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    body = decode_body(await request.read(), CheckoutRequest)
    answer = await request.app[CHECKOUT].place(principal.user_id, principal.role, body,
                                               idempotency_key(request))
    return json_response(answer, status=202)


async def checkout_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cart = CartService(app[REDIS], CheckoutKeys(settings.namespace), catalog_lookup(app[PG]))
    app[CART] = cart
    service = CheckoutService(app[PG], app[REDIS], app[KEYS], cart, app.get(ADDRESS_BOOK),
                              settings.order_view_ttl_s, cipher=data_cipher(settings))
    await service.prepare()
    app[CHECKOUT] = service
    yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(checkout_ctx)
    app.router.add_post("/api/v1/checkout", post_checkout)
    app.router.add_get("/api/v1/cart", get_cart)
    app.router.add_delete("/api/v1/cart", delete_cart)
    app.router.add_post("/api/v1/cart/items", post_item)
    app.router.add_put("/api/v1/cart/items/{sku_id}", put_item)
    app.router.add_delete("/api/v1/cart/items/{sku_id}", delete_item)
