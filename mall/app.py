"""The application factory: wiring only, no connections until the app starts."""

from __future__ import annotations

import asyncio

import aio_pika
from aiohttp import web

import accounts
import analytics
import audit
import catalog_api
import checkout
import coupons
import membership
import pricing
import recommendations
from audit.middleware import audit_middleware
from mall import metrics, pages
from mall.auth import TokenVerifier
from mall.errors import error_middleware, json_response
from mall.keys import Keys
from mall.openapi import api_doc, openapi_handler
from mall.ratelimit import rate_limit_middleware
from mall.resources import KEYS, PG, REDIS, SETTINGS, VERIFIER, pg_ctx, redis_ctx
from mall.settings import Settings
from order_writer import routes as order_routes
from order_writer import views
from order_writer.returns import returns_ctx
from seckill import http as seckill_http
from seckill.drift import drift_ctx

READY_TIMEOUT_S = 2.0


@api_doc(summary="Liveness (no dependencies)", tag="ops", responses={200: '{"status": "ok"}'})
async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@api_doc(summary="Readiness of Redis, PostgreSQL and RabbitMQ", tag="ops",
         responses={200: "{status, checks}", 503: "{status: unavailable, checks}"})
async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis, PostgreSQL and RabbitMQ all answer."""
    app = request.app
    checks: dict[str, str] = {}

    async def check(name: str, probe: asyncio.Future[object] | object) -> None:
        try:
            await asyncio.wait_for(probe, READY_TIMEOUT_S)  # type: ignore[arg-type]
            checks[name] = "ok"
        except Exception as exc:  # the probe's failure is the answer
            checks[name] = f"failing: {type(exc).__name__}"

    await asyncio.gather(
        check("redis", app[REDIS].ping()),
        check("postgres", app[PG].fetchval("SELECT 1")),
        check("rabbitmq", _amqp_probe(app[SETTINGS])),
    )
    ok = all(v == "ok" for v in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                         status=200 if ok else 503)


async def _amqp_probe(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.amqp_url, timeout=READY_TIMEOUT_S)
    await connection.close()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[metrics.metrics_middleware, error_middleware, rate_limit_middleware,
                     audit_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[KEYS] = Keys(settings.namespace)
    app[VERIFIER] = TokenVerifier(settings.jwt_secret)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(pg_ctx)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", api_doc(
        summary="Prometheus metrics", tag="ops",
        responses={200: "text/plain (Prometheus exposition format)"}
    )(metrics.metrics_handler))
    app.router.add_get("/api/openapi.json", api_doc(
        summary="This document", tag="ops", responses={200: "OpenAPI 3.1"}
    )(openapi_handler))
    seckill_http.setup(app)
    catalog_api.setup(app)
    accounts.setup(app)
    checkout.setup(app)
    views.setup_routes(app)
    order_routes.setup(app)
    coupons.setup(app)
    membership.setup(app)
    pricing.setup(app)
    analytics.setup(app)
    audit.setup(app)
    recommendations.setup(app)
    pages.setup(app)
    app.cleanup_ctx.append(returns_ctx)
    app.cleanup_ctx.append(drift_ctx)
    return app
