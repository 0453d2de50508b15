"""Staff routes: shipping, order search and CSV export, after-sales decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from aiohttp import web

from mall.auth import Principal, require_staff
from mall.csv_export import stream_query
from mall.errors import ApiError, decode_body, invalid, json_response
from mall.openapi import api_doc
from mall.params import path_id, path_key, query_limit, query_timestamp
from mall.resources import PG, VERIFIER
from order_writer import aftersales
from order_writer.lifecycle import REFUNDER, STATUSES, lock_order, settle, transition
from order_writer.lines import lines_of_orders
from order_writer.views import decode_cursor, encode_cursor

STAFF_ROLES = ("staff", "admin")
STAFF_ERRORS = {401: "unauthorized", 403: "forbidden"}
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
EXPORT_MAX_ROWS = 100_000
FILTER_DOCS = {
    "status": "one order status", "user_id": "the buyer", "sale_id": "a flash sale id",
    "created_from": "ISO 8601 with offset, inclusive", "created_to": "ISO 8601, exclusive",
}

ORDER_COLUMNS = ("order_id", "user_id", "sale_id", "status", "total", "currency", "created_at",
                 "paid_at", "shipped_at", "delivered_at", "closed_at", "carrier",
                 "tracking_number")
ORDER_FILTER = """
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR user_id = $2)
  AND ($3::bigint IS NULL OR sale_id = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::timestamptz IS NULL OR (created_at, order_id) < ($6, $7))
"""
SEARCH_ORDERS = (f"SELECT {', '.join(ORDER_COLUMNS)}, address IS NOT NULL AS has_address"
                 f" FROM orders {ORDER_FILTER}"
                 " ORDER BY created_at DESC, order_id DESC LIMIT $8")
SET_SHIPMENT = "UPDATE orders SET carrier = $2, tracking_number = $3 WHERE order_id = $1"
SHIPMENT_OF = "SELECT status, carrier, tracking_number, shipped_at FROM orders WHERE order_id = $1"
# Pickup orders are handed over, not sent: only they may leave without an address.
ADDRESS_MISSING = """
SELECT address IS NULL AND delivery IS DISTINCT FROM 'pickup' FROM orders WHERE order_id = $1
"""


class ShipBody(msgspec.Struct, forbid_unknown_fields=True):
    carrier: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    tracking_number: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{4,40}$")]

    def check(self) -> None:
        if not self.carrier.strip() or not self.carrier.isprintable():
            raise invalid("carrier must be printable and not blank")


def _staff(request: web.Request) -> Principal:
    return require_staff(request.app[VERIFIER].from_request(request))


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


# -- shipping ----------------------------------------------------------------------------------


@api_doc(
    summary="Ship a paid order", tag="admin", request=ShipBody, roles=STAFF_ROLES,
    responses={200: "{order_id, status: shipped, carrier, tracking_number, shipped_at}"},
    errors={**STAFF_ERRORS, 404: "not_found",
            409: "illegal_transition, address_missing (the buyer has not given one)",
            422: "invalid_request"},
)
async def post_ship(request: web.Request) -> web.Response:
    staff = _staff(request)
    order_id = path_key(request, "order_id", "order")
    body = decode_body(await request.read(), ShipBody)
    body.check()
    async with request.app[PG].acquire() as conn, conn.transaction():
        await _check_address(conn, order_id)
        await transition(conn, order_id, "shipped", staff.user_id, "shipped",
                         {"carrier": body.carrier, "tracking_number": body.tracking_number})
        await conn.execute(SET_SHIPMENT, order_id, body.carrier, body.tracking_number)
        row = await conn.fetchrow(SHIPMENT_OF, order_id)
    return json_response({"order_id": order_id, "status": row["status"], "carrier": row["carrier"],
                          "tracking_number": row["tracking_number"],
                          "shipped_at": _iso(row["shipped_at"])})


async def _check_address(conn: asyncpg.Connection, order_id: str) -> None:
    """409 address_missing for a paid order to be sent without an address. Under the order's
    row lock, as the buyer's address change is, so the two cannot interleave."""
    order = await lock_order(conn, order_id)
    if order["status"] == "paid" and await conn.fetchval(ADDRESS_MISSING, order_id):
        raise ApiError(409, "address_missing", "the order has no shipping address yet",
                       details={"order_id": order_id})


@api_doc(
    summary="Record that a shipped order was delivered", tag="admin", roles=STAFF_ROLES,
    responses={200: "{order_id, status: delivered}"},
    errors={**STAFF_ERRORS, 404: "not_found", 409: "illegal_transition"},
)
async def post_deliver(request: web.Request) -> web.Response:
    staff = _staff(request)
    order_id = path_key(request, "order_id", "order")
    async with request.app[PG].acquire() as conn, conn.transaction():
        await transition(conn, order_id, "delivered", staff.user_id, "delivered")
    return json_response({"order_id": order_id, "status": "delivered"})


# -- search and export -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFilters:
    status: str | None
    user_id: str | None
    sale_id: int | None
    created_from: datetime | None
    created_to: datetime | None

    def args(self) -> list[Any]:
        return [self.status, self.user_id, self.sale_id, self.created_from, self.created_to]


def parse_filters(query: Any) -> OrderFilters:
    status, user_id, sale_id = query.get("status"), query.get("user_id"), query.get("sale_id")
    if status is not None and status not in STATUSES:
        raise invalid(f"status must be one of {', '.join(STATUSES)}")
    if user_id is not None and (not 1 <= len(user_id) <= 64 or "\x00" in user_id):
        raise invalid("user_id must be 1-64 characters, NUL excluded")
    if sale_id is not None and (not (sale_id.isascii() and sale_id.isdigit()) or len(sale_id) > 18):
        raise invalid("sale_id must be a positive integer")
    return OrderFilters(status, user_id, int(sale_id) if sale_id is not None else None,
                        query_timestamp(query.get("created_from"), "created_from"),
                        query_timestamp(query.get("created_to"), "created_to"))


def parse_limit(raw: str | None) -> int:
    return query_limit(raw, DEFAULT_LIMIT, MAX_LIMIT)


def _order_view(row: asyncpg.Record, lines: dict[str, list[dict[str, Any]]]
                ) -> dict[str, Any]:
    view = {name: (_iso(row[name]) if isinstance(row[name], datetime) else row[name])
            for name in ORDER_COLUMNS}
    return {**view, "has_address": row["has_address"], "items": lines.get(row["order_id"], [])}


@api_doc(
    summary="Search orders, newest first (keyset pagination)", tag="admin", roles=STAFF_ROLES,
    query={**FILTER_DOCS, "limit": "1-100, default 20", "cursor": "next_cursor of the last page"},
    responses={200: "{items: [{order_id, user_id (the buyer), sale_id, status, total, currency,"
                    " created_at, paid_at, shipped_at, delivered_at, closed_at, carrier,"
                    " tracking_number, has_address, items: [{sku_id, qty, price, product_id,"
                    " product_name, attributes}]}], next_cursor}"},
    errors={**STAFF_ERRORS, 422: "invalid_request"},
)
async def get_orders(request: web.Request) -> web.Response:
    _staff(request)
    filters = parse_filters(request.query)
    limit = parse_limit(request.query.get("limit"))
    token = request.query.get("cursor")
    cursor = decode_cursor(token) if token else None
    rows = await request.app[PG].fetch(
        SEARCH_ORDERS, *filters.args(), cursor.created_at if cursor else None,
        cursor.order_id if cursor else "", limit + 1)
    page = rows[:limit]
    next_cursor = (encode_cursor(page[-1]["created_at"], page[-1]["order_id"])
                   if len(rows) > limit else None)
    lines = await lines_of_orders(request.app[PG], [r["order_id"] for r in page])
    return json_response({"items": [_order_view(r, lines) for r in page],
                          "next_cursor": next_cursor})


@api_doc(
    summary="Export orders as CSV (same filters as the search; at most 100,000 rows)",
    tag="admin", roles=STAFF_ROLES, query=FILTER_DOCS,
    responses={200: "text/csv, a header row then one row per order, newest first"},
    errors={**STAFF_ERRORS, 422: "invalid_request"},
)
async def get_orders_csv(request: web.Request) -> web.StreamResponse:
    _staff(request)
    filters = parse_filters(request.query)
    return await stream_query(request, request.app[PG], "orders.csv", ORDER_COLUMNS,
                              SEARCH_ORDERS, *filters.args(), None, "", EXPORT_MAX_ROWS)


# -- after-sales -------------------------------------------------------------------------------


def _request_id(request: web.Request) -> int:
    return path_id(request, "request_id", "after-sales request")


@api_doc(
    summary="After-sales requests, newest first", tag="admin", roles=STAFF_ROLES,
    query={"status": "requested, approved or rejected", "limit": "1-100, default 20",
           "cursor": "next_cursor of the last page"},
    responses={200: "{items: [request], next_cursor}"},
    errors={**STAFF_ERRORS, 422: "invalid_request"},
)
async def get_after_sales(request: web.Request) -> web.Response:
    _staff(request)
    status = request.query.get("status")
    if status is not None and status not in aftersales.REQUEST_STATUSES:
        raise invalid(f"status must be one of {', '.join(aftersales.REQUEST_STATUSES)}")
    limit = parse_limit(request.query.get("limit"))
    cursor = request.query.get("cursor")
    if cursor is not None and (not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 18):
        raise invalid("cursor is not valid")
    rows = await aftersales.list_requests(request.app[PG], status,
                                          int(cursor) if cursor else None, limit + 1)
    page = rows[:limit]
    next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
    return json_response({"items": [aftersales.view(r) for r in page],
                          "next_cursor": next_cursor})


async def _decide(request: web.Request, approve: bool) -> web.Response:
    staff = _staff(request)
    request_id = _request_id(request)
    raw = await request.read()
    if approve:  # the note is optional, and so is the body
        note = decode_body(raw, aftersales.ApproveBody).note if raw.strip() else None
    else:
        note = decode_body(raw, aftersales.RejectBody).note
    async with request.app[PG].acquire() as conn, conn.transaction():
        decided, refund = await aftersales.decide(conn, request_id, staff.user_id, approve, note)
    await settle(request.app[REFUNDER], [refund])
    return json_response({**decided, "refund": (
        {"id": refund.refund_id, "amount": refund.amount} if refund else None)})


@api_doc(
    summary="Approve an after-sales request (a return or refund gives money and stock back)",
    tag="admin", request=aftersales.ApproveBody, roles=STAFF_ROLES,
    responses={200: "the request, status approved, and {refund: {id, amount} | null}"},
    errors={**STAFF_ERRORS, 404: "not_found", 409: "after_sales_decided, illegal_transition",
            422: "invalid_request"},
)
async def post_approve(request: web.Request) -> web.Response:
    return await _decide(request, approve=True)


@api_doc(
    summary="Reject an after-sales request", tag="admin", request=aftersales.RejectBody,
    roles=STAFF_ROLES, responses={200: "the request, status rejected, and {refund: null}"},
    errors={**STAFF_ERRORS, 404: "not_found", 409: "after_sales_decided",
            422: "invalid_request"},
)
async def post_reject(request: web.Request) -> web.Response:
    return await _decide(request, approve=False)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/orders", get_orders)
    app.router.add_get("/api/v1/admin/orders/export.csv", get_orders_csv)
    app.router.add_post("/api/v1/admin/orders/{order_id}/ship", post_ship)
    app.router.add_post("/api/v1/admin/orders/{order_id}/deliver", post_deliver)
    app.router.add_get("/api/v1/admin/after-sales", get_after_sales)
    app.router.add_post("/api/v1/admin/after-sales/{request_id}/approve", post_approve)
    app.router.add_post("/api/v1/admin/after-sales/{request_id}/reject", post_reject)
