"""Cash on delivery: nothing is collected online; staff confirm the courier's collection."""

from __future__ import annotations

from collections.abc import Mapping

from checkout.payments.base import (
    CallbackEvent,
    InvalidSignature,
    PayableOrder,
    PaymentIntent,
    PaymentRef,
    ProviderInfo,
    RefundNotSupported,
    RefundReceipt,
)
from checkout.payments.rsa import yuan


class CashOnDeliveryProvider:
    info = ProviderInfo("cod", staff_confirmed=True)

    async def create_payment(self, order: PayableOrder) -> PaymentIntent:
        return PaymentIntent(instructions={
            "method": "cash_on_delivery",
            "amount": order.amount,
            "amount_yuan": yuan(order.amount),
            "currency": order.currency,
            "reference": order.payment_id,
            "note": "Pay the courier on delivery; the order is paid once the collection is "
                    "confirmed.",
        })

    def verify_callback(self, headers: Mapping[str, str], raw_body: bytes) -> CallbackEvent:
        raise InvalidSignature("cash on delivery sends no callbacks")

    async def refund(self, payment: PaymentRef, amount: int, refund_no: str) -> RefundReceipt:
        raise RefundNotSupported("cash is returned by staff")
