"""Prometheus exposition, correct with one process or many.

`mall serve --workers N` points every worker at one PROMETHEUS_MULTIPROC_DIR, so whichever
worker answers a scrape reports the sum over all of them.
"""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from mall.errors import Handler

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
disable_created_metrics()  # the *_created series only add noise to every dashboard

# Latency buckets in seconds, fine-grained below 10 ms where the hot path lives.
FAST_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


HTTP_REQUESTS = Counter(
    "mall_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
PG_POOL_CONNECTIONS = Gauge(
    "mall_pg_pool_connections",
    "PostgreSQL connections held by the serving processes' pools, by state.",
    ["state"],
    multiprocess_mode="livesum",
)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# A counter child per (route, method, status), looked up once: labels() on every request cost
# more than the rest of the middleware. (No per-route latency histogram: in multiprocess mode
# each observation writes several shared-memory values, which cut the floor by a third; the
# purchase path has its own histogram.)
_children: dict[tuple[str, str, int], Any] = {}


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        key = (_route(request), request.method, status)
        child = _children.get(key)
        if child is None:
            child = _children[key] = HTTP_REQUESTS.labels(key[0], key[1], str(status))
        child.inc()


def render_metrics() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=render_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def mark_worker_dead(pid: int) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
