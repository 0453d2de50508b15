"""HTTP routes of the flash-sale core and the background work it owns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
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
from mall.ratelimit import client_ip
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER
from seckill.admission import (
    TOKEN_HEADER,
    Admission,
    AdmissionService,
    AdmissionTokenDesk,
    Outcome,
    PurchaseRequest,
    rejection,
)
from seckill.admission_token import CheckedToken, TokenProblem
from seckill.campaign_admin import (
    CampaignAdmin,
    SaleEdit,
    SaleUpkeep,
    parse_id_cursor,
    parse_limit,
    parse_state,
)
from seckill.campaigns import Campaigns, NewFlashSale
from seckill.relay import OutboxRelay
from seckill.report import sale_report
from seckill.shards import ShardedStock
from seckill.soldout import SoldOutFlags
from seckill.stats import SaleStats

ADMISSION = web.AppKey("admission", AdmissionService)
TOKEN_DESK = web.AppKey("admission_token_desk", AdmissionTokenDesk)
CAMPAIGNS = web.AppKey("campaigns", Campaigns)
CAMPAIGN_ADMIN = web.AppKey("campaign_admin", CampaignAdmin)
SOLD_OUT_FLAGS = web.AppKey("sold_out_flags", SoldOutFlags)
MAX_QTY = 1000
RELAY_STOP_TIMEOUT_S = 5.0
STATS_INTERVAL_S = 2.0


class PurchaseBody(msgspec.Struct, forbid_unknown_fields=True):
    qty: Annotated[int, msgspec.Meta(ge=1, le=MAX_QTY)] = 1


def _sale_id(request: web.Request) -> int:
    return path_id(request, "sale_id", "flash sale")


def _admission_token(request: web.Request, service: AdmissionService, sale_id: int,
                     user_id: str) -> CheckedToken | TokenProblem | None:
    raw = request.headers.get(TOKEN_HEADER)
    if raw is None:
        return None
    return service.tokens.check(raw.strip(), sale_id, user_id)


@api_doc(
    summary="Buy in a flash sale (a sale that requires it needs the X-Admission-Token header)",
    tag="flash-sales", request=PurchaseBody, idempotent=True,
    roles=("customer", "member", "staff", "admin"),
    responses={202: "accepted: {order_id, status: queued}"},
    errors={401: "unauthorized",
            403: "not_started, ended, admission_token_required, admission_token_invalid",
            404: "not_found", 409: "sold_out, limit_reached", 413: "payload_too_large",
            422: "invalid_request, idempotency_key_reused, invalid_idempotency_key",
            429: "rate_limited (Retry-After)"},
)
async def post_order(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    sale_id = _sale_id(request)
    body = decode_body(await request.read(), PurchaseBody)
    service = app[ADMISSION]
    req = PurchaseRequest(sale_id, principal.user_id, body.qty, idempotency_key(request),
                          client_ip(request),
                          _admission_token(request, service, sale_id, principal.user_id))
    admission: Admission = await service.admit(req)
    if admission.outcome in (Outcome.ACCEPTED, Outcome.REPLAY):
        return json_response({"order_id": admission.order_id, "status": "queued"}, status=202)
    raise admission.error or rejection(admission.outcome)


@api_doc(
    summary="A single-use admission token for one purchase in this flash sale (anti-bot); "
            "issued from MALL_ADMISSION_TOKEN_TTL_S before the start until the end",
    tag="flash-sales", roles=("customer", "member", "staff", "admin"),
    responses={201: "{token, sale_id, expires_at}: send token as X-Admission-Token"},
    errors={401: "unauthorized", 403: "not_started, ended", 404: "not_found",
            429: "rate_limited (Retry-After)"},
)
async def post_admission_token(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    sale_id = _sale_id(request)
    issued = await app[TOKEN_DESK].issue(sale_id, principal.user_id, client_ip(request))
    expires_at = datetime.fromtimestamp(issued.expires_at_ms / 1000, UTC).isoformat()
    return json_response({"token": issued.token, "sale_id": sale_id, "expires_at": expires_at},
                         status=201)


@api_doc(
    summary="A flash sale and its remaining stock", tag="flash-sales",
    responses={200: "{id, sku_id, product_id, product_name, price, currency, stock, remaining,"
                    " per_user_limit, starts_at, ends_at, state, requires_token, shards}"},
    errors={404: "not_found"},
)
async def get_sale(request: web.Request) -> web.Response:
    return json_response(await request.app[CAMPAIGNS].view(_sale_id(request)))


@api_doc(
    summary="Create a flash sale, reserving its stock out of the SKU", tag="admin",
    request=NewFlashSale, idempotent=True, roles=("staff", "admin"),
    responses={201: "the sale, as GET /api/v1/flash-sales/{id}"},
    errors={401: "unauthorized", 403: "forbidden", 404: "not_found",
            409: "insufficient_stock, not_published, stock_in_flight, idempotency_in_progress",
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


STAFF_ERRORS = {401: "unauthorized", 403: "forbidden", 404: "not_found"}
ADMIN_SALE = ("{id, sku_id, product_id, product_name, price, stock, sold, returned_to_sku,"
              " per_user_limit, starts_at, ends_at, scheduled_ends_at, closed_at, warmed_at,"
              " state, requires_token, shards}")


def _staff(request: web.Request) -> None:
    require_staff(request.app[VERIFIER].from_request(request))


@api_doc(
    summary="Flash sales, newest first, optionally by state", tag="admin",
    roles=("staff", "admin"),
    query={"state": "scheduled, running or ended", "limit": "1-100, default 20",
           "cursor": "next_cursor of the last page"},
    responses={200: f"{{items: [{ADMIN_SALE}], next_cursor}}"},
    errors={401: "unauthorized", 403: "forbidden", 422: "invalid_request"},
)
async def list_sales(request: web.Request) -> web.Response:
    _staff(request)
    q = request.query
    page = await request.app[CAMPAIGN_ADMIN].list_admin(
        parse_state(q.get("state")), parse_id_cursor(q.get("cursor")), parse_limit(q.get("limit")))
    return json_response(page)


@api_doc(
    summary="Upcoming and running flash sales for the storefront, soonest first",
    tag="flash-sales",
    query={"limit": "1-100, default 20", "cursor": "next_cursor of the last page"},
    responses={200: "{items: [{id, sku_id, product_id, product_name, price, currency,"
                    " per_user_limit, requires_token, starts_at, ends_at, remaining, state}],"
                    " next_cursor}"},
    errors={422: "invalid_request"},
)
async def list_public_sales(request: web.Request) -> web.Response:
    q = request.query
    page = await request.app[CAMPAIGN_ADMIN].list_public(q.get("cursor"),
                                                         parse_limit(q.get("limit")))
    return json_response(page)


@api_doc(
    summary="Change a flash sale's terms before it starts (stock moves to or from the SKU)",
    tag="admin", request=SaleEdit, roles=("staff", "admin"),
    responses={200: ADMIN_SALE},
    errors={**STAFF_ERRORS,
            409: "sale_started, sale_ended, insufficient_stock, not_published, stock_in_flight",
            422: "invalid_request"},
)
async def patch_sale(request: web.Request) -> web.Response:
    _staff(request)
    sale_id = _sale_id(request)
    edit = decode_body(await request.read(), SaleEdit)
    return json_response(await request.app[CAMPAIGN_ADMIN].edit(sale_id, edit))


@api_doc(
    summary="End a flash sale now; the units it did not sell go back to the SKU "
            "(a sale already over is settled the same way)",
    tag="admin", roles=("staff", "admin"), responses={200: ADMIN_SALE}, errors=STAFF_ERRORS,
)
async def end_sale(request: web.Request) -> web.Response:
    _staff(request)
    sale_id = _sale_id(request)
    return json_response(await request.app[CAMPAIGN_ADMIN].close(sale_id))


@api_doc(
    summary="Load a flash sale into Redis from PostgreSQL (idempotent; never resets stock)",
    tag="admin", roles=("staff", "admin"), responses={200: f"{ADMIN_SALE} plus remaining"},
    errors={**STAFF_ERRORS, 409: "sale_ended"},
)
async def warm_up_sale(request: web.Request) -> web.Response:
    _staff(request)
    app = request.app
    sale_id = _sale_id(request)
    remaining = await app[CAMPAIGN_ADMIN].warm_up(sale_id)
    await app[SOLD_OUT_FLAGS].refresh()
    return json_response({**await app[CAMPAIGN_ADMIN].get(sale_id), "remaining": remaining})


@api_doc(
    summary="A flash sale's figures: stock, sold, accepted, paid orders, revenue, buyers, "
            "returns, sell-out time, orders by status",
    tag="admin", roles=("staff", "admin"),
    responses={200: "{id, stock, sold, accepted, in_flight, remaining, returned_to_sku,"
                    " paid_orders, revenue, buyers, orders, units_returned, sold_out,"
                    " sold_out_at, sell_out_seconds, orders_by_status, starts_at, ends_at,"
                    " closed}"},
    errors=STAFF_ERRORS,
)
async def get_report(request: web.Request) -> web.Response:
    _staff(request)
    app = request.app
    return json_response(await sale_report(app[PG], app[REDIS], app[CAMPAIGN_ADMIN].shards,
                                           _sale_id(request)))


async def seckill_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, redis, keys = app[SETTINGS], app[REDIS], app[KEYS]
    script = ScriptPipe(settings.redis_url, read_script("admit"))
    shards = ShardedStock(redis, keys)
    flags = SoldOutFlags(redis, keys, shards)
    app[ADMISSION] = AdmissionService(script, keys, flags, settings, shards)
    app[CAMPAIGNS] = campaigns = Campaigns(app[PG], redis, keys, shards)
    app[TOKEN_DESK] = AdmissionTokenDesk(redis, app[ADMISSION], campaigns.window, settings)
    app[SOLD_OUT_FLAGS] = flags
    app[CAMPAIGN_ADMIN] = admin = CampaignAdmin(app[PG], redis, keys, campaigns.sku_mirror,
                                                shards)
    upkeep = SaleUpkeep(admin, app[PG], redis, keys, on_warmed=flags.refresh)
    upkeep_task = asyncio.create_task(upkeep.run())
    refresher = asyncio.create_task(flags.run_refresher(settings.soldout_refresh_s))
    stats = SaleStats(app[PG], redis, keys, STATS_INTERVAL_S, shards)
    stats_task = asyncio.create_task(stats.run())
    relay = OutboxRelay(redis, keys, settings)
    relay_task = asyncio.create_task(relay.run()) if settings.relay_enabled else None
    yield
    relay.stop()
    if relay_task is not None:
        await stop_task(relay_task, RELAY_STOP_TIMEOUT_S)
    stats.stop()
    await stop_task(stats_task, RELAY_STOP_TIMEOUT_S)
    upkeep.stop()
    await stop_task(upkeep_task, RELAY_STOP_TIMEOUT_S)
    await stop_task(refresher, 0)
    await flags.aclose()
    await script.aclose()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(seckill_ctx)
    app.router.add_post("/api/v1/admin/flash-sales", post_sale)
    app.router.add_get("/api/v1/admin/flash-sales", list_sales)
    app.router.add_patch("/api/v1/admin/flash-sales/{sale_id}", patch_sale)
    app.router.add_post("/api/v1/admin/flash-sales/{sale_id}/end", end_sale)
    app.router.add_post("/api/v1/admin/flash-sales/{sale_id}/warm-up", warm_up_sale)
    app.router.add_get("/api/v1/admin/flash-sales/{sale_id}/report", get_report)
    app.router.add_get("/api/v1/flash-sales", list_public_sales)
    app.router.add_get("/api/v1/flash-sales/{sale_id}", get_sale)
    app.router.add_post("/api/v1/flash-sales/{sale_id}/orders", post_order)
    app.router.add_post("/api/v1/flash-sales/{sale_id}/admission-token", post_admission_token)
