"""Customer routes on their own orders: cancel, confirm receipt, history, after-sales.

Someone else's order answers 404, never 403, so order ids cannot be probed. Staff may read any
order's history; changing an order here is for its owner only.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiohttp import web

from mall.crypto import data_cipher
from mall.errors import ApiError, decode_body, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_key, query_id_cursor, query_limit
from mall.ports import ADDRESS_BOOK
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER
from order_writer import address, aftersales, history
from order_writer.lifecycle import (
    MAX_ORDER_ID,
    REFUNDER,
    cancel_order,
    lock_order,
    settle,
    transition,
)

CUSTOMER_ROLES = ("customer", "member", "staff", "admin")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
AFTER_SALES_VIEW = ("{id, order_id, type, reason, photo_urls, status, note (the staff's),"
                    " decided_at, created_at}")
OWNER_OF_ORDER = "SELECT user_id FROM orders WHERE order_id = $1"
ORDER_STATE = "SELECT status FROM orders WHERE order_id = $1"


async def _order_state(conn: asyncpg.Connection, order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": await conn.fetchval(ORDER_STATE, order_id)}


async def _check_reader(conn: asyncpg.Connection, order_id: str, user_id: str,
                        staff_too: bool) -> None:
    """404 unless the order exists and is the caller's (or the caller is staff, when allowed):
    someone else's order looks the same as no order."""
    if len(order_id) > MAX_ORDER_ID:
        raise not_found("order")
    owner = await conn.fetchval(OWNER_OF_ORDER, order_id)
    if owner is None or not (staff_too or owner == user_id):
        raise not_found("order")


@api_doc(
    summary="Cancel an unpaid or paid (not yet shipped) order", tag="orders",
    roles=CUSTOMER_ROLES,
    responses={200: "{order_id, status: cancelled, stock_returned, refund: {id, amount, status}"
                    " | null}"},
    errors={401: "unauthorized", 404: "not_found", 409: "illegal_transition"},
)
async def post_cancel(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    async with app[PG].acquire() as conn, conn.transaction():
        result = await cancel_order(conn, order_id, principal.user_id, "customer_cancelled",
                                    owner=principal.user_id)
    await settle(app[REFUNDER], [result.refund])
    refund = result.refund
    return json_response({
        "order_id": order_id, "status": "cancelled", "previous_status": result.from_status,
        "stock_returned": result.stock_returned,
        "refund": {"id": refund.refund_id, "amount": refund.amount} if refund else None,
    })


@api_doc(
    summary="Confirm receipt of a shipped or delivered order (completes it)", tag="orders",
    roles=CUSTOMER_ROLES, responses={200: "{order_id, status: completed}"},
    errors={401: "unauthorized", 404: "not_found", 409: "illegal_transition"},
)
async def post_confirm_receipt(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    async with app[PG].acquire() as conn, conn.transaction():
        await lock_order(conn, order_id, owner=principal.user_id)
        await transition(conn, order_id, "completed", principal.user_id, "receipt_confirmed")
        body = await _order_state(conn, order_id)
    return json_response(body)


@api_doc(
    summary="Every step of an order, oldest first (owner or staff)", tag="orders",
    roles=CUSTOMER_ROLES,
    responses={200: "{order_id, status, items: [{at, actor, from_status, to_status, reason,"
                    " details}]}"},
    errors={401: "unauthorized", 404: "not_found"},
)
async def get_history(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    async with app[PG].acquire() as conn:
        await _check_reader(conn, order_id, principal.user_id, staff_too=principal.is_staff)
        state = await _order_state(conn, order_id)
        steps = await history.read(conn, order_id)
    return json_response({**state, "items": steps})


@api_doc(
    summary="Ask for a return, exchange or refund of a delivered or completed order",
    tag="orders", request=aftersales.AfterSalesBody, idempotent=True, roles=CUSTOMER_ROLES,
    responses={201: "the request: {id, order_id, type, reason, photo_urls, status: requested,"
                    " ...}"},
    errors={401: "unauthorized", 404: "not_found",
            409: "after_sales_not_allowed, after_sales_open, idempotency_in_progress",
            422: "invalid_request, idempotency_key_reused"},
)
async def post_after_sales(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    raw = await request.read()
    body = decode_body(raw, aftersales.AfterSalesBody)
    body.check()
    async def run() -> web.Response:
        async with app[PG].acquire() as conn, conn.transaction():
            created = await aftersales.open_request(conn, order_id, principal.user_id, body)
        return json_response(created, status=201)

    return await idempotent(request, f"after-sales:{order_id}", principal.user_id, raw, run)


async def _queued_for(app: web.Application, order_id: str, user_id: str) -> bool:
    """Whether the order is the user's and still queued (accepted, not yet persisted)."""
    view_key = app[KEYS].order_view_of(order_id)
    raw = await app[REDIS].get(view_key) if view_key is not None else None
    return raw is not None and orjson.loads(raw).get("user_id") == user_id


@api_doc(
    summary="Set or change the shipping address of one's order before it ships", tag="orders",
    request=address.OrderAddressBody, roles=CUSTOMER_ROLES,
    responses={200: "{order_id, status, address: {recipient, phone, province, city, district,"
                    " line, postal_code}}"},
    errors={401: "unauthorized", 404: "not_found",
            409: "address_not_changeable (shipped, or no longer pending_payment or paid),"
                 " order_not_persisted (still queued: retry shortly)",
            422: "invalid_request (neither or both of address_id and address, an address_id"
                 " that is not the caller's, a malformed address)"},
)
async def put_address(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    body = decode_body(await request.read(), address.OrderAddressBody)
    chosen = await address.choose(app.get(ADDRESS_BOOK), principal.user_id, body)
    try:
        async with app[PG].acquire() as conn, conn.transaction():
            status = await address.set_address(conn, data_cipher(app[SETTINGS]), order_id,
                                               principal.user_id, chosen, body.address_id)
    except ApiError as err:
        if err.status == 404 and await _queued_for(app, order_id, principal.user_id):
            raise ApiError(409, "order_not_persisted",
                           "the order is still being recorded; try again in a moment") from None
        raise
    return json_response({"order_id": order_id, "status": status, "address": chosen})


@api_doc(
    summary="The caller's after-sales requests on one of their orders, newest first",
    tag="orders", roles=CUSTOMER_ROLES,
    responses={200: f"{{order_id, items: [{AFTER_SALES_VIEW}]}}"},
    errors={401: "unauthorized", 404: "not_found"},
)
async def get_order_after_sales(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    async with app[PG].acquire() as conn:
        await _check_reader(conn, order_id, principal.user_id, staff_too=False)
        rows = await aftersales.requests_of_order(conn, order_id, principal.user_id)
    return json_response({"order_id": order_id,
                          "items": [aftersales.customer_view(r) for r in rows]})


@api_doc(
    summary="The caller's after-sales requests on all their orders, newest first", tag="orders",
    roles=CUSTOMER_ROLES,
    query={"limit": "1-100, default 20", "cursor": "next_cursor of the previous page"},
    responses={200: f"{{items: [{AFTER_SALES_VIEW}], next_cursor}}"},
    errors={401: "unauthorized", 422: "invalid_request"},
)
async def get_my_after_sales(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    limit = query_limit(request.query.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    cursor = query_id_cursor(request.query.get("cursor"))
    rows = await aftersales.requests_of_user(app[PG], principal.user_id, cursor, limit + 1)
    page = rows[:limit]
    next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
    return json_response({"items": [aftersales.customer_view(r) for r in page],
                          "next_cursor": next_cursor})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/orders/{order_id}/cancel", post_cancel)
    app.router.add_post("/api/v1/orders/{order_id}/confirm-receipt", post_confirm_receipt)
    app.router.add_get("/api/v1/orders/{order_id}/history", get_history)
    app.router.add_post("/api/v1/orders/{order_id}/after-sales", post_after_sales)
    app.router.add_get("/api/v1/orders/{order_id}/after-sales", get_order_after_sales)
    app.router.add_put("/api/v1/orders/{order_id}/address", put_address)
    app.router.add_get("/api/v1/me/after-sales", get_my_after_sales)
