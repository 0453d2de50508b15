"""The order state machine: the one place that changes `orders.status` (the writer only inserts).

Every function here runs inside the caller's transaction. Locks are always taken in one order:
the order row (SELECT ... FOR UPDATE), then its after-sales request, then its refund, then the
sale or SKU counters (record_stock_return), so two paths over the same order cannot deadlock.

Money never moves inside a transaction: a refund is recorded as `requested` in the transaction
that makes it due, and handed to the `Refunder` after the commit (`settle`). A refund the
Refunder did not complete is offered to it again by the sweeper (order_writer/timeouts.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

import asyncpg
from aiohttp import web

from mall.errors import ApiError, not_found
from order_writer import effects, history
from order_writer.stock import record_stock_return

log = logging.getLogger(__name__)

# status -> the statuses it may move to. `queued` lives only in Redis until the writer persists
# the order as `pending_payment` (recorded by a database trigger). `refunded` ends an order whose
# after-sales refund or return was approved.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "queued": frozenset({"pending_payment"}),
    "pending_payment": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered", "completed"}),
    "delivered": frozenset({"completed", "refunded"}),
    "completed": frozenset({"refunded"}),
    "cancelled": frozenset(),
    "refunded": frozenset(),
}
STATUSES: Final = tuple(TRANSITIONS)
MAX_ORDER_ID = 80

LOCK_ORDER = """
SELECT order_id, user_id, sale_id, status, total, currency, paid_amount, payment_provider,
       payment_ref, points_used
FROM orders WHERE order_id = $1 FOR UPDATE
"""
UPDATE_STATUS = """
UPDATE orders SET status = $2,
    shipped_at = CASE WHEN $2 = 'shipped' THEN now() ELSE shipped_at END,
    delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END,
    closed_at = CASE WHEN $2 IN ('completed', 'cancelled', 'refunded') THEN now()
                     ELSE closed_at END
WHERE order_id = $1
"""
SET_PAYMENT = """
UPDATE orders SET paid_at = now(), paid_amount = $2, payment_provider = $3, payment_ref = $4
WHERE order_id = $1
"""
INSERT_REFUND = """
INSERT INTO refunds (order_id, source, amount, currency) VALUES ($1, $2, $3, $4)
ON CONFLICT (order_id, source) DO NOTHING
RETURNING id, order_id, source, amount, currency
"""
SELECT_REFUND = """
SELECT id, order_id, source, amount, currency FROM refunds WHERE order_id = $1 AND source = $2
"""
COMPLETE_REFUND = """
UPDATE refunds SET status = 'completed', completed_at = now(), provider_ref = $2
WHERE id = $1 AND status = 'requested'
"""


def illegal_transition(current: str, to: str) -> ApiError:
    return ApiError(409, "illegal_transition", f"an order in status {current} cannot become {to}",
                    details={"current_status": current, "requested_status": to})


async def lock_order(conn: asyncpg.Connection, order_id: str,
                     owner: str | None = None) -> asyncpg.Record:
    """Lock the order row; 404 when it does not exist or (with `owner`) belongs to someone else."""
    if len(order_id) > MAX_ORDER_ID:
        raise not_found("order")
    row = await conn.fetchrow(LOCK_ORDER, order_id)
    if row is None or (owner is not None and row["user_id"] != owner):
        raise not_found("order")
    return row


async def transition(
    conn: asyncpg.Connection,
    order_id: str,
    to: str,
    actor: str,
    reason: str,
    details: dict[str, Any] | None = None,
    expected_from: str | None = None,
) -> str:
    """Move an order to `to` if the table allows it and write the step to its history.

    Returns the status the order left. 404 for an unknown order, 409 `illegal_transition`
    (details: current_status) when the move is not allowed or the order is no longer in
    `expected_from`.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("transition must run inside a transaction")
    if to not in TRANSITIONS:
        raise ValueError(f"unknown order status {to!r}")
    order = await lock_order(conn, order_id)
    current: str = order["status"]
    if to not in TRANSITIONS[current] or expected_from not in (None, current):
        raise illegal_transition(current, to)
    await conn.execute(UPDATE_STATUS, order_id, to)
    await history.append(conn, order_id, actor, current, to, reason, details)
    await effects.apply(conn, order, current, to, actor)
    return current


# -- refunds -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundDue:
    refund_id: int
    order_id: str
    source: str
    amount: int
    currency: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> RefundDue:
        return cls(row["id"], row["order_id"], row["source"], row["amount"], row["currency"])


class Refunder(Protocol):
    """Sends money back. Called after the commit that recorded the refund, possibly again for
    the same refund (a retry after a crash), so it must be idempotent by `refund_id`; once the
    provider confirms, it calls `complete_refund`."""

    async def refund(self, due: RefundDue) -> None: ...


class ImmediateRefunder:
    """Until payment providers exist: log the refund and mark it completed at once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def refund(self, due: RefundDue) -> None:
        log.info("refund %s of order %s: %s %s (%s), completed without a provider",
                 due.refund_id, due.order_id, due.amount, due.currency, due.source)
        async with self._pool.acquire() as conn, conn.transaction():
            await complete_refund(conn, due.refund_id, "manual")


# The app's Refunder: set before the app starts to plug in a payment provider.
REFUNDER = web.AppKey("refunder", Refunder)


async def complete_refund(conn: asyncpg.Connection, refund_id: int, provider_ref: str) -> bool:
    return bool(await conn.execute(COMPLETE_REFUND, refund_id, provider_ref) == "UPDATE 1")


async def record_refund(conn: asyncpg.Connection, order: asyncpg.Record, source: str,
                        amount: int) -> tuple[RefundDue, bool]:
    """The refund of `order` for `source`, recorded once. Returns it and whether it is new."""
    row = await conn.fetchrow(INSERT_REFUND, order["order_id"], source, amount, order["currency"])
    if row is not None:
        return RefundDue.of(row), True
    return RefundDue.of(await conn.fetchrow(SELECT_REFUND, order["order_id"], source)), False


async def settle(refunder: Refunder, dues: Iterable[RefundDue | None]) -> None:
    """Hand committed refunds to the Refunder; a failure is left for the sweeper's retry."""
    for due in dues:
        if due is None:
            continue
        try:
            await refunder.refund(due)
        except Exception:
            log.exception("refund %s of order %s failed; it will be retried",
                          due.refund_id, due.order_id)


# -- cancellation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cancellation:
    from_status: str
    stock_returned: bool
    refund: RefundDue | None


async def cancel_order(conn: asyncpg.Connection, order_id: str, actor: str, reason: str,
                       owner: str | None = None,
                       expected_from: str | None = None) -> Cancellation:
    """pending_payment or paid -> cancelled; the units go back and a paid order is refunded."""
    order = await lock_order(conn, order_id, owner)
    paid = order["status"] == "paid"
    amount = order["paid_amount"] if order["paid_amount"] is not None else order["total"]
    details = {"refund_due": amount} if paid else None
    from_status = await transition(conn, order_id, "cancelled", actor, reason, details,
                                   expected_from)
    returned = await record_stock_return(conn, order_id, reason)
    refund = (await record_refund(conn, order, "cancel", amount))[0] if paid else None
    return Cancellation(from_status, returned, refund)


# -- payment -----------------------------------------------------------------------------------


class PaymentOutcome(StrEnum):
    PAID = "paid"
    ALREADY_PAID = "already_paid"  # the same payment reported again
    REFUND_NEEDED = "refund_needed"  # the order was cancelled, or paid by another payment


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: PaymentOutcome
    status: str
    refund: RefundDue | None = None


async def mark_paid(conn: asyncpg.Connection, order_id: str, amount: int, provider: str,
                    payment_ref: str, actor: str) -> PaymentResult:
    """Record a payment: pending_payment -> paid when `amount` equals the order's total.

    A payment that lands on an order already cancelled (a customer's cancel or the payment
    deadline won the row lock) or already paid by another payment is not an error: it is
    recorded as a refund due and returned as REFUND_NEEDED, so an order never ends both paid
    and cancelled. 404 unknown order; 409 `amount_mismatch` on a pending order.
    """
    order = await lock_order(conn, order_id)
    status = order["status"]
    if (order["payment_provider"], order["payment_ref"]) == (provider, payment_ref):
        return PaymentResult(PaymentOutcome.ALREADY_PAID, status)
    if status == "pending_payment":
        if amount != order["total"]:
            raise ApiError(409, "amount_mismatch", "the amount paid differs from the order total",
                           details={"expected": order["total"], "received": amount})
        await transition(conn, order_id, "paid", actor, "payment_received",
                         {"provider": provider, "payment_ref": payment_ref, "amount": amount},
                         expected_from="pending_payment")
        await conn.execute(SET_PAYMENT, order_id, amount, provider, payment_ref)
        return PaymentResult(PaymentOutcome.PAID, "paid")
    refund, new = await record_refund(conn, order, f"payment:{provider}:{payment_ref}", amount)
    if new:
        await history.append(conn, order_id, actor, status, status, "payment_refunded",
                             {"provider": provider, "payment_ref": payment_ref, "amount": amount,
                              "refund_id": refund.refund_id})
    return PaymentResult(PaymentOutcome.REFUND_NEEDED, status, refund)


async def record_payment(pool: asyncpg.Pool, refunder: Refunder, order_id: str, amount: int,
                         provider: str, payment_ref: str, actor: str) -> PaymentResult:
    """mark_paid in a transaction of its own, then any refund it made due handed over."""
    async with pool.acquire() as conn, conn.transaction():
        result = await mark_paid(conn, order_id, amount, provider, payment_ref, actor)
    await settle(refunder, [result.refund])
    return result
