"""Customer routes on their own orders: cancel, confirm receipt, history, after-sales.

Someone else's order answers 404, never 403, so order ids cannot be probed. Staff may read any
order's history; changing an order here is for its owner only.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from mall.errors import decode_body, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.params import path_key
from mall.resources import PG, VERIFIER
from order_writer import aftersales, history
from order_writer.lifecycle import (
    MAX_ORDER_ID,
    REFUNDER,
    cancel_order,
    lock_order,
    settle,
    transition,
)

CUSTOMER_ROLES = ("customer", "member", "staff", "admin")
OWNER_OF_ORDER = "SELECT user_id FROM orders WHERE order_id = $1"
ORDER_STATE = "SELECT status FROM orders WHERE order_id = $1"


async def _order_state(conn: asyncpg.Connection, order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": await conn.fetchval(ORDER_STATE, order_id)}


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
    if len(order_id) > MAX_ORDER_ID:
        raise not_found("order")
    async with app[PG].acquire() as conn:
        owner = await conn.fetchval(OWNER_OF_ORDER, order_id)
        if owner is None or not (principal.is_staff or owner == principal.user_id):
            raise not_found("order")
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


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/orders/{order_id}/cancel", post_cancel)
    app.router.add_post("/api/v1/orders/{order_id}/confirm-receipt", post_confirm_receipt)
    app.router.add_get("/api/v1/orders/{order_id}/history", get_history)
    app.router.add_post("/api/v1/orders/{order_id}/after-sales", post_after_sales)
