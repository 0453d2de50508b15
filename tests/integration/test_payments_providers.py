"""Provider signing rules, offline: genuine callbacks verify, forged or tampered ones do not.

Keys are generated per run; the callbacks are signed here with `cryptography` directly, not
with the adapters' own helpers, so a mistake in an adapter cannot agree with itself.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from checkout.payments.alipay import AlipayProvider
from checkout.payments.base import (
    InvalidSignature,
    MalformedCallback,
    PayableOrder,
    PaymentRef,
    ProviderUnavailable,
)
from checkout.payments.config import AlipayConfig, WechatConfig, sandbox_secret
from checkout.payments.sandbox import SIGNATURE_HEADER, SandboxProvider
from checkout.payments.transport import GatewayResponse
from checkout.payments.wechat import WechatPayProvider

API_V3_KEY = b"0123456789abcdef0123456789abcdef"
ORDER = PayableOrder("pay0123456789abcdef0123456789ab", "fs1-" + "a" * 32, 1999, "CNY",
                     "flashmall order", "https://mall.example/api/v1/payments/webhooks/x",
                     "https://mall.example")


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def bare_base64(pem: str) -> str:
    """A key as payment consoles hand it out: the base64 body without PEM armour."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_ok(key: rsa.RSAPrivateKey, message: bytes, signature: str) -> bool:
    try:
        key.public_key().verify(base64.b64decode(signature), message, padding.PKCS1v15(),
                                hashes.SHA256())
    except BadSignature:
        return False
    return True


class FakeGateway:
    """Our transport port, answering like a provider's gateway would."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, Mapping[str, str], bytes]] = []

    async def request(self, method: str, url: str, headers: Mapping[str, str],
                      body: bytes) -> GatewayResponse:
        self.requests.append((method, url, headers, body))
        return self.answer(url, headers, body)  # type: ignore[operator, no-any-return]


# -- sandbox -----------------------------------------------------------------------------------

SANDBOX = SandboxProvider(sandbox_secret("x" * 40))
SANDBOX_BODY = json.dumps({"event_id": "evt_1", "payment_id": "pay1", "order_id": "o1",
                           "amount": 1999, "status": "succeeded"}).encode()


def sandbox_headers(body: bytes, secret: bytes = sandbox_secret("x" * 40)) -> dict[str, str]:
    import hashlib
    import hmac
    return {SIGNATURE_HEADER: hmac.new(secret, body, hashlib.sha256).hexdigest()}


def test_sandbox_accepts_a_genuine_callback() -> None:
    event = SANDBOX.verify_callback(sandbox_headers(SANDBOX_BODY), SANDBOX_BODY)
    assert (event.event_id, event.payment_id, event.amount, event.status) == (
        "evt_1", "pay1", 1999, "succeeded")


@pytest.mark.parametrize("headers", [
    {},
    {SIGNATURE_HEADER: ""},
    {SIGNATURE_HEADER: "00" * 32},
    {SIGNATURE_HEADER: "签名"},
    sandbox_headers(SANDBOX_BODY, sandbox_secret("y" * 40)),
])
def test_sandbox_rejects_a_forged_signature(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        SANDBOX.verify_callback(headers, SANDBOX_BODY)


def test_sandbox_rejects_a_tampered_body() -> None:
    tampered = SANDBOX_BODY.replace(b"1999", b"1")
    with pytest.raises(InvalidSignature):
        SANDBOX.verify_callback(sandbox_headers(SANDBOX_BODY), tampered)


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"event_id": "e"}',
                                  SANDBOX_BODY[:-1] + b', "extra": 1}'])
def test_sandbox_signed_but_unusable_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedCallback):
        SANDBOX.verify_callback(sandbox_headers(body), body)


def test_sandbox_secret_is_derived_and_not_the_jwt_secret() -> None:
    secret = sandbox_secret("x" * 40)
    assert len(secret) == 32 and b"x" * 8 not in secret
    assert secret != sandbox_secret("x" * 39 + "y")


# -- alipay ------------------------------------------------------------------------------------

MERCHANT, ALIPAY = new_key(), new_key()
ALIPAY_CONFIG = AlipayConfig("2021000000000001", bare_base64(private_pem(MERCHANT)),
                             public_pem(ALIPAY), "https://gateway.example/gateway.do")


def alipay_notify(key: rsa.RSAPrivateKey = ALIPAY, **changes: str) -> dict[str, str]:
    params = {
        "notify_time": "2026-11-23 20:00:00", "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786", "app_id": ALIPAY_CONFIG.app_id,
        "charset": "utf-8", "version": "1.0", "trade_no": "2026112322001400000000000001",
        "out_trade_no": ORDER.payment_id, "trade_status": "TRADE_SUCCESS",
        "total_amount": "19.99", "subject": "flashmall order 手机", "buyer_logon_id": "",
    }
    params.update(changes)
    content = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["sign"] = rsa_sign(key, content.encode())
    params["sign_type"] = "RSA2"
    return params


def alipay_provider(answer: object = None) -> tuple[AlipayProvider, FakeGateway]:
    gateway = FakeGateway(answer)
    return AlipayProvider(ALIPAY_CONFIG, gateway), gateway


def test_alipay_accepts_a_genuine_notification() -> None:
    provider, _ = alipay_provider()
    event = provider.verify_callback({}, urlencode(alipay_notify()).encode())
    assert event.payment_id == ORDER.payment_id and event.amount == 1999
    assert event.status == "succeeded" and event.provider_ref.startswith("2026")
    assert provider.info.ack is not None and provider.info.ack.body == b"success"


@pytest.mark.parametrize("field,value", [("total_amount", "0.01"), ("trade_status", "X"),
                                         ("out_trade_no", "pay-other"), ("subject", "x")])
def test_alipay_rejects_a_tampered_notification(field: str, value: str) -> None:
    provider, _ = alipay_provider()
    params = alipay_notify()
    params[field] = value
    with pytest.raises(InvalidSignature):
        provider.verify_callback({}, urlencode(params).encode())


@pytest.mark.parametrize("body", [
    urlencode(alipay_notify(key=MERCHANT)).encode(),  # signed, but not by Alipay
    urlencode({k: v for k, v in alipay_notify().items() if k != "sign"}).encode(),
    urlencode({**alipay_notify(), "sign_type": "RSA"}).encode(),
    urlencode(alipay_notify()).encode() + b"&sign=AAAA",
    b"\xff\xfe not form data",
    b"",
])
def test_alipay_rejects_forged_notifications(body: bytes) -> None:
    provider, _ = alipay_provider()
    with pytest.raises(InvalidSignature):
        provider.verify_callback({}, body)


def test_alipay_genuine_but_for_another_app_is_malformed() -> None:
    provider, _ = alipay_provider()
    body = urlencode(alipay_notify(app_id="2021999999999999")).encode()
    with pytest.raises(MalformedCallback):
        provider.verify_callback({}, body)


async def test_alipay_pay_url_is_signed_by_the_merchant() -> None:
    provider, _ = alipay_provider()
    intent = await provider.create_payment(ORDER)
    assert intent.pay_url and intent.pay_url.startswith(ALIPAY_CONFIG.gateway + "?")
    params = dict(parse_qsl(urlsplit(intent.pay_url).query))
    signature = params.pop("sign")
    content = "&".join(f"{k}={params[k]}" for k in sorted(params))
    assert rsa_ok(MERCHANT, content.encode(), signature)
    assert json.loads(params["biz_content"])["total_amount"] == "19.99"
    assert params["notify_url"] == ORDER.notify_url and params["sign_type"] == "RSA2"


def alipay_refund_answer(key: rsa.RSAPrivateKey, code: str = "10000"):  # type: ignore[no-untyped-def]
    def answer(url: str, headers: Mapping[str, str], body: bytes) -> GatewayResponse:
        params = dict(parse_qsl(body.decode()))
        signature = params.pop("sign")
        content = "&".join(f"{k}={params[k]}" for k in sorted(params))
        assert rsa_ok(MERCHANT, content.encode(), signature), "request not signed by merchant"
        inner = json.dumps({"code": code, "msg": "Success", "trade_no": "2026T1",
                            "refund_fee": "19.99"}, separators=(", ", ": "))
        text = (f'{{"alipay_trade_refund_response": {inner}, '
                f'"sign": "{rsa_sign(key, inner.encode())}"}}')
        return GatewayResponse(200, {}, text.encode())
    return answer


async def test_alipay_refund_is_signed_and_its_answer_verified() -> None:
    provider, gateway = alipay_provider(alipay_refund_answer(ALIPAY))
    payment = PaymentRef(ORDER.payment_id, ORDER.order_id, 1999, "CNY", "2026T1")
    receipt = await provider.refund(payment, 1999, "rf7")
    assert receipt.provider_ref == "2026T1:rf7"
    biz = json.loads(dict(parse_qsl(gateway.requests[0][3].decode()))["biz_content"])
    assert biz == {"out_trade_no": ORDER.payment_id, "refund_amount": "19.99",
                   "out_request_no": "rf7"}


@pytest.mark.parametrize("key,code", [(MERCHANT, "10000"), (ALIPAY, "40004")])
async def test_alipay_refund_refuses_a_forged_or_failed_answer(key: rsa.RSAPrivateKey,
                                                               code: str) -> None:
    provider, _ = alipay_provider(alipay_refund_answer(key, code))
    payment = PaymentRef(ORDER.payment_id, ORDER.order_id, 1999, "CNY", "2026T1")
    with pytest.raises(ProviderUnavailable):
        await provider.refund(payment, 1999, "rf7")


# -- wechat pay --------------------------------------------------------------------------------

WX_MERCHANT, WX_PLATFORM = new_key(), new_key()
WECHAT_CONFIG = WechatConfig(
    mch_id="1900000001", app_id="wx0000000000000001", api_v3_key=API_V3_KEY,
    private_key_pem=private_pem(WX_MERCHANT), cert_serial="MERCHANTSERIAL01",
    platform_public_key_pem=public_pem(WX_PLATFORM), platform_serial="PUB_KEY_ID_01",
    api_base="https://api.wechat.example",
)


def wechat_signed(body: bytes, key: rsa.RSAPrivateKey = WX_PLATFORM,
                  stamp: int | None = None, serial: str = "PUB_KEY_ID_01") -> dict[str, str]:
    ts = str(int(time.time()) if stamp is None else stamp)
    nonce = "n0nce" + ts
    message = f"{ts}\n{nonce}\n".encode() + body + b"\n"
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": rsa_sign(key, message)}


def wechat_notification(api_key: bytes = API_V3_KEY, **changes: object) -> bytes:
    transaction = {"mchid": WECHAT_CONFIG.mch_id, "appid": WECHAT_CONFIG.app_id,
                   "out_trade_no": ORDER.payment_id, "transaction_id": "4200000000202611230001",
                   "trade_state": "SUCCESS", "amount": {"total": 1999, "payer_total": 1999,
                                                        "currency": "CNY"}}
    transaction.update(changes)
    nonce, aad = "fdasflkja484", "transaction"
    ciphertext = AESGCM(api_key).encrypt(nonce.encode(), json.dumps(transaction).encode(),
                                         aad.encode())
    return json.dumps({
        "id": "EV-2018022511223320873", "create_time": "2026-11-23T20:00:00+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": base64.b64encode(ciphertext).decode(),
                     "associated_data": aad, "nonce": nonce},
    }).encode()


def wechat_provider(answer: object = None) -> tuple[WechatPayProvider, FakeGateway]:
    gateway = FakeGateway(answer)
    return WechatPayProvider(WECHAT_CONFIG, gateway), gateway


def test_wechat_accepts_a_genuine_notification() -> None:
    provider, _ = wechat_provider()
    body = wechat_notification()
    event = provider.verify_callback(wechat_signed(body), body)
    assert (event.event_id, event.payment_id, event.amount, event.status) == (
        "EV-2018022511223320873", ORDER.payment_id, 1999, "succeeded")
    assert event.provider_ref == "4200000000202611230001"


def test_wechat_rejects_a_tampered_body() -> None:
    provider, _ = wechat_provider()
    body = wechat_notification()
    tampered = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESs")
    with pytest.raises(InvalidSignature):
        provider.verify_callback(wechat_signed(body), tampered)


@pytest.mark.parametrize("headers", [
    lambda b: wechat_signed(b, key=WX_MERCHANT),  # not the platform's key
    lambda b: wechat_signed(b, serial="PUB_KEY_ID_99"),
    lambda b: wechat_signed(b, stamp=int(time.time()) - 3600),  # an old message replayed
    lambda b: {**wechat_signed(b), "Wechatpay-Nonce": "other"},
    lambda b: {k: v for k, v in wechat_signed(b).items() if k != "Wechatpay-Signature"},
    lambda b: {**wechat_signed(b), "Wechatpay-Timestamp": "now"},
])
def test_wechat_rejects_forged_signatures(headers) -> None:  # type: ignore[no-untyped-def]
    provider, _ = wechat_provider()
    body = wechat_notification()
    with pytest.raises(InvalidSignature):
        provider.verify_callback(headers(body), body)


@pytest.mark.parametrize("body", [
    wechat_notification(api_key=b"f" * 32),  # signed, but not encrypted under our APIv3 key
    wechat_notification(mchid="1900000099"),
    wechat_notification(trade_state="WHATEVER"),
    b"{}",
])
def test_wechat_signed_but_unusable_is_malformed(body: bytes) -> None:
    provider, _ = wechat_provider()
    with pytest.raises(MalformedCallback):
        provider.verify_callback(wechat_signed(body), body)


def wechat_answer(payload: dict[str, object], key: rsa.RSAPrivateKey = WX_PLATFORM):  # type: ignore[no-untyped-def]
    def answer(url: str, headers: Mapping[str, str], body: bytes) -> GatewayResponse:
        scheme, _, fields = headers["Authorization"].partition(" ")
        assert scheme == "WECHATPAY2-SHA256-RSA2048"
        auth = dict(f.split("=", 1) for f in fields.split(","))
        auth = {k: v.strip('"') for k, v in auth.items()}
        message = (f"POST\n{urlsplit(url).path}\n{auth['timestamp']}\n{auth['nonce_str']}\n"
                   .encode() + body + b"\n")
        assert rsa_ok(WX_MERCHANT, message, auth["signature"]), "request not signed"
        assert auth["mchid"] == "1900000001" and auth["serial_no"] == "MERCHANTSERIAL01"
        out = json.dumps(payload).encode()
        return GatewayResponse(200, wechat_signed(out, key=key), out)
    return answer


async def test_wechat_native_payment_gives_the_code_url() -> None:
    provider, gateway = wechat_provider(wechat_answer({"code_url": "weixin://wxpay/x?pr=1"}))
    intent = await provider.create_payment(ORDER)
    assert intent.qr_payload == intent.pay_url == "weixin://wxpay/x?pr=1"
    sent = json.loads(gateway.requests[0][3])
    assert sent["amount"] == {"total": 1999, "currency": "CNY"}
    assert sent["out_trade_no"] == ORDER.payment_id and sent["notify_url"] == ORDER.notify_url


async def test_wechat_refuses_an_answer_it_cannot_verify() -> None:
    provider, _ = wechat_provider(wechat_answer({"code_url": "weixin://evil"}, key=WX_MERCHANT))
    with pytest.raises(ProviderUnavailable):
        await provider.create_payment(ORDER)


async def test_wechat_refund() -> None:
    provider, gateway = wechat_provider(wechat_answer({"refund_id": "50300", "status":
                                                       "PROCESSING"}))
    payment = PaymentRef(ORDER.payment_id, ORDER.order_id, 1999, "CNY", "4200")
    assert (await provider.refund(payment, 1999, "rf3")).provider_ref == "50300"
    assert json.loads(gateway.requests[0][3])["out_refund_no"] == "rf3"
