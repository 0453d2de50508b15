"""Opening a payment for an order, and staff confirming a payment made off-line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from checkout.payments import store
from checkout.payments.base import PayableOrder, PaymentProvider, ProviderUnavailable
from checkout.payments.settlement import (
    REFUSALS,
    Applied,
    Outcome,
    apply_payment,
    lock_payment_and_order,
)
from checkout.payments.store import Payment
from mall.errors import ApiError, not_found
from order_writer.lifecycle import MAX_ORDER_ID, Refunder, settle

PAYABLE_STATUS = "pending_payment"


@dataclass(frozen=True, slots=True)
class Urls:
    """Where customers and providers reach this deployment (no trailing slash)."""

    public: str

    def notify(self, provider: str) -> str:
        return f"{self.public}/api/v1/payments/webhooks/{provider}"


def refusal(applied: Applied) -> ApiError | None:
    entry = REFUSALS.get(applied.outcome)
    if entry is None:
        return None
    status, code, message = entry
    return ApiError(status, code, message, details=applied.details or None)


def unavailable(provider: str) -> ApiError:
    return ApiError(422, "provider_unavailable", f"payment by {provider} is not offered here")


class PaymentService:
    def __init__(self, pool: asyncpg.Pool, providers: Mapping[str, PaymentProvider],
                 refunder: Refunder) -> None:
        self._pool = pool
        self._providers = providers
        self._refunder = refunder

    def provider(self, name: str) -> PaymentProvider | None:
        return self._providers.get(name)

    async def create(self, user_id: str, order_id: str, provider_name: str,
                     urls: Urls) -> tuple[Payment, bool]:
        """The order's open payment with this provider (new or existing) and whether it is new.

        404 unless the caller owns the order; 409 `order_not_payable` unless it awaits payment.
        """
        provider = self._providers.get(provider_name)
        if provider is None:
            raise unavailable(provider_name)
        if not store.plausible_id(order_id, MAX_ORDER_ID):
            raise not_found("order")
        async with self._pool.acquire() as conn, conn.transaction():
            order = await conn.fetchrow(store.SELECT_ORDER, order_id)
            if order is None or order["user_id"] != user_id:
                raise not_found("order")
            if order["status"] != PAYABLE_STATUS:
                raise ApiError(409, "order_not_payable", f"the order is {order['status']}",
                               details={"current_status": order["status"]})
            payment, created = await store.open_payment(conn, order, provider_name)
        if payment is None:
            raise ApiError(409, "payment_in_progress", "a payment of this order is settling")
        if payment.intent is None:
            payment = await self._open_with_provider(provider, payment, urls)
        return payment, created

    async def _open_with_provider(self, provider: PaymentProvider, payment: Payment,
                                  urls: Urls) -> Payment:
        # Outside any transaction: a provider's gateway may be slow. A failure leaves the
        # payment without an intent, and asking again retries with the same trade number.
        request = PayableOrder(
            payment_id=payment.id, order_id=payment.order_id, amount=payment.amount,
            currency=payment.currency, subject=f"flashmall order {payment.order_id}",
            notify_url=urls.notify(provider.info.name), public_url=urls.public,
        )
        try:
            intent = await provider.create_payment(request)
        except ProviderUnavailable:
            raise ApiError(503, "provider_unavailable", "the payment provider did not answer",
                           headers={"Retry-After": "5"}) from None
        return await store.set_intent(self._pool, payment.id, intent)

    async def confirm(self, staff_id: str, payment_id: str, amount: int,
                      reference: str) -> tuple[Payment, Applied]:
        """Staff record money received off-line (bank transfer credit, cash collected)."""
        payment = await store.get(self._pool, payment_id)
        if payment is None:
            raise not_found("payment")
        provider = self._providers.get(payment.provider)
        if provider is None or not provider.info.staff_confirmed:
            raise ApiError(409, "not_staff_confirmed",
                           f"payments by {payment.provider} are confirmed by their provider")
        async with self._pool.acquire() as conn, conn.transaction():
            payment = await lock_payment_and_order(conn, payment)
            if payment.status == "succeeded" and payment.provider_ref == reference:
                applied = Applied(Outcome.ALREADY_PAID, payment.id)
            elif payment.status != "created":
                raise ApiError(409, "payment_not_open", f"the payment is {payment.status}",
                               details={"current_status": payment.status})
            else:
                applied = await apply_payment(conn, payment, amount, reference, staff_id)
        error = refusal(applied)
        if error is not None:
            raise error
        await settle(self._refunder, [applied.refund])
        return await store.get(self._pool, payment_id) or payment, applied
