"""HTTP routes of the recommendations and the refresh loop of each serving process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from checkout.keys import CheckoutKeys
from mall.background import StoppableLoop, stop_task
from mall.errors import json_response, not_found
from mall.openapi import api_doc
from mall.params import path_id, query_limit
from mall.resources import PG, REDIS, SETTINGS, VERIFIER
from recommendations import serve
from recommendations.build import RecsBuilder
from recommendations.keys import RecsKeys

log = logging.getLogger(__name__)

RECS_KEYS = web.AppKey("recs_keys", RecsKeys)
STOP_TIMEOUT_S = 5.0
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
ITEM = "{id, name, price_from, currency, reason: bought_together | popular_in_category | popular}"


def parse_limit(raw: str | None) -> int:
    return query_limit(raw, DEFAULT_LIMIT, MAX_LIMIT)


@api_doc(
    summary="Products often bought with this one, then best sellers of its category, then "
            "of the mall",
    tag="recommendations", query={"limit": f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT}"},
    responses={200: f"{{items: [{ITEM}]}}"},
    errors={404: "not_found (unknown or unpublished product)", 422: "invalid_request (limit)"},
)
async def product_recommendations(request: web.Request) -> web.Response:
    product_id = path_id(request, "product_id", "product")
    limit = parse_limit(request.query.get("limit"))
    app = request.app
    items = await serve.for_product(app[PG], app[REDIS], app[RECS_KEYS], product_id, limit)
    if items is None:
        raise not_found("product")
    return json_response({"items": items})


@api_doc(
    summary="Picks for the caller from their views, cart and orders; best sellers otherwise",
    tag="recommendations", roles=("customer", "member", "staff", "admin"),
    query={"limit": f"1-{MAX_LIMIT}, default {DEFAULT_LIMIT}"},
    responses={200: f"{{items: [{ITEM}]}}"},
    errors={401: "unauthorized", 422: "invalid_request (limit)"},
)
async def my_recommendations(request: web.Request) -> web.Response:
    app = request.app
    principal = app[VERIFIER].from_request(request)
    limit = parse_limit(request.query.get("limit"))
    cart_key = CheckoutKeys(app[SETTINGS].namespace).cart(principal.user_id)
    items = await serve.for_user(app[PG], app[REDIS], app[RECS_KEYS], cart_key,
                                 principal.user_id, limit)
    return json_response({"items": items})


class RecsRefresher(StoppableLoop):
    """Every serving process tries; the refresh lock lets one of them do the work."""

    def __init__(self, builder: RecsBuilder, interval_s: float) -> None:
        super().__init__()
        self._builder = builder
        self.interval_s = interval_s

    async def step(self) -> None:
        report = await self._builder.refresh()
        if report is not None and (report.orders_seen or report.orders_subtracted):
            log.info("recommendations refreshed: %s", report)


async def refresh_ctx(app: web.Application) -> AsyncIterator[None]:
    interval_s = app[SETTINGS].recs_refresh_s
    refresher = RecsRefresher(RecsBuilder(app[PG], app[REDIS], app[RECS_KEYS]), interval_s)
    task = asyncio.create_task(refresher.run())
    yield
    refresher.stop()
    await stop_task(task, STOP_TIMEOUT_S)


def setup(app: web.Application) -> None:
    app[RECS_KEYS] = RecsKeys(app[SETTINGS].namespace)
    app.router.add_get("/api/v1/products/{product_id}/recommendations", product_recommendations)
    app.router.add_get("/api/v1/me/recommendations", my_recommendations)
    app.cleanup_ctx.append(refresh_ctx)
