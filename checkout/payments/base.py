"""The provider interface every payment method implements, and the values it trades in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

CURRENCY: Final = "CNY"
EventStatus = Literal["succeeded", "failed", "pending"]


class InvalidSignature(Exception):
    """The callback is not provably from the provider: answered 401, recorded, never applied."""


class MalformedCallback(Exception):
    """Genuinely signed but unusable (wrong merchant, missing field, unknown currency)."""


class ProviderUnavailable(Exception):
    """The provider's gateway failed or answered something we cannot trust."""


class RefundNotSupported(Exception):
    """The method cannot send money back by itself (cash, bank transfer): staff must."""


@dataclass(frozen=True, slots=True)
class PayableOrder:
    """What a provider needs to open a payment for one order."""

    payment_id: str
    order_id: str
    amount: int
    currency: str
    subject: str
    notify_url: str
    public_url: str


@dataclass(frozen=True, slots=True)
class PaymentIntent:
    """How the customer pays: a URL to open, the text of a QR code, or instructions."""

    pay_url: str | None = None
    qr_payload: str | None = None
    instructions: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"pay_url": self.pay_url, "qr_payload": self.qr_payload,
                "instructions": self.instructions}


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """A verified callback, in our terms. `payment_id` is our id (the merchant's trade number)."""

    event_id: str
    payment_id: str
    amount: int
    currency: str
    status: EventStatus
    provider_ref: str | None = None
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRef:
    """A succeeded payment, as a refund needs it."""

    payment_id: str
    order_id: str
    amount: int
    currency: str
    provider_ref: str | None


@dataclass(frozen=True, slots=True)
class RefundReceipt:
    provider_ref: str


@dataclass(frozen=True, slots=True)
class Ack:
    """The body a provider insists on when a callback was accepted (Alipay: `success`)."""

    body: bytes
    content_type: str = "text/plain"


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    name: str
    # Sends callbacks we can verify (sandbox, alipay, wechat) or is confirmed by staff.
    staff_confirmed: bool = False
    ack: Ack | None = field(default=None)


class PaymentProvider(Protocol):
    info: ProviderInfo

    async def create_payment(self, order: PayableOrder) -> PaymentIntent:
        """Open a payment with the provider; may call its gateway."""
        ...

    def verify_callback(self, headers: Mapping[str, str], raw_body: bytes) -> CallbackEvent:
        """Check the signature over the raw body first, then parse. Raises InvalidSignature or
        MalformedCallback; never anything else on bad input."""
        ...

    async def refund(self, payment: PaymentRef, amount: int, refund_no: str) -> RefundReceipt:
        """Send `amount` back; idempotent by `refund_no`. Raises ProviderUnavailable or
        RefundNotSupported."""
        ...
