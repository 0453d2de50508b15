"""Rate limits on writes: fixed-window counters in Redis, answered `429 rate_limited`.

Flash-sale purchases are limited inside lua/admit.lua (per user, per client IP and per sale,
in the same atomic step as the purchase, so the hot path pays no extra round trip). Every other
request that writes (POST, PUT, PATCH, DELETE) passes `rate_limit_middleware`: one call of
lua/ratelimit.lua counts it per user (when it carries a valid bearer token) and per client IP.

Why fixed windows: one INCR (plus PEXPIRE on the first hit) per counter, one key per subject,
and Redis alone keeps the time, so processes need no shared clock. The cost is that a client
can land up to twice the limit across the edge of two windows, which is acceptable for abuse
protection (the per-user purchase limit of a sale is what guards its stock).

Not limited:
- GET, HEAD and OPTIONS (reads are served from caches and do not change state);
- the purchase and admission-token routes of flash sales (limited per sale in their own step);
- payment provider webhooks: providers retry in bursts from a few addresses, a refused
  notification only comes back later, and each one is authenticated by its signature.

The client IP is `request.remote`; no proxy header is trusted.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from mall.errors import ApiError
from mall.lua import read_script
from mall.resources import REDIS, SETTINGS, VERIFIER

LIMITED_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes limited elsewhere, or not at all (see the module's docstring).
UNLIMITED_ROUTES: Final = frozenset({
    "/api/v1/flash-sales/{sale_id}/orders",
    "/api/v1/flash-sales/{sale_id}/admission-token",
    "/api/v1/payments/webhooks/{provider}",
})
UNKNOWN_IP: Final = "unknown"


def client_ip(request: web.Request) -> str:
    return request.remote or UNKNOWN_IP


def window_ms(window_s: float) -> int:
    return max(int(window_s * 1000), 1)


def rate_limited(scope: str, retry_after_ms: int, limit: int, window_s: float) -> ApiError:
    retry_after_s = max(math.ceil(retry_after_ms / 1000), 1)
    return ApiError(
        429, "rate_limited", f"too many requests for this {scope}; try again later",
        headers={"Retry-After": str(retry_after_s)},
        details={"scope": scope, "limit": limit, "window_s": window_s,
                 "retry_after_s": retry_after_s},
    )


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    limit: int
    scope: str  # "user", "ip", "sale": named in the 429's details


@functools.cache
def _script() -> tuple[str, str]:
    body = read_script("ratelimit")
    return body, hashlib.sha1(body.encode()).hexdigest()


async def hit(redis: Redis, counters: Sequence[Counter], window_s: float) -> None:
    """Count one attempt against every counter, or raise 429 without counting any."""
    body, sha = _script()
    keys = [c.key for c in counters]
    args = [window_ms(window_s), *(c.limit for c in counters)]
    try:
        index, wait_ms = await redis.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        index, wait_ms = await redis.eval(body, len(keys), *keys, *args)
    if int(index):
        counter = counters[int(index) - 1]
        raise rate_limited(counter.scope, int(wait_ms), counter.limit, window_s)


def write_counters(namespace: str, user_id: str | None, ip: str, user_limit: int,
                   ip_limit: int) -> list[Counter]:
    """Counters of a write outside flash sales. They share one hash tag so one script counts
    them atomically (write traffic outside the purchase route is modest for one slot)."""
    base = f"{namespace}:{{rl}}:w"
    counters = [Counter(f"{base}:ip:{ip}", ip_limit, "ip")]
    if user_id is not None:
        counters.insert(0, Counter(f"{base}:u:{user_id}", user_limit, "user"))
    return counters


def _user_id(request: web.Request) -> str | None:
    if "Authorization" not in request.headers:
        return None
    try:
        return request.app[VERIFIER].from_request(request).user_id
    except ApiError:  # the handler answers 401; the IP is still counted
        return None


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in LIMITED_METHODS:
        route = request.match_info.route.resource
        path = route.canonical if route is not None else None
        if path not in UNLIMITED_ROUTES:
            settings = request.app[SETTINGS]
            counters = write_counters(settings.namespace, _user_id(request), client_ip(request),
                                      settings.rate_limit_user, settings.rate_limit_ip)
            await hit(request.app[REDIS], counters, settings.rate_window_s)
    return await handler(request)
