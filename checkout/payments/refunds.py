"""The lifecycle's Refunder for orders paid through a payment: money goes back the way it came.

Called after the commit that made a refund due, and again by the sweeper for one left
`requested`; the provider is asked with the refund's own number, so asking twice refunds once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import asyncpg

from checkout.payments import store
from checkout.payments.base import PaymentProvider, RefundNotSupported
from checkout.payments.metrics import REFUNDS
from checkout.payments.store import Payment
from order_writer.lifecycle import RefundDue, complete_refund

log = logging.getLogger(__name__)
PAYMENT_SOURCE = "payment:"


class PaymentsRefunder:
    def __init__(self, pool: asyncpg.Pool, providers: Mapping[str, PaymentProvider]) -> None:
        self._pool = pool
        self._providers = providers

    async def refund(self, due: RefundDue) -> None:
        payment = await self._payment_for(due)
        provider = self._providers.get(payment.provider) if payment else None
        if payment is None or provider is None:
            log.warning("refund %s of order %s has no payment to go back through; "
                        "it needs staff", due.refund_id, due.order_id)
            return
        try:
            receipt = await provider.refund(payment.ref(), due.amount, f"rf{due.refund_id}")
        except RefundNotSupported:
            REFUNDS.labels(payment.provider, "manual").inc()
            log.warning("refund %s of order %s (%s) must be paid back by staff",
                        due.refund_id, due.order_id, payment.provider)
            return
        except Exception:
            REFUNDS.labels(payment.provider, "failed").inc()
            raise  # the lifecycle logs it; the sweeper offers the refund again
        async with self._pool.acquire() as conn, conn.transaction():
            await store.lock(conn, payment.id)
            completed = await complete_refund(conn, due.refund_id, receipt.provider_ref)
            if completed:
                await conn.execute(store.ADD_REFUND, payment.id, due.amount)
        if completed:
            REFUNDS.labels(payment.provider, "completed").inc()

    async def _payment_for(self, due: RefundDue) -> Payment | None:
        # A late or second payment names itself (`payment:<provider>:<payment id>`); any other
        # refund (cancel, after-sales) goes back through the payment that paid the order.
        if due.source.startswith(PAYMENT_SOURCE):
            return await store.get(self._pool, due.source.rsplit(":", 1)[-1])
        row = await self._pool.fetchrow(store.PAYMENT_OF_ORDER, due.order_id)
        return Payment.of(row) if row else None
