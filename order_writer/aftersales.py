"""After-sales requests (return, exchange, refund) on delivered or completed orders.

One open request per order (checked under the order's row lock, backed by a partial unique
index). Approving a return or a refund moves the order to `refunded`, gives its units back and
records the refund due, all in one transaction under the order's lock, so approving twice, even
at the same moment, returns stock and money once. An exchange is recorded without a status change.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import asyncpg
import msgspec

from mall.errors import ApiError, invalid, not_found
from order_writer import history
from order_writer.lifecycle import RefundDue, lock_order, record_refund, transition
from order_writer.stock import record_stock_return

OPEN_ON: frozenset[str] = frozenset({"delivered", "completed"})
REQUEST_STATUSES = ("requested", "approved", "rejected")
MONEY_BACK_TYPES = frozenset({"return", "refund"})
MAX_PHOTOS = 9

Url = Annotated[str, msgspec.Meta(min_length=9, max_length=2048)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class AfterSalesBody(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["return", "exchange", "refund"]
    reason: Note
    photo_urls: Annotated[list[Url], msgspec.Meta(max_length=MAX_PHOTOS)] = []

    def check(self) -> None:
        if not self.reason.strip():
            raise invalid("reason must not be blank")
        for url in self.photo_urls:
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
                raise invalid("photo_urls must be https URLs")


class ApproveBody(msgspec.Struct, forbid_unknown_fields=True):
    note: Note | None = None


class RejectBody(msgspec.Struct, forbid_unknown_fields=True):
    note: Note


COLUMNS = ("id, order_id, user_id, type, reason, photo_urls, status, note, decided_by, "
           "decided_at, created_at")
OPEN_REQUEST_OF_ORDER = (
    "SELECT id FROM after_sales_requests WHERE order_id = $1 AND status = 'requested'"
)
INSERT_REQUEST = f"""
INSERT INTO after_sales_requests (order_id, user_id, type, reason, photo_urls)
VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}
"""
ORDER_OF_REQUEST = "SELECT order_id FROM after_sales_requests WHERE id = $1"
LOCK_REQUEST = f"SELECT {COLUMNS} FROM after_sales_requests WHERE id = $1 FOR UPDATE"
DECIDE_REQUEST = f"""
UPDATE after_sales_requests SET status = $2, note = $3, decided_by = $4, decided_at = now()
WHERE id = $1 RETURNING {COLUMNS}
"""
LIST_REQUESTS = f"""
SELECT {COLUMNS} FROM after_sales_requests
WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""
# The buyer's own requests. Reached through orders_user_newest and after_sales_of_order (no
# index on after_sales_requests.user_id); the user_id test keeps only the buyer's own.
REQUESTS_OF_ORDER = f"""
SELECT {COLUMNS} FROM after_sales_requests WHERE order_id = $1 AND user_id = $2 ORDER BY id DESC
"""
REQUESTS_OF_USER = f"""
SELECT {COLUMNS} FROM after_sales_requests
WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3
"""
# What the buyer sees of a request: not which staff member decided it.
CUSTOMER_FIELDS = ("id", "order_id", "type", "reason", "photo_urls", "status", "note",
                   "decided_at", "created_at")


def view(row: asyncpg.Record) -> dict[str, Any]:
    decided = row["decided_at"]
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "user_id": row["user_id"],
        "type": row["type"],
        "reason": row["reason"],
        "photo_urls": list(row["photo_urls"]),
        "status": row["status"],
        "note": row["note"],
        "decided_by": row["decided_by"],
        "decided_at": decided.astimezone(UTC).isoformat() if decided else None,
        "created_at": row["created_at"].astimezone(UTC).isoformat(),
    }


async def open_request(conn: asyncpg.Connection, order_id: str, user_id: str,
                       body: AfterSalesBody) -> dict[str, Any]:
    order = await lock_order(conn, order_id, owner=user_id)
    status = order["status"]
    if status not in OPEN_ON:
        raise ApiError(409, "after_sales_not_allowed",
                       "after-sales requests are accepted on delivered or completed orders",
                       details={"current_status": status})
    open_id = await conn.fetchval(OPEN_REQUEST_OF_ORDER, order_id)
    if open_id is not None:
        raise ApiError(409, "after_sales_open",
                       "this order already has an open after-sales request",
                       details={"after_sales_id": open_id})
    row = await conn.fetchrow(INSERT_REQUEST, order_id, user_id, body.type, body.reason,
                              body.photo_urls)
    await history.append(conn, order_id, user_id, status, status, "after_sales_requested",
                         {"after_sales_id": row["id"], "type": body.type})
    return view(row)


async def decide(conn: asyncpg.Connection, request_id: int, staff_id: str, approve: bool,
                 note: str | None) -> tuple[dict[str, Any], RefundDue | None]:
    """Approve or reject an open request. Returns its view and the refund now due, if any."""
    order_id = await conn.fetchval(ORDER_OF_REQUEST, request_id)
    if order_id is None:
        raise not_found("after-sales request")
    order = await lock_order(conn, order_id)
    request = await conn.fetchrow(LOCK_REQUEST, request_id)
    if request["status"] != "requested":
        raise ApiError(409, "after_sales_decided", "this request was already decided",
                       details={"status": request["status"]})
    decision = "approved" if approve else "rejected"
    row = await conn.fetchrow(DECIDE_REQUEST, request_id, decision, note, staff_id)
    details = {"after_sales_id": request_id, "type": request["type"], "note": note}
    if not (approve and request["type"] in MONEY_BACK_TYPES):
        await history.append(conn, order_id, staff_id, order["status"], order["status"],
                             f"after_sales_{decision}", details)
        return view(row), None
    amount = order["paid_amount"] if order["paid_amount"] is not None else order["total"]
    await transition(conn, order_id, "refunded", staff_id, "after_sales_approved",
                     {**details, "refund_due": amount})
    await record_stock_return(conn, order_id, f"after_sales_{request['type']}")
    refund, _ = await record_refund(conn, order, f"after_sales:{request_id}", amount)
    return view(row), refund


async def list_requests(pool: asyncpg.Pool, status: str | None, before_id: int | None,
                        limit: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(LIST_REQUESTS, status, before_id, limit))


def customer_view(row: asyncpg.Record) -> dict[str, Any]:
    full = view(row)
    return {name: full[name] for name in CUSTOMER_FIELDS}


async def requests_of_order(conn: asyncpg.Connection | asyncpg.Pool, order_id: str,
                            user_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(REQUESTS_OF_ORDER, order_id, user_id))


async def requests_of_user(pool: asyncpg.Pool, user_id: str, before_id: int | None,
                           limit: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(REQUESTS_OF_USER, user_id, before_id, limit))
