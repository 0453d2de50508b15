"""Alipay (open platform, RSA2): page-pay URLs, asynchronous notifications, refunds.

Signing rule: parameters sorted by name, joined as `key=value` with `&`, signed with
SHA256withRSA. Requests are signed with the merchant's private key (every non-empty parameter
but `sign`); notifications are verified with Alipay's public key over every parameter but
`sign` and `sign_type`. A notification is form data, so it is form-decoded only as far as
needed to take the signature out; nothing in it is used before the signature holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from checkout.payments import rsa
from checkout.payments.base import (
    CURRENCY,
    Ack,
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
from checkout.payments.config import AlipayConfig
from checkout.payments.transport import HttpTransport

BEIJING: Final = timezone(timedelta(hours=8))
MAX_FIELDS: Final = 100
UNSIGNED: Final = frozenset({"sign", "sign_type"})
SUCCESS_CODE: Final = "10000"
TRADE_STATUS: Final[dict[str, EventStatus]] = {
    "TRADE_SUCCESS": "succeeded",
    "TRADE_FINISHED": "succeeded",
    "TRADE_CLOSED": "failed",
    "WAIT_BUYER_PAY": "pending",
}
FORM: Final = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}


def signing_string(params: Mapping[str, str], exclude: frozenset[str],
                   drop_empty: bool = False) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in exclude and not (drop_empty and params[k] == ""))


def parse_form(raw_body: bytes) -> dict[str, str]:
    """Form fields of a notification; a body that cannot be read cannot have been signed."""
    try:
        pairs = parse_qsl(raw_body.decode("utf-8"), keep_blank_values=True,
                          strict_parsing=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidSignature("notification is not readable form data") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise InvalidSignature("notification repeats a field")
    return params


class AlipayProvider:
    info = ProviderInfo("alipay", ack=Ack(b"success"))

    def __init__(self, config: AlipayConfig, transport: HttpTransport,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._private = rsa.load_private_key(config.private_key_pem)
        self._alipay_key = rsa.load_public_key(config.alipay_public_key_pem)
        self._transport = transport
        self._clock = clock

    def signed_request(self, method: str, biz: dict[str, Any],
                       notify_url: str | None = None) -> dict[str, str]:
        stamp = datetime.fromtimestamp(self._clock(), UTC).astimezone(BEIJING)
        params = {
            "app_id": self._config.app_id, "method": method, "format": "JSON",
            "charset": "utf-8", "sign_type": "RSA2", "version": "1.0",
            "timestamp": stamp.strftime("%Y-%m-%d %H:%M:%S"),
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        content = signing_string(params, frozenset({"sign"}), drop_empty=True)
        params["sign"] = rsa.sign(self._private, content.encode())
        return params

    async def create_payment(self, order: PayableOrder) -> PaymentIntent:
        # Page pay needs no server call: the customer is sent to the gateway with signed
        # parameters; the same URL as a QR code opens it on a phone.
        params = self.signed_request("alipay.trade.page.pay", {
            "out_trade_no": order.payment_id, "total_amount": rsa.yuan(order.amount),
            "subject": order.subject[:256], "product_code": "FAST_INSTANT_TRADE_PAY",
        }, order.notify_url)
        url = f"{self._config.gateway}?{urlencode(params)}"
        return PaymentIntent(pay_url=url, qr_payload=url)

    def verify_callback(self, headers: Mapping[str, str], raw_body: bytes) -> CallbackEvent:
        params = parse_form(raw_body)
        signature = params.get("sign", "")
        if not signature or params.get("sign_type", "RSA2") != "RSA2":
            raise InvalidSignature("notification is not RSA2-signed")
        content = signing_string(params, UNSIGNED)
        if not rsa.verify(self._alipay_key, content.encode(), signature):
            raise InvalidSignature("alipay signature does not match the notification")
        return self._event(params)

    def _event(self, params: dict[str, str]) -> CallbackEvent:
        if params.get("app_id") != self._config.app_id:
            raise MalformedCallback("notification is for another app")
        status = TRADE_STATUS.get(params.get("trade_status", ""))
        amount = rsa.fen(params.get("total_amount", ""))
        notify_id, payment_id = params.get("notify_id"), params.get("out_trade_no")
        if status is None or amount is None or not notify_id or not payment_id:
            raise MalformedCallback("notification lacks notify_id, out_trade_no, "
                                    "total_amount or a known trade_status")
        return CallbackEvent(event_id=notify_id[:128], payment_id=payment_id[:80],
                             amount=amount, currency=CURRENCY, status=status,
                             provider_ref=params.get("trade_no") or None)

    async def refund(self, payment: PaymentRef, amount: int, refund_no: str) -> RefundReceipt:
        params = self.signed_request("alipay.trade.refund", {
            "out_trade_no": payment.payment_id, "refund_amount": rsa.yuan(amount),
            "out_request_no": refund_no,
        })
        resp = await self._transport.request("POST", self._config.gateway, FORM,
                                             urlencode(params).encode())
        answer = self.verified_answer(resp.body, "alipay_trade_refund_response")
        if answer.get("code") != SUCCESS_CODE:
            raise ProviderUnavailable(f"alipay refused the refund ({answer.get('code')} "
                                      f"{answer.get('sub_code', '')})")
        return RefundReceipt(f"{answer.get('trade_no', payment.provider_ref)}:{refund_no}")

    def verified_answer(self, body: bytes, key: str) -> dict[str, Any]:
        """The `key` object of a gateway answer, checked against the signature beside it.

        Alipay signs the exact text of that object, so it is cut out of the answer as sent.
        """
        try:
            text = body.decode("utf-8")
            start = text.index(":", text.index(f'"{key}"')) + 1
            start += len(text[start:]) - len(text[start:].lstrip())
            answer, end = json.JSONDecoder().raw_decode(text, start)
            signature = json.loads(text).get("sign", "")
        except (UnicodeDecodeError, ValueError, AttributeError):
            raise ProviderUnavailable("alipay answered something unreadable") from None
        if not isinstance(answer, dict) or not rsa.verify(
                self._alipay_key, text[start:end].encode(), signature):
            raise ProviderUnavailable("alipay answer failed signature verification")
        return answer
