"""Money received for a payment, applied to its order through the order lifecycle.

The one place that calls `mark_paid`. It runs in the caller's transaction, after the order row
and then the payment row were locked (the lifecycle's lock order: the order first), inside a
savepoint so a refused payment leaves nothing behind but the caller's record of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import asyncpg

from checkout.payments import store
from checkout.payments.store import Payment
from mall.errors import ApiError
from order_writer.lifecycle import PaymentOutcome, RefundDue, lock_order, mark_paid


class Outcome(StrEnum):
    PAID = "paid"
    ALREADY_PAID = "already_paid"
    REFUND_DUE = "refund_due"  # the order was cancelled or paid otherwise: money goes back
    PAYMENT_FAILED = "payment_failed"
    PENDING = "pending"
    AMOUNT_MISMATCH = "amount_mismatch"
    REFERENCE_IN_USE = "reference_in_use"
    UNKNOWN_PAYMENT = "unknown_payment"
    INVALID_EVENT = "invalid_event"


# Outcomes that change nothing and are answered as errors the first time they happen.
REFUSALS: dict[Outcome, tuple[int, str, str]] = {
    Outcome.AMOUNT_MISMATCH: (409, "amount_mismatch",
                              "the amount paid differs from the order total"),
    Outcome.REFERENCE_IN_USE: (409, "reference_in_use",
                               "this provider reference already settled another payment"),
    Outcome.UNKNOWN_PAYMENT: (404, "not_found", "payment not found"),
    Outcome.INVALID_EVENT: (422, "invalid_request",
                            "the event does not match the payment it names"),
}


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: Outcome
    payment_id: str | None = None
    refund: RefundDue | None = None
    details: dict[str, Any] = field(default_factory=dict)


async def lock_payment_and_order(conn: asyncpg.Connection, payment: Payment) -> Payment:
    await lock_order(conn, payment.order_id)
    return await store.lock(conn, payment.id)


async def apply_payment(conn: asyncpg.Connection, payment: Payment, amount: int,
                        provider_ref: str | None, actor: str) -> Applied:
    """`amount` received for a locked payment: the order is paid, or the money is due back."""
    try:
        async with conn.transaction():
            result = await mark_paid(conn, payment.order_id, amount, payment.provider,
                                     payment.id, actor)
            if result.outcome is not PaymentOutcome.ALREADY_PAID:
                await conn.execute(store.MARK_SUCCEEDED, payment.id, provider_ref, actor)
    except ApiError as err:
        if err.code != "amount_mismatch":
            raise
        return Applied(Outcome.AMOUNT_MISMATCH, payment.id, details=err.details or {})
    except asyncpg.UniqueViolationError:
        return Applied(Outcome.REFERENCE_IN_USE, payment.id)
    if result.outcome is PaymentOutcome.ALREADY_PAID:
        return Applied(Outcome.ALREADY_PAID, payment.id)
    if result.outcome is PaymentOutcome.REFUND_NEEDED:
        return Applied(Outcome.REFUND_DUE, payment.id, result.refund,
                       {"order_status": result.status})
    return Applied(Outcome.PAID, payment.id)


async def apply_failure(conn: asyncpg.Connection, payment: Payment) -> Applied:
    await conn.execute(store.MARK_FAILED, payment.id)
    return Applied(Outcome.PAYMENT_FAILED, payment.id)
