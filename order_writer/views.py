"""Reading orders: the owner's (or staff's) view of one order, and the caller's order list.

PostgreSQL is the truth once the writer has persisted an order; before that, the order is
answered from its queued view in Redis, which admit.lua wrote atomically with the stock.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
import orjson
from aiohttp import web

from mall.auth import Principal
from mall.crypto import data_cipher, open_order_address
from mall.errors import invalid, json_response, not_found
from mall.openapi import api_doc
from mall.params import path_key
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER
from order_writer.lines import LINE_JOINS, LINE_JSON, name_lines

SELECT_ORDER = f"""
SELECT o.order_id, o.user_id, o.sale_id, o.status, o.total, o.currency, o.created_at,
       o.paid_at, o.carrier, o.tracking_number, o.shipped_at, o.delivered_at,
       o.shipping_fee, o.discount, o.coupon_ids, o.points_used, o.address,
       coalesce(json_agg({LINE_JSON} ORDER BY i.sku_id) FILTER (WHERE i.order_id IS NOT NULL),
                '[]') AS items
FROM orders o LEFT JOIN order_items i USING (order_id)
{LINE_JOINS}
WHERE o.order_id = $1
GROUP BY o.order_id
"""
LIST_ORDERS = f"""
SELECT o.order_id, o.user_id, o.sale_id, o.status, o.total, o.currency, o.created_at,
       o.paid_at, o.carrier, o.tracking_number, o.shipped_at, o.delivered_at,
       o.shipping_fee, o.discount, o.coupon_ids, o.points_used,
       coalesce(json_agg({LINE_JSON} ORDER BY i.sku_id) FILTER (WHERE i.order_id IS NOT NULL),
                '[]') AS items
FROM orders o LEFT JOIN order_items i USING (order_id)
{LINE_JOINS}
WHERE o.user_id = $1 AND ($2::timestamptz IS NULL OR (o.created_at, o.order_id) < ($2, $3))
GROUP BY o.order_id
ORDER BY o.created_at DESC, o.order_id DESC
LIMIT $4
"""
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Cursor(msgspec.Struct, array_like=True):
    created_at: datetime
    order_id: Annotated[str, msgspec.Meta(max_length=80)]


def _row_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "user_id": row["user_id"],
        "status": row["status"],
        "sale_id": row["sale_id"],
        "items": orjson.loads(row["items"]),
        "total": row["total"],
        "shipping_fee": row["shipping_fee"],
        "discount": row["discount"],
        "coupon_ids": list(row["coupon_ids"]),
        "points_used": row["points_used"],
        "currency": row["currency"],
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
        "paid_at": _iso(row["paid_at"]),
        "shipment": None if row["shipped_at"] is None else {
            "carrier": row["carrier"], "tracking_number": row["tracking_number"],
            "shipped_at": _iso(row["shipped_at"]), "delivered_at": _iso(row["delivered_at"]),
        },
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _queued_view(order: dict[str, Any]) -> dict[str, Any]:
    created = datetime.fromtimestamp(order["accepted_at_ms"] / 1000, tz=UTC)
    return {
        "order_id": order["order_id"],
        "user_id": order["user_id"],
        "status": "queued",
        "sale_id": order["sale_id"],
        "items": order.get("items")
        or [{"sku_id": order["sku_id"], "qty": order["qty"], "price": order["price"]}],
        "total": order["total"],
        "shipping_fee": order.get("shipping_fee", 0),
        "discount": order.get("discount", 0),
        "coupon_ids": order.get("coupon_ids", []),
        "points_used": order.get("points_used", 0),
        "currency": "CNY",
        "created_at": created.isoformat(),
        "paid_at": None,
        "shipment": None,
    }


def _with_address(request: web.Request, view: dict[str, Any],
                  carried: dict[str, Any] | str | None) -> dict[str, Any]:
    """The view with the order's shipping address, opened (it travels and rests sealed)."""
    if isinstance(carried, str):  # jsonb as asyncpg returns it
        carried = orjson.loads(carried)
    view["address"] = open_order_address(data_cipher(request.app[SETTINGS]), view["order_id"],
                                         carried)
    return view


def _may_read(principal: Principal, owner: str) -> bool:
    return principal.is_staff or principal.user_id == owner


@api_doc(
    summary="One order, for its owner or staff", tag="orders",
    roles=("customer", "member", "staff", "admin"),
    responses={200: "{order_id, user_id, status, sale_id, items: [{sku_id, qty, price, "
                    "product_id, product_name, attributes}], total, shipping_fee, discount, "
                    "coupon_ids, points_used, currency, created_at, paid_at,"
                    " shipment: {carrier, tracking_number, shipped_at, delivered_at} | null,"
                    " address: {recipient, phone, province, city, district, line, postal_code}"
                    " | null}"},
    errors={401: "unauthorized", 404: "not_found"},
)
async def get_order(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = path_key(request, "order_id", "order")
    if len(order_id) > 80:
        raise not_found("order")
    row = await app[PG].fetchrow(SELECT_ORDER, order_id)
    if row is not None:
        if not _may_read(principal, row["user_id"]):
            raise not_found("order")
        return json_response(_with_address(request, _row_view(row), row["address"]))
    view_key = app[KEYS].order_view_of(order_id)
    if view_key is not None:
        raw = await app[REDIS].get(view_key)
        if raw is not None:
            order = orjson.loads(raw)
            if _may_read(principal, order["user_id"]):
                # The writer may have committed between the two reads: ask PostgreSQL again.
                row = await app[PG].fetchrow(SELECT_ORDER, order_id)
                if row is not None:
                    return json_response(_with_address(request, _row_view(row), row["address"]))
                view = _queued_view(order)
                view["items"] = await name_lines(app[PG], view["items"])
                return json_response(_with_address(request, view, order.get("address")))
    raise not_found("order")


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 \
            or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def encode_cursor(created_at: datetime, order_id: str) -> str:
    raw = msgspec.json.encode(Cursor(created_at, order_id))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = msgspec.json.decode(raw, type=Cursor)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise invalid("cursor is not valid") from None
    if cursor.created_at.tzinfo is None:
        raise invalid("cursor is not valid")
    return cursor


@api_doc(
    summary="The caller's orders, newest first", tag="orders",
    roles=("customer", "member", "staff", "admin"),
    query={"limit": "1-100, default 20", "cursor": "next_cursor of the previous page"},
    responses={200: "{items: [order], next_cursor}"},
    errors={401: "unauthorized", 422: "invalid_request"},
)
async def list_orders(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    limit = _parse_limit(request.query.get("limit"))
    token = request.query.get("cursor")
    cursor = decode_cursor(token) if token else None
    rows = await app[PG].fetch(
        LIST_ORDERS,
        principal.user_id,
        cursor.created_at if cursor else None,
        cursor.order_id if cursor else "",
        limit + 1,
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last["created_at"], last["order_id"])
    return json_response({"items": [_row_view(r) for r in page], "next_cursor": next_cursor})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/orders", list_orders)
    app.router.add_get("/api/v1/orders/{order_id}", get_order)
