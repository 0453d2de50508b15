"""Bank transfer: the customer transfers with our reference; staff confirm the credit."""

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
from checkout.payments.config import BankAccount
from checkout.payments.rsa import yuan


class BankTransferProvider:
    info = ProviderInfo("bank_transfer", staff_confirmed=True)

    def __init__(self, account: BankAccount) -> None:
        self._account = account

    async def create_payment(self, order: PayableOrder) -> PaymentIntent:
        return PaymentIntent(instructions={
            "method": "bank_transfer",
            "payee": self._account.payee,
            "account": self._account.account,
            "bank": self._account.bank,
            "amount": order.amount,
            "amount_yuan": yuan(order.amount),
            "currency": order.currency,
            "reference": order.payment_id,
            "note": "Write the reference in the transfer's remark; the order is paid once the "
                    "credit is confirmed.",
        })

    def verify_callback(self, headers: Mapping[str, str], raw_body: bytes) -> CallbackEvent:
        raise InvalidSignature("bank transfers send no callbacks")

    async def refund(self, payment: PaymentRef, amount: int, refund_no: str) -> RefundReceipt:
        raise RefundNotSupported("a bank transfer is returned by staff")
