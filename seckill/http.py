"""HTTP routes of the flash-sale core and the background work it owns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from aiohttp import web

from mall.auth import require_staff
from mall.autopipe import ScriptPipe
from mall.background import stop_task
from mall.errors import decode_body, json_response
from mall.idempotency import idempotency_key, idempotent
from mall.lua import read_script
from mall.openapi import api_doc
from mall.params import path_id
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER
from seckill.admission import Admission, AdmissionService, Outcome, PurchaseRequest, rejection
from seckill.campaigns import Campaigns, NewFlashSale
from seckill.relay import OutboxRelay
from seckill.soldout import SoldOutFlags
from seckill.stats import SaleStats

ADMISSION = web.AppKey("admission", AdmissionService)
CAMPAIGNS = web.AppKey("campaigns", Campaigns)
MAX_QTY = 1000
RELAY_STOP_TIMEOUT_S = 5.0
STATS_INTERVAL_S = 2.0


class PurchaseBody(msgspec.Struct, forbid_unknown_fields=True):
    qty: Annotated[int, msgspec.Meta(ge=1, le=MAX_QTY)] = 1


def _sale_id(request: web.Request) -> int:
    return path_id(request, "sale_id", "flash sale")


@api_doc(
    summary="Buy in a flash sale", tag="flash-sales", request=PurchaseBody, idempotent=True,
    roles=("customer", "member", "staff", "admin"),
    responses={202: "accepted: {order_id, status: queued}"},
    errors={401: "unauthorized", 403: "not_started, ended", 404: "not_found",
            409: "sold_out, limit_reached", 413: "payload_too_large",
            422: "invalid_request, idempotency_key_reused, invalid_idempotency_key"},
)
async def post_order(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    sale_id = _sale_id(request)
    body = decode_body(await request.read(), PurchaseBody)
    req = PurchaseRequest(sale_id, principal.user_id, body.qty, idempotency_key(request))
    admission: Admission = await app[ADMISSION].admit(req)
    if admission.outcome in (Outcome.ACCEPTED, Outcome.REPLAY):
        return json_response({"order_id": admission.order_id, "status": "queued"}, status=202)
    raise rejection(admission.outcome)


@api_doc(
    summary="A flash sale and its remaining stock", tag="flash-sales",
    responses={200: "{id, sku_id, price, stock, remaining, per_user_limit, starts_at, ends_at,"
                    " state}"},
    errors={404: "not_found"},
)
async def get_sale(request: web.Request) -> web.Response:
    return json_response(await request.app[CAMPAIGNS].view(_sale_id(request)))


@api_doc(
    summary="Create a flash sale, reserving its stock out of the SKU", tag="admin",
    request=NewFlashSale, idempotent=True, roles=("staff", "admin"),
    responses={201: "the sale, as GET /api/v1/flash-sales/{id}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "insufficient_stock, idempotency_in_progress",
            422: "invalid_request, idempotency_key_reused", 503: "unavailable"},
)
async def post_sale(request: web.Request) -> web.Response:
    app = request.app
    principal = require_staff(app[VERIFIER].from_request(request))
    body = await request.read()
    sale = decode_body(body, NewFlashSale)
    sale.check()
    async def run() -> web.Response:
        sale_id = await app[CAMPAIGNS].create(sale, principal.user_id)
        return json_response(await app[CAMPAIGNS].view(sale_id), status=201)

    return await idempotent(request, "flash-sales", principal.user_id, body, run)


async def seckill_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, redis, keys = app[SETTINGS], app[REDIS], app[KEYS]
    script = ScriptPipe(settings.redis_url, read_script("admit"))
    flags = SoldOutFlags(redis, keys)
    app[ADMISSION] = AdmissionService(script, keys, flags, settings.order_view_ttl_s)
    app[CAMPAIGNS] = Campaigns(app[PG], redis, keys)
    refresher = asyncio.create_task(flags.run_refresher(settings.soldout_refresh_s))
    stats = SaleStats(app[PG], redis, keys, STATS_INTERVAL_S)
    stats_task = asyncio.create_task(stats.run())
    relay = OutboxRelay(redis, keys, settings)
    relay_task = asyncio.create_task(relay.run()) if settings.relay_enabled else None
    yield
    relay.stop()
    if relay_task is not None:
        await stop_task(relay_task, RELAY_STOP_TIMEOUT_S)
    stats.stop()
    await stop_task(stats_task, RELAY_STOP_TIMEOUT_S)
    await stop_task(refresher, 0)
    await flags.aclose()
    await script.aclose()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(seckill_ctx)
    app.router.add_post("/api/v1/admin/flash-sales", post_sale)
    app.router.add_get("/api/v1/flash-sales/{sale_id}", get_sale)
    app.router.add_post("/api/v1/flash-sales/{sale_id}/orders", post_order)
