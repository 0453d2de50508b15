"""A provider that takes no money: signs its callbacks with HMAC-SHA256 over the raw body.

The key is derived from the JWT secret (config.sandbox_secret), so nothing new is configured
and a deployment with a real secret has a sandbox key nobody outside can guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Annotated, Final, Literal

import msgspec

from checkout.payments.base import (
    CURRENCY,
    CallbackEvent,
    InvalidSignature,
    MalformedCallback,
    PayableOrder,
    PaymentIntent,
    PaymentRef,
    ProviderInfo,
    RefundReceipt,
)

SIGNATURE_HEADER: Final = "X-Sandbox-Signature"
_ID = msgspec.Meta(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")


class SandboxCallback(msgspec.Struct, forbid_unknown_fields=True):
    event_id: Annotated[str, _ID]
    payment_id: Annotated[str, _ID]
    order_id: Annotated[str, _ID]
    amount: Annotated[int, msgspec.Meta(ge=0, le=10**13)]
    status: Literal["succeeded", "failed"]


class SandboxProvider:
    info = ProviderInfo("sandbox")

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, raw_body: bytes) -> str:
        return hmac.new(self._secret, raw_body, hashlib.sha256).hexdigest()

    def callback(self, payment_id: str, order_id: str, amount: int,
                 status: str = "succeeded") -> tuple[bytes, dict[str, str]]:
        """The body and headers the sandbox sends when its customer pays."""
        body = msgspec.json.encode({"event_id": f"evt_{secrets.token_hex(16)}",
                                    "payment_id": payment_id, "order_id": order_id,
                                    "amount": amount, "status": status})
        return body, {SIGNATURE_HEADER: self.sign(body), "Content-Type": "application/json"}

    async def create_payment(self, order: PayableOrder) -> PaymentIntent:
        url = f"{order.public_url}/api/v1/sandbox/pay/{order.payment_id}"
        return PaymentIntent(pay_url=url, qr_payload=url)

    def verify_callback(self, headers: Mapping[str, str], raw_body: bytes) -> CallbackEvent:
        given = headers.get(SIGNATURE_HEADER, "").strip().lower()
        expected = self.sign(raw_body)
        if not hmac.compare_digest(expected.encode(), given.encode("ascii", "replace")):
            raise InvalidSignature("sandbox signature does not match the body")
        try:
            event = msgspec.json.decode(raw_body, type=SandboxCallback, strict=True)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise MalformedCallback(str(exc)) from None
        return CallbackEvent(
            event_id=event.event_id, payment_id=event.payment_id, amount=event.amount,
            currency=CURRENCY, status=event.status, provider_ref=f"sbx-{event.payment_id}",
            order_id=event.order_id,
        )

    async def refund(self, payment: PaymentRef, amount: int, refund_no: str) -> RefundReceipt:
        # Idempotent by construction: the same refund number always names the same refund.
        return RefundReceipt(f"sbx-{refund_no}")
