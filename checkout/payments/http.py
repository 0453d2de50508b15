"""HTTP routes of payments: open a payment, provider webhooks, staff confirmation, the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import aiohttp
import msgspec
import orjson
from aiohttp import web

import audit
from checkout.payments import store
from checkout.payments.callbacks import CallbackHandler
from checkout.payments.config import PaymentsConfig
from checkout.payments.refunds import PaymentsRefunder
from checkout.payments.registry import build_providers
from checkout.payments.sandbox import SandboxProvider
from checkout.payments.service import PaymentService, Urls, refusal
from checkout.payments.transport import AiohttpTransport
from mall.auth import require_staff
from mall.errors import ApiError, decode_body, json_response, not_found
from mall.idempotency import idempotent
from mall.openapi import api_doc
from mall.resources import PG, SETTINGS, VERIFIER
from order_writer.lifecycle import REFUNDER

PAYMENTS = web.AppKey("payments", PaymentService)
CALLBACKS = web.AppKey("payment_callbacks", CallbackHandler)
PAYMENTS_REFUNDER = web.AppKey("payments_refunder", PaymentsRefunder)
PAYMENTS_CONFIG = web.AppKey("payments_config", PaymentsConfig)
HTTP_SESSION = web.AppKey("payments_http", aiohttp.ClientSession)
SANDBOX_CALLBACK_TIMEOUT_S = 5.0
CUSTOMER_ROLES = ("customer", "member", "staff", "admin")


class CreatePaymentBody(msgspec.Struct, forbid_unknown_fields=True):
    provider: Literal["sandbox", "cod", "bank_transfer", "alipay", "wechat"]


class ConfirmPaymentBody(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=0, le=10**13)]
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                           pattern=r"^[A-Za-z0-9_.:/-]+$")]


def _urls(request: web.Request) -> Urls:
    configured = request.app[PAYMENTS_CONFIG].public_url
    return Urls(configured or str(request.url.origin()))


@api_doc(
    summary="Pay an order: open a payment with a provider", tag="payments",
    request=CreatePaymentBody, idempotent=True, roles=CUSTOMER_ROLES,
    responses={201: "{payment_id, order_id, provider, amount, currency, status, pay_url, "
                    "qr_payload, instructions, ...}",
               200: "the order's open payment with this provider, as it was"},
    errors={401: "unauthorized", 404: "not_found",
            409: "order_not_payable, payment_in_progress, idempotency_in_progress",
            422: "invalid_request, provider_unavailable, idempotency_key_reused",
            503: "provider_unavailable, unavailable"},
)
async def post_payment(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    order_id = request.match_info["order_id"]
    raw = await request.read()
    body = decode_body(raw, CreatePaymentBody)
    async def run() -> web.Response:
        payment, created = await app[PAYMENTS].create(principal.user_id, order_id,
                                                      body.provider, _urls(request))
        return json_response(payment.view(), status=201 if created else 200)

    return await idempotent(request, f"payments:{order_id}", principal.user_id, raw, run)


@api_doc(
    summary="A payment, for its payer or staff", tag="payments", roles=CUSTOMER_ROLES,
    responses={200: "the payment"}, errors={401: "unauthorized", 404: "not_found"},
)
async def get_payment(request: web.Request) -> web.Response:
    principal = request.app[VERIFIER].from_request(request)
    payment = await store.get(request.app[PG], request.match_info["payment_id"])
    if payment is None or not (principal.is_staff or payment.user_id == principal.user_id):
        raise not_found("payment")
    return json_response(payment.view())


@api_doc(
    summary="Provider callback (signature checked on the raw body; replays change nothing)",
    tag="payments",
    responses={200: "{outcome: paid|already_paid|refund_due|payment_failed|pending|..., "
                    "payment_id, replayed} (Alipay: the text `success`)"},
    errors={401: "invalid_signature", 404: "not_found",
            409: "amount_mismatch, reference_in_use", 413: "payload_too_large",
            422: "invalid_request"},
)
async def post_webhook(request: web.Request) -> web.Response:
    provider = request.app[PAYMENTS].provider(request.match_info["provider"])
    if provider is None:
        raise not_found("payment provider")
    raw = await request.read()
    result = await request.app[CALLBACKS].handle(provider, request.headers, raw)
    audit.note(request, payment_id=result.applied.payment_id,
               outcome=result.applied.outcome.value, replayed=result.replayed)
    error = None if result.replayed else refusal(result.applied)
    if error is not None:
        raise error
    if provider.info.ack is not None:
        return web.Response(body=provider.info.ack.body,
                            content_type=provider.info.ack.content_type)
    return json_response({"outcome": result.applied.outcome,
                          "payment_id": result.applied.payment_id,
                          "replayed": result.replayed})


@api_doc(
    summary="Confirm a bank transfer or cash on delivery as received", tag="admin",
    request=ConfirmPaymentBody, roles=("staff", "admin"),
    responses={200: "{outcome: paid|already_paid|refund_due, payment}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "amount_mismatch, not_staff_confirmed, payment_not_open, reference_in_use",
            422: "invalid_request"},
)
async def post_confirm(request: web.Request) -> web.Response:
    app = request.app
    staff = require_staff(app[VERIFIER].from_request(request))
    body = decode_body(await request.read(), ConfirmPaymentBody)
    payment, applied = await app[PAYMENTS].confirm(staff.user_id, request.match_info["payment_id"],
                                                   body.amount, body.reference)
    return json_response({"outcome": applied.outcome, "payment": payment.view()})


def _loopback_url(request: web.Request, path: str) -> str:
    # Our own port on loopback, never the Host header: a client must not choose where we POST.
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise ApiError(503, "unavailable", "the sandbox cannot reach this server")
    host = "[::1]" if ":" in str(sockname[0]) and "." not in str(sockname[0]) else "127.0.0.1"
    return f"http://{host}:{int(sockname[1])}{path}"


@api_doc(
    summary="Sandbox: act as the customer paying; the sandbox calls our webhook", tag="payments",
    roles=CUSTOMER_ROLES,
    responses={200: "{outcome, payment_id, replayed}: the webhook's answer"},
    errors={401: "unauthorized", 404: "not_found", 409: "amount_mismatch",
            503: "unavailable"},
)
async def post_sandbox_pay(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    sandbox = app[PAYMENTS].provider("sandbox")
    payment = await store.get(app[PG], request.match_info["payment_id"])
    if (not isinstance(sandbox, SandboxProvider) or payment is None
            or payment.provider != "sandbox" or payment.user_id != principal.user_id):
        raise not_found("payment")
    body, headers = sandbox.callback(payment.id, payment.order_id, payment.amount)
    url = _loopback_url(request, "/api/v1/payments/webhooks/sandbox")
    try:
        async with app[HTTP_SESSION].post(
            url, data=body, headers=headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=SANDBOX_CALLBACK_TIMEOUT_S),
        ) as resp:
            status, answer = resp.status, await resp.read()
    except (aiohttp.ClientError, TimeoutError):
        raise ApiError(503, "unavailable", "the sandbox could not deliver its callback",
                       headers={"Retry-After": "1"}) from None
    try:
        parsed = orjson.loads(answer)
    except orjson.JSONDecodeError:
        raise ApiError(503, "unavailable", "the webhook answered something unreadable") from None
    if status >= 400:
        error = parsed.get("error", {}) if isinstance(parsed, dict) else {}
        raise ApiError(status, str(error.get("code", "http_error")),
                       str(error.get("message", "")), details=error.get("details"))
    return json_response(parsed)


async def payments_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, pool = app[SETTINGS], app[PG]
    config = PaymentsConfig.from_env(settings)
    session = aiohttp.ClientSession()
    providers = build_providers(config, settings.jwt_secret, AiohttpTransport(session))
    refunder = PaymentsRefunder(pool, providers)
    app[PAYMENTS_CONFIG] = config
    app[HTTP_SESSION] = session
    app[PAYMENTS_REFUNDER] = refunder
    # Cancellations, the payment deadline and after-sales refund through the real providers.
    app[REFUNDER] = refunder
    app[PAYMENTS] = PaymentService(pool, providers, refunder)
    app[CALLBACKS] = CallbackHandler(pool, refunder)
    yield
    await asyncio.wait_for(session.close(), timeout=5)


def setup(app: web.Application) -> None:
    """Register payments' resources and routes (after the PostgreSQL and Redis contexts)."""
    app.cleanup_ctx.append(payments_ctx)
    app.router.add_post("/api/v1/orders/{order_id}/payments", post_payment)
    app.router.add_get("/api/v1/payments/{payment_id}", get_payment)
    app.router.add_post("/api/v1/payments/webhooks/{provider}", post_webhook)
    app.router.add_post("/api/v1/admin/payments/{payment_id}/confirm", post_confirm)
    app.router.add_post("/api/v1/sandbox/pay/{payment_id}", post_sandbox_pay)
