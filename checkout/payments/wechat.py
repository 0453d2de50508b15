"""WeChat Pay API v3: Native (QR) payments, notifications, refunds.

Every message either way is signed with SHA256withRSA over
`timestamp\\nnonce\\nbody\\n` (requests: `METHOD\\npath\\ntimestamp\\nnonce\\nbody\\n`).
Notifications and answers are verified with the platform public key named by
`Wechatpay-Serial`; a notification's `resource` is then decrypted with AES-256-GCM under the
APIv3 key. Timestamps more than five minutes away are refused, so old messages cannot be
replayed later.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from checkout.payments import rsa
from checkout.payments.base import (
    CURRENCY,
    CallbackEvent,
    EventStatus,
    InvalidSignature,
    MalformedCallback,
    PayableOrder,
    PaymentIntent,
    PaymentRef,
    ProviderInfo,
    ProviderUnavailable,
    RefundReceipt,
)
from checkout.payments.config import WechatConfig
from checkout.payments.transport import HttpTransport

MAX_SKEW_S: Final = 300
NATIVE_PATH: Final = "/v3/pay/transactions/native"
REFUND_PATH: Final = "/v3/refund/domestic/refunds"
TRADE_STATE: Final[dict[str, EventStatus]] = {
    "SUCCESS": "succeeded",
    "CLOSED": "failed",
    "PAYERROR": "failed",
    "REVOKED": "failed",
    "NOTPAY": "pending",
    "USERPAYING": "pending",
}
REFUND_ACCEPTED: Final = frozenset({"SUCCESS", "PROCESSING"})


# Provider payloads are theirs and may grow fields, so unknown fields are ignored here.
class Resource(msgspec.Struct):
    algorithm: str
    ciphertext: str
    nonce: str
    associated_data: str = ""


class Notification(msgspec.Struct):
    id: str
    event_type: str
    resource: Resource


class Amount(msgspec.Struct):
    total: int
    currency: str = CURRENCY


class Transaction(msgspec.Struct):
    mchid: str
    out_trade_no: str
    trade_state: str
    amount: Amount
    transaction_id: str | None = None


class WechatPayProvider:
    info = ProviderInfo("wechat")

    def __init__(self, config: WechatConfig, transport: HttpTransport,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._private = rsa.load_private_key(config.private_key_pem)
        self._platform_key = rsa.load_public_key(config.platform_public_key_pem)
        self._aead = AESGCM(config.api_v3_key)
        self._transport = transport
        self._clock = clock

    # -- incoming ------------------------------------------------------------------------------

    def verify_signed(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Raise InvalidSignature unless the platform key signed this body recently."""
        stamp = headers.get("Wechatpay-Timestamp", "")
        nonce = headers.get("Wechatpay-Nonce", "")
        signature = headers.get("Wechatpay-Signature", "")
        if headers.get("Wechatpay-Serial", "") != self._config.platform_serial:
            raise InvalidSignature("signed with an unknown platform key")
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12 or not nonce:
            raise InvalidSignature("timestamp or nonce missing")
        if abs(self._clock() - int(stamp)) > MAX_SKEW_S:
            raise InvalidSignature("timestamp outside the accepted window")
        message = stamp.encode() + b"\n" + nonce.encode() + b"\n" + raw_body + b"\n"
        if not rsa.verify(self._platform_key, message, signature):
            raise InvalidSignature("wechat pay signature does not match the body")

    def verify_callback(self, headers: Mapping[str, str], raw_body: bytes) -> CallbackEvent:
        self.verify_signed(headers, raw_body)
        try:
            note = msgspec.json.decode(raw_body, type=Notification)
            deal = msgspec.json.decode(self._decrypt(note.resource), type=Transaction)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise MalformedCallback(str(exc)) from None
        status = TRADE_STATE.get(deal.trade_state)
        if deal.mchid != self._config.mch_id:
            raise MalformedCallback("notification is for another merchant")
        if status is None or not note.event_type.startswith("TRANSACTION."):
            raise MalformedCallback(f"unexpected {note.event_type} / {deal.trade_state}")
        return CallbackEvent(event_id=note.id[:128], payment_id=deal.out_trade_no[:80],
                             amount=deal.amount.total, currency=deal.amount.currency,
                             status=status, provider_ref=deal.transaction_id)

    def _decrypt(self, resource: Resource) -> bytes:
        if resource.algorithm != "AEAD_AES_256_GCM":
            raise MalformedCallback(f"unsupported algorithm {resource.algorithm}")
        try:
            return self._aead.decrypt(resource.nonce.encode(),
                                      base64.b64decode(resource.ciphertext, validate=True),
                                      resource.associated_data.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise MalformedCallback("resource does not decrypt under the APIv3 key") from None

    # -- outgoing ------------------------------------------------------------------------------

    def authorization(self, method: str, url: str, body: bytes) -> str:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        stamp, nonce = str(int(self._clock())), secrets.token_hex(16)
        message = f"{method}\n{path}\n{stamp}\n{nonce}\n".encode() + body + b"\n"
        signature = rsa.sign(self._private, message)
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{self._config.mch_id}",'
                f'nonce_str="{nonce}",signature="{signature}",timestamp="{stamp}",'
                f'serial_no="{self._config.cert_serial}"')

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._config.api_base}{path}"
        body = msgspec.json.encode(payload)
        headers = {"Authorization": self.authorization("POST", url, body),
                   "Content-Type": "application/json", "Accept": "application/json"}
        resp = await self._transport.request("POST", url, headers, body)
        try:
            self.verify_signed(resp.headers, resp.body)
        except InvalidSignature as exc:
            raise ProviderUnavailable(f"wechat pay answer not trusted: {exc}") from None
        if resp.status != 200:
            raise ProviderUnavailable(f"wechat pay answered {resp.status}")
        try:
            answer = msgspec.json.decode(resp.body)
        except msgspec.DecodeError:
            raise ProviderUnavailable("wechat pay answered something unreadable") from None
        if not isinstance(answer, dict):
            raise ProviderUnavailable("wechat pay answered something unreadable")
        return answer

    async def create_payment(self, order: PayableOrder) -> PaymentIntent:
        answer = await self._call(NATIVE_PATH, {
            "appid": self._config.app_id, "mchid": self._config.mch_id,
            "description": order.subject[:127], "out_trade_no": order.payment_id,
            "notify_url": order.notify_url,
            "amount": {"total": order.amount, "currency": order.currency},
        })
        code_url = answer.get("code_url")
        if not isinstance(code_url, str) or not code_url:
            raise ProviderUnavailable("wechat pay answered without a code_url")
        return PaymentIntent(pay_url=code_url, qr_payload=code_url)

    async def refund(self, payment: PaymentRef, amount: int, refund_no: str) -> RefundReceipt:
        # Accepted refunds settle asynchronously at WeChat; PROCESSING counts as sent back.
        answer = await self._call(REFUND_PATH, {
            "out_trade_no": payment.payment_id, "out_refund_no": refund_no,
            "amount": {"refund": amount, "total": payment.amount, "currency": payment.currency},
        })
        if answer.get("status") not in REFUND_ACCEPTED or not answer.get("refund_id"):
            raise ProviderUnavailable(f"wechat pay refused the refund ({answer.get('status')})")
        return RefundReceipt(str(answer["refund_id"]))
